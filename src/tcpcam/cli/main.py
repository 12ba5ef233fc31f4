"""The ``tcpcam`` console script: ``tcpcam get|set|info|snap|serve|record|firmware ...``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

#: Subcommand name, module under tcpcam.commands, one-line help.
SUBCOMMANDS = (
    ("get", "get", "fetch frames from a camera (replaces TCPCam_client)"),
    ("set", "set", "change camera settings (protocol 2)"),
    ("info", "info", "show a camera's device facts, settings and health (protocol 2)"),
    ("snap", "snap", "take one picture"),
    ("serve", "serve", "run the reference server with a frame source"),
    ("record", "record", "record from cameras, with a live view in the browser"),
    ("export", "export", "export recorded footage as an MP4 or a time-lapse"),
    ("convert", "convert", "convert JPEG trees and hourly MJPEG files into segments with an index"),
    ("fleet", "fleet", "manage the cameras of a recorder fleet: add, remove, list, move"),
    ("web", "web", "serve a fleet's web interface without recording"),
    ("password", "password", "set the password of the recorder's web interface, or make a token"),
    ("firmware", "firmware", "configure, bundle, flash, deploy or simulate the firmware"),
)


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand attached."""
    parser = argparse.ArgumentParser(prog="tcpcam", description=__doc__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    for name, module_name, help_text in SUBCOMMANDS:
        module = importlib.import_module("tcpcam.cli." + module_name)
        sub = commands.add_parser(name, help=help_text, description=module.__doc__)
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; returns the exit status (2 for bad arguments)."""
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
