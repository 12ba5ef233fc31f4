"""Convert JPEG-per-file recordings and hourly MJPEG files into segments with an index.

Examples::

    tcpcam convert                       # every camera under ./recordings
    tcpcam convert -r /srv/cams door     # one camera
    tcpcam convert --delete              # remove each source file once its frames are indexed

Safe to interrupt and to run again: it goes on where it stopped, never
indexes a frame twice, and refuses to run on a camera a recorder is
recording (stop the recorder first).
"""

from __future__ import annotations

import argparse
import os
import sys

from tcpcam.core.text import plural
from tcpcam.record.config import DEFAULT_OUT


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the conversion's arguments to ``parser``."""
    parser.add_argument("cameras", nargs="*", metavar="CAMERA", help="camera folders to convert (default: all)")
    parser.add_argument("--recordings", "-r", default=DEFAULT_OUT, metavar="DIR",
                        help="the recorder's --out folder (default: %s)" % DEFAULT_OUT)
    parser.add_argument("--delete", action="store_true",
                        help="remove each source file once its frames are in the index")


def run(args: argparse.Namespace) -> int:
    """Convert; returns the exit status (1 if a camera could not be converted, 2 for bad arguments)."""
    from tcpcam.record.config import ConfigError, checkName
    from tcpcam.record.convert import convertCamera
    from tcpcam.record.index import IndexProblem

    root = args.recordings
    if not os.path.isdir(root):
        print("tcpcam convert: no folder %s" % root, file=sys.stderr)
        return 2
    names = args.cameras or sorted(name for name in os.listdir(root) if os.path.isdir(os.path.join(root, name))
                                   and not name.startswith("."))
    status = 0
    for name in names:
        try:
            checkName(name)
        except ConfigError as error:
            print("tcpcam convert: %s" % error, file=sys.stderr)
            return 2
        folder = os.path.join(root, name)
        if not os.path.isdir(folder):
            print("tcpcam convert: no camera folder %s" % folder, file=sys.stderr)
            return 2
        try:
            report = convertCamera(folder, delete=args.delete)
        except (IndexProblem, OSError) as error:
            print("tcpcam convert: %s: %s" % (name, error), file=sys.stderr)
            status = 1
            continue
        print("%s: %s converted (%s), %d already converted, %d unreadable, %d removed" % (
            name, plural(report.files, "file"), plural(report.frames, "frame"), report.alreadyDone, report.skipped,
            report.deleted))
    return status
