"""Run the reference server: frames from a source (a simulated camera by default) to TCPCam clients."""

from __future__ import annotations

import argparse
import sys

from tcpcam.common.optionparsers import addArguments, textsFromNamespace
from tcpcam.server.options import OPTIONS, buildFactory, checkedValues
from tcpcam.server.protocol import describePeer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to ``parser``."""
    addArguments(parser, OPTIONS)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns the exit status (1: cannot listen, 2: bad option)."""
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString
    from twisted.logger import Logger, globalLogBeginner, textFileLogObserver

    try:
        values = checkedValues(textsFromNamespace(args, OPTIONS))
        factory = buildFactory(values, reactor)
        endpoint = serverFromString(reactor, values["listen"])
    except ValueError as error:
        print("tcpcam serve: %s" % (error,), file=sys.stderr)
        return 2
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    log = Logger(namespace="tcpcam.serve")
    status = []

    def listening(port: object) -> None:
        log.info("tcpcam server on {address}, source {source}, at most one frame every {interval:g} ms",
                 address=describePeer(port.getHost()), source=values["source"],  # type: ignore[attr-defined]
                 interval=values["interval_ms"])

    def failed(failure: object) -> None:
        print("tcpcam serve: cannot listen on %s: %s" % (values["listen"], failure.getErrorMessage()),  # type: ignore[attr-defined]
              file=sys.stderr)
        status.append(1)
        reactor.stop()  # type: ignore[attr-defined]

    def start() -> None:
        endpoint.listen(factory).addCallbacks(listening, failed)

    reactor.callWhenRunning(start)  # type: ignore[attr-defined]
    reactor.run()  # type: ignore[attr-defined]
    return status[0] if status else 0
