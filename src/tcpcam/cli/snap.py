"""One picture from a camera: ``tcpcam snap HOST FILE`` (``-`` for stdout).

Over protocol 2 it is a snapshot request (it works while the stream is
paused); a legacy camera is asked for one frame. The file is written whole
or not at all.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

from tcpcam.cli.remote import add_camera_arguments, run_with_camera
from tcpcam.common.atomic import writeAtomically
from tcpcam.core.text import plural


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """HOST, FILE and the camera options."""
    add_camera_arguments(parser)
    parser.add_argument("file", metavar="FILE", help="where the JPEG goes (- for stdout)")


def run(args: argparse.Namespace) -> int:
    """Take the picture; 0, or 1 with one line on stderr."""

    def save(picture: bytes) -> None:
        if args.file == "-":
            sys.stdout.buffer.write(picture)
            sys.stdout.buffer.flush()
        else:
            writeAtomically(args.file, picture)
        sys.stderr.write("tcpcam snap: %s to %s\n" % (plural(len(picture), "byte"), args.file))

    def snap(camera: Any) -> Any:
        return camera.snapshot().addCallback(save)

    return run_with_camera(args, "snap", snap)
