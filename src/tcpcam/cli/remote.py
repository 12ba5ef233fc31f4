"""What ``tcpcam set``, ``info`` and ``snap`` share: the camera's address, its key, one run of the reactor."""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Callable
from typing import Any

from tcpcam.core import limits
from tcpcam.core.errors import TCPCamError

#: The environment variable that may hold the device key.
KEY_VARIABLE = "TCPCAM_KEY"
#: Exit statuses.
EXIT_OK, EXIT_ERROR, EXIT_USAGE = 0, 1, 2


def add_camera_arguments(parser: argparse.ArgumentParser) -> None:
    """HOST, --port, --key, --pin and --timeout."""
    parser.add_argument("host", metavar="HOST", help="camera address (name, IPv4 or IPv6)")
    parser.add_argument("--port", type=int, default=limits.DEFAULT_PORT, help="camera port (default %(default)d)")
    parser.add_argument("--key", default=None,
                        help="the device key of protocol 2 (default: $%s); without one, the legacy protocol"
                        % KEY_VARIABLE)
    parser.add_argument("--pin", default=limits.DEFAULT_PIN,
                        help="PIN for a camera that speaks only the legacy protocol (default %(default)s)")
    parser.add_argument("--timeout", type=float, default=limits.GET_TIMEOUT_S,
                        help="seconds to connect and to wait for an answer (default %(default)g)")


def key_of(args: argparse.Namespace) -> str | None:
    """The key given, from --key or the environment."""
    return args.key or os.environ.get(KEY_VARIABLE) or None


def run_with_camera(args: argparse.Namespace, name: str, work: Callable[[Any], Any], bounded: bool = True) -> int:
    """Connect to the camera of ``args`` and run ``work(camera)`` (a Deferred) under the reactor.

    ``work`` must end within ``args.timeout`` unless ``bounded`` is false
    (then it bounds each of its own waits). Returns the exit status: 0, or 1
    with one line on stderr.
    """
    from twisted.internet import defer, task
    from twisted.internet.endpoints import HostnameEndpoint

    from tcpcam.client.camera import connectCamera

    status = [EXIT_OK]

    @defer.inlineCallbacks
    def main(reactor: Any) -> Any:
        endpoint = HostnameEndpoint(reactor, args.host, args.port)
        try:
            camera = yield connectCamera(reactor, endpoint, key=key_of(args), pin=args.pin,
                                         connectTimeout=args.timeout, frameTimeout=args.timeout,
                                         address="%s port %d" % (args.host, args.port))
            try:
                done = defer.maybeDeferred(work, camera)
                yield done.addTimeout(args.timeout, reactor) if bounded else done
            finally:
                yield camera.close()
        except (TCPCamError, ValueError, defer.TimeoutError) as error:
            message = str(error) or "no answer in %g s" % args.timeout
            sys.stderr.write("tcpcam %s: error: %s\n" % (name, message))
            status[0] = EXIT_ERROR

    try:
        task.react(main)
    except SystemExit as exit:
        if exit.code not in (0, None):
            return EXIT_ERROR
    return status[0]
