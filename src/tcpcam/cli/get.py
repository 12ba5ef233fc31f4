"""Fetch frames from a camera: ``tcpcam get HOST PORT PIN CMD [FNAME]``.

CMD is N > 0 for exactly N frames, or 0 (or less) for a stream that runs
until the server closes it or you press Ctrl-C. With --key (or
$TCPCAM_KEY) it speaks protocol 2, falling back to the legacy request and
PIN by itself when the camera speaks only that; --fps sets this client's
own rate there, and -v prints each frame's facts (sequence number, capture
time, wall time, frames missed) on stderr. Payloads go to stdout, or
are appended to FNAME, or with --split each goes to its own file. What is
written is bounded: at most --max-files files with --split and --max-bytes
payload bytes in all; get stops with one line (exit status 1) rather than
pass a bound. When FNAME or the --split pattern ends in .jpg, frames that
are not JPEGs are skipped and counted.
Exit status: 0 done, 1 network, protocol or output error, or a bound
reached (one line on stderr), 2 bad arguments, 130 interrupted (Ctrl-C);
written files are whole.
"""

from __future__ import annotations

import argparse
import datetime
import os
import sys
import time
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, TypedDict

from tcpcam.cli.remote import KEY_VARIABLE
from tcpcam.client.output import (
    BoundedSink,
    OutputError,
    SplitSink,
    StreamSink,
    check_pattern,
    open_append,
    wantsJpegs,
)
from tcpcam.client.progress import ProgressLine, human_bytes
from tcpcam.common.optionparsers import plainDoc
from tcpcam.common.signals import restoreInterrupt
from tcpcam.core.errors import BadCommand, TCPCamError, TooFewFrames
from tcpcam.core.limits import (
    GET_MAX_BYTES,
    GET_MAX_FILES,
    GET_TIMEOUT_S,
    MAX_CLIENT_FPS,
    MAX_DECLARABLE_BYTES,
    MAX_FRAME_BYTES,
    PIN_PAUSE_MS,
)
from tcpcam.core.mac import parse_key
from tcpcam.core.options import parse_size
from tcpcam.core.request import check_pin, parse_command
from tcpcam.core.text import plural

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.python.failure import Failure

    from tcpcam.client import FetchSummary

#: Default for --timeout, in seconds.
DEFAULT_TIMEOUT = GET_TIMEOUT_S
#: Exit statuses.
EXIT_OK, EXIT_ERROR, EXIT_USAGE, EXIT_INTERRUPTED = 0, 1, 2, 130


class _FetchState(TypedDict):
    """How a fetch ended, filled in by its callbacks."""

    status: int | None
    message: str | None
    fetching: Deferred[Any] | None
    done: bool


def _port(text: str) -> int:
    try:
        port = int(text)
    except ValueError:
        port = 0
    if not 1 <= port <= 65535:
        raise argparse.ArgumentTypeError("PORT must be a number from 1 to 65535, not %r" % text)
    return port


def _pin(text: str) -> str:
    try:
        check_pin(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    return text


def _command(text: str) -> int:
    try:
        return parse_command(text.encode())
    except BadCommand as error:
        raise argparse.ArgumentTypeError(str(error)) from error


def _seconds(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = -1.0
    if not 0 <= value < float("inf"):
        raise argparse.ArgumentTypeError("expected a number of seconds, 0 or more, not %r" % text)
    return value


def _frame_bytes(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = -1
    if not 0 <= value <= MAX_DECLARABLE_BYTES:
        raise argparse.ArgumentTypeError("expected a byte count from 0 to %d, not %r" % (MAX_DECLARABLE_BYTES, text))
    return value


def _count(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError("expected a whole number, 1 or more, not %r" % text)
    return value


def _size(text: str) -> int:
    value = parse_size(text)
    if value is None or value < 1:
        raise argparse.ArgumentTypeError("expected a size in bytes, 1 or more, such as 500M or 20G, not %r" % text)
    return value


def _key(text: str) -> str:
    try:
        parse_key(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    return text


def _fps(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not 0 < value <= MAX_CLIENT_FPS:
        raise argparse.ArgumentTypeError("expected frames a second above 0 and at most %d, not %r"
                                         % (MAX_CLIENT_FPS, text))
    return value


def _pattern(text: str) -> str:
    try:
        check_pattern(text)
    except ValueError as error:
        raise argparse.ArgumentTypeError(str(error)) from error
    return text


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the arguments of ``tcpcam get`` to ``parser``."""
    parser.add_argument("host", metavar="HOST", help="camera address (name, IPv4 or IPv6)")
    parser.add_argument("port", metavar="PORT", type=_port, help="camera port (the firmware uses 3333)")
    parser.add_argument("pin", metavar="PIN", type=_pin, help="the camera's PIN (default firmware: 1235)")
    parser.add_argument("cmd", metavar="CMD", type=_command, help="N > 0: that many frames; 0: a stream")
    parser.add_argument("fname", metavar="FNAME", nargs="?", help="append payloads to this file, not stdout")
    parser.add_argument(
        "--split",
        metavar="PATTERN",
        type=_pattern,
        help="write each frame to its own file named by PATTERN, with fields {n} (frame number"
        " from 1) and {time} (arrival time), e.g. 'frame-{n:05d}.jpg' or"
        " 'shots/{time:%%Y%%m%%d-%%H%%M%%S.%%f}-{n}.jpg'; a file appears once complete",
    )
    parser.add_argument("-q", "--quiet", action="store_true", help="no progress line and no summary")
    parser.add_argument("-v", "--verbose", action="store_true",
                        help="one line on stderr per frame: its number, size and, over protocol 2, the camera's"
                        " sequence number, capture time, wall time and the frames missed before it")
    parser.add_argument("--key", metavar="KEY", type=_key, default=None,
                        help="the device key: speak protocol 2 (default: $%s; without one, the legacy"
                        " protocol); a camera that speaks only the legacy protocol is asked with PIN" % KEY_VARIABLE)
    parser.add_argument("--fps", metavar="FPS", type=_fps, default=None,
                        help="protocol 2: at most FPS frames a second for this client (the camera's rate"
                        " for others stays)")
    parser.add_argument(
        "--timeout",
        metavar="SECONDS",
        type=_seconds,
        default=DEFAULT_TIMEOUT,
        help="give up if connecting, or the silence between frames, takes longer (default %(default)g; 0: never)",
    )
    parser.add_argument(
        "--max-frame-bytes",
        metavar="BYTES",
        type=_frame_bytes,
        default=MAX_FRAME_BYTES,
        help="refuse frames declared larger than this (default %(default)d)",
    )
    parser.add_argument(
        "--max-files",
        metavar="N",
        type=_count,
        default=GET_MAX_FILES,
        help="with --split, stop after writing N files (default %(default)d)",
    )
    parser.add_argument(
        "--max-bytes",
        metavar="SIZE",
        type=_size,
        default=GET_MAX_BYTES,
        help="stop rather than write more than SIZE payload bytes in all, such as 500M or 20G"
        " (default 1G = %(default)d)",
    )
    parser.add_argument(
        "--pause",
        metavar="SECONDS",
        type=_seconds,
        default=PIN_PAUSE_MS / 1000,
        help="pause between sending the PIN and CMD, for the original firmware (default %(default)g)",
    )


def _error(message: object) -> None:
    sys.stderr.write("tcpcam get: error: %s\n" % message)


def _open_sink(args: argparse.Namespace) -> BoundedSink:
    sink: SplitSink | StreamSink
    if args.split:
        sink = SplitSink(args.split)
    elif args.fname:
        sink = open_append(args.fname)
    else:
        sink = StreamSink(sys.stdout.buffer, "stdout")
    return BoundedSink(sink, args.max_files if args.split else None, args.max_bytes, args.cmd,
                       wantsJpegs(args.split or args.fname))


def _silence_stdout() -> None:
    # After a broken pipe, stop the interpreter's final flush from failing too.
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        os.close(devnull)
    except (OSError, ValueError):
        pass


def run(args: argparse.Namespace) -> int:
    """Run ``tcpcam get`` with parsed ``args``; returns the exit status."""
    if args.split and args.fname:
        _error("give either FNAME or --split, not both")
        return EXIT_USAGE
    args.key = args.key or os.environ.get(KEY_VARIABLE) or None
    if args.key is not None:
        try:
            parse_key(args.key)
        except ValueError as error:
            _error("$%s: %s" % (KEY_VARIABLE, error))
            return EXIT_USAGE
    if args.fps is not None and args.key is None:
        _error("--fps needs protocol 2: give the device key with --key or $%s" % KEY_VARIABLE)
        return EXIT_USAGE
    if args.split and args.cmd > args.max_files:
        _error("CMD %d asks for more frames than --max-files %d lets --split write (raise --max-files)"
               % (args.cmd, args.max_files))
        return EXIT_USAGE
    try:
        sink = _open_sink(args)
    except OutputError as error:
        _error(error)
        return EXIT_ERROR
    status = _fetch(args, sink)
    try:
        sink.close()
    except OutputError as error:
        _error(error)
        status = status or EXIT_ERROR
    if sink.skipped:
        sys.stderr.write("tcpcam get: skipped %s: not a JPEG (the first: %s); %s written\n" % (
            plural(sink.skipped, "frame"), sink.firstProblem, plural(sink.written, "frame")))
    if status == EXIT_ERROR and isinstance(sink.sink, StreamSink) and sink.sink.name == "stdout":
        _silence_stdout()
    return status


def frameFacts(number: int, size: int, frame: Any = None) -> str:
    """The -v line of one frame: ``frame 3: 23456 bytes, seq 41, captured 81.250 s, wall ..., missed 0``.

    ``frame`` is a protocol 2 :class:`~tcpcam.client.camera.CameraFrame`, or None for a legacy frame.
    """
    line = "frame %d: %s" % (number, plural(size, "byte"))
    if frame is None:
        return line
    line += ", seq %d" % frame.seq
    if frame.capture_ms is not None:
        line += ", captured %.3f s" % (frame.capture_ms / 1000)
    if frame.wall_time is not None:
        moment = datetime.datetime.fromtimestamp(frame.wall_time, datetime.timezone.utc)
        line += ", wall %s" % moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    else:
        line += ", wall unknown"
    return line + ", missed %d" % frame.missed


def _fetch(args: argparse.Namespace, sink: Callable[[memoryview], object]) -> int:
    from twisted.internet import defer, reactor
    from twisted.internet.endpoints import HostnameEndpoint
    from twisted.internet.error import ReactorNotRunning

    from tcpcam.client import fetch
    from tcpcam.client.camera import connectCamera

    timeout = args.timeout or None
    started = time.monotonic()
    progress = None
    if not args.quiet and not args.verbose and sys.stderr.isatty():
        progress = ProgressLine(sys.stderr, args.cmd)
    counts = [0, 0]
    state: _FetchState = {"status": None, "message": None, "fetching": None, "done": False}
    cameras: list[Any] = []
    address = ("[%s]:%d" if ":" in args.host else "%s:%d") % (args.host, args.port)

    def frameReceived(view: memoryview, frame: Any = None) -> None:
        sink(view)
        counts[0] += 1
        counts[1] += len(view)
        if args.verbose:
            sys.stderr.write(frameFacts(counts[0], len(view), frame) + "\n")
        if progress is not None:
            progress.update(counts[0], counts[1])

    def legacy(endpoint: Any) -> Deferred[FetchSummary]:
        return fetch(
            reactor,
            endpoint,
            args.pin,
            args.cmd,
            frameReceived,
            connectTimeout=timeout,
            pauseSeconds=args.pause,
            maxFrameBytes=args.max_frame_bytes,
            frameTimeout=timeout,
            address=address,
        )

    @defer.inlineCallbacks
    def protocol2(endpoint: Any) -> Any:
        camera = yield connectCamera(reactor, endpoint, key=args.key, pin=args.pin, connectTimeout=timeout,
                                     frameTimeout=timeout, address=address, maxFrameBytes=args.max_frame_bytes)
        if camera.legacy:
            if args.fps is not None:
                sys.stderr.write("tcpcam get: %s speaks only the legacy protocol: --fps is not applied\n" % address)
            yield legacy(endpoint)
            return
        cameras.append(camera)
        try:
            if args.fps is not None:
                yield camera.rate(fps=args.fps)
            camera.onFrame = lambda frame: frameReceived(frame.payload, frame)
            received = yield camera.stream(args.cmd)
            if 0 < received < args.cmd:
                raise TooFewFrames(received, args.cmd)
        finally:
            yield camera.close()

    def succeeded(summary: object) -> None:
        state["status"] = EXIT_OK

    def failed(failure: Failure) -> None:
        if state["status"] == EXIT_INTERRUPTED:
            return
        state["status"] = EXIT_ERROR
        if failure.check(TCPCamError):
            state["message"] = str(failure.value)
        else:
            state["message"] = "%s: %s" % (failure.type.__name__, failure.getErrorMessage())

    def ended(_: object) -> None:
        state["done"] = True
        try:
            reactor.stop()
        except ReactorNotRunning:
            pass

    def start() -> None:
        endpoint = HostnameEndpoint(reactor, args.host, args.port)
        fetching = protocol2(endpoint) if args.key else legacy(endpoint)
        state["fetching"] = fetching
        fetching.addCallbacks(succeeded, failed).addBoth(ended)

    def interrupted() -> None:
        if not state["done"]:
            state["status"] = EXIT_INTERRUPTED
            for camera in cameras:
                camera.close()
            if state["fetching"] is not None:
                state["fetching"].cancel()

    reactor.callWhenRunning(start)
    reactor.addSystemEventTrigger("before", "shutdown", interrupted)
    restoreInterrupt()
    reactor.run()

    if progress is not None and progress.shown:
        progress.finish(*counts)
    status = state["status"]
    if status is None:
        status = EXIT_INTERRUPTED
    if state["message"]:
        _error(state["message"])
    elif not args.quiet:
        sys.stderr.write(
            "tcpcam get: %s%s, %s in %.1f s\n"
            % ("interrupted after " if status == EXIT_INTERRUPTED else "", plural(counts[0], "frame"),
               human_bytes(counts[1]),
               time.monotonic() - started)
        )
    return status


def main(argv: Sequence[str] | None = None) -> int:
    """Run ``tcpcam get`` on its own (``python -m tcpcam.cli.get``)."""
    parser = argparse.ArgumentParser(prog="tcpcam get", description=plainDoc(__doc__))
    add_arguments(parser)
    return run(parser.parse_intermixed_args(argv))


if __name__ == "__main__":
    sys.exit(main())
