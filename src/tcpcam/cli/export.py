"""Export a camera's recorded footage as an H.264 MP4, at recorded pace or as a time-lapse.

Examples::

    tcpcam export door --from 2026-05-01T10:00 --to 2026-05-01T10:30 door.mp4
    tcpcam export door --event 17 event17.mp4
    tcpcam export door --from 2026-05-01 --to 2026-05-02 --every 60 day.mp4   # one frame a minute

Times are local ISO 8601 (``2026-05-01T10:00:00``, a date alone is its
midnight) or Unix seconds. ``--event ID`` exports one motion event with its
pre-roll and post-roll. The file is written whole or not at all; a progress
bar goes to stderr when it is a terminal.
"""

from __future__ import annotations

import argparse
import datetime
import sys
import time

from tcpcam.core.text import plural
from tcpcam.record.config import DEFAULT_OUT
from tcpcam.record.export import TIMELAPSE_FPS

#: Columns of the progress bar.
BAR_WIDTH = 30


def parseWhen(text: str) -> float:
    """Unix seconds from ``2026-05-01T10:00[:00[.mmm]]`` (local time), ``2026-05-01`` or a number."""
    text = text.strip()
    try:
        return float(text)
    except ValueError:
        pass
    iso = text.replace(" ", "T", 1)
    whole, dot, fraction = iso.partition(".")
    if dot and fraction.isdigit() and len(fraction) <= 6:
        iso = whole + "." + fraction.ljust(6, "0")  # Python 3.10 takes 3 or 6 digits only
    try:
        moment = datetime.datetime.fromisoformat(iso)
    except ValueError:
        raise argparse.ArgumentTypeError(
            "bad time %r: expected 2026-05-01T10:00:00 (local time), 2026-05-01 or Unix seconds" % text) from None
    if moment.tzinfo is not None:
        return moment.timestamp()
    return time.mktime(moment.timetuple()) + moment.microsecond / 1e6


def _positive(text: str) -> float:
    try:
        value = float(text)
    except ValueError:
        value = 0.0
    if not value > 0:
        raise argparse.ArgumentTypeError("expected a number of seconds above 0, not %r" % text)
    return value


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the export's arguments to ``parser``."""
    parser.add_argument("camera", metavar="CAMERA", help="the camera's name (its folder under --recordings)")
    parser.add_argument("file", metavar="FILE", help="the MP4 file to write")
    parser.add_argument("--from", dest="start", type=parseWhen, metavar="WHEN", help="first moment to export")
    parser.add_argument("--to", dest="end", type=parseWhen, metavar="WHEN", help="moment the export ends before")
    parser.add_argument("--event", type=int, metavar="ID",
                        help="export this motion event (with its pre- and post-roll)")
    parser.add_argument("--every", type=_positive, metavar="SECONDS",
                        help="time-lapse: one frame every SECONDS of recording")
    parser.add_argument("--fps", type=_positive, default=TIMELAPSE_FPS,
                        help="frames per second of a time-lapse (default: %g)" % TIMELAPSE_FPS)
    parser.add_argument("--recordings", "-r", default=DEFAULT_OUT, metavar="DIR",
                        help="the recorder's --out folder (default: %s)" % DEFAULT_OUT)


def _bar(done: int, total: int) -> str:
    fraction = min(1.0, done / total) if total else 0.0
    filled = int(fraction * BAR_WIDTH)
    return "\r[%s%s] %3d%% %d/%s" % ("#" * filled, "." * (BAR_WIDTH - filled), fraction * 100, done,
                                     plural(total, "frame"))


def run(args: argparse.Namespace) -> int:
    """Export; returns the exit status (1 for a failed export, 2 for bad arguments)."""
    from tcpcam.record.export import ExportError, ExportJob
    from tcpcam.record.footage import Footage

    footage = Footage(args.recordings)
    try:
        footage.folder(args.camera)
        if args.event is not None:
            event = footage.event(args.camera, args.event)
            if event is None:
                print("tcpcam export: camera %s has no event %d" % (args.camera, args.event), file=sys.stderr)
                return 2
            start, end = event.clipStart, event.clipEnd + 0.001
        elif args.start is None or args.end is None:
            print("tcpcam export: give --from and --to, or --event", file=sys.stderr)
            return 2
        else:
            start, end = args.start, args.end
        job = ExportJob(args.recordings, args.camera, start, end, args.file, every=args.every, fps=args.fps)
    except ValueError as error:
        print("tcpcam export: %s" % error, file=sys.stderr)
        return 2
    finally:
        footage.close()
    terminal = sys.stderr.isatty()
    shown = [-1]

    def showProgress(current: ExportJob) -> None:
        percent = int(100 * current.done / current.total) if current.total else 0
        if percent != shown[0]:
            shown[0] = percent
            sys.stderr.write(_bar(current.done, current.total))
            sys.stderr.flush()

    try:
        result = job.run(showProgress if terminal else None)
    except KeyboardInterrupt:
        job.cancel()
        print("\ntcpcam export: interrupted; %s not written" % args.file, file=sys.stderr)
        return 1
    except ExportError as error:
        if terminal:
            sys.stderr.write("\n")
        print("tcpcam export: %s" % error, file=sys.stderr)
        return 1
    if terminal:
        sys.stderr.write("\n")
    print("%s: %s, %.2f s, %dx%d" % (result.path, plural(result.frames, "frame"), result.durationMs / 1000.0,
                                      result.width, result.height))
    return 0
