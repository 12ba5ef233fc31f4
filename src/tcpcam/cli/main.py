"""The ``tcpcam`` console script: ``tcpcam get|set|info|snap|serve|record|firmware ...``."""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from tcpcam import __version__
from tcpcam.common.optionparsers import plainDoc

#: What ``tcpcam --help`` says first.
DESCRIPTION = "tcpcam: get pictures off an ESP32 camera board and onto a computer."

#: Subcommands that have subcommands of their own.
NESTED = ("firmware", "fleet")

#: Subcommand name, module under tcpcam.cli, one-line help.
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


def build_parsers() -> tuple[argparse.ArgumentParser, dict[str, argparse.ArgumentParser]]:
    """Return the argument parser with every subcommand attached, and the subcommands' own parsers by name."""
    parser = argparse.ArgumentParser(prog="tcpcam", description=DESCRIPTION)
    parser.add_argument("--version", action="version", version="tcpcam %s" % __version__)
    commands = parser.add_subparsers(dest="command", metavar="COMMAND")
    commands.required = True
    parsers = {}
    for name, module_name, help_text in SUBCOMMANDS:
        module = importlib.import_module("tcpcam.cli." + module_name)
        sub = commands.add_parser(name, help=help_text, description=plainDoc(module.__doc__))
        module.add_arguments(sub)
        sub.set_defaults(run=module.run)
        parsers[name] = sub
    return parser, parsers


def build_parser() -> argparse.ArgumentParser:
    """Return the argument parser with every subcommand attached."""
    return build_parsers()[0]


def parse(argv: Sequence[str] | None = None) -> argparse.Namespace:
    """Parse the command line; options may come between a subcommand's positionals.

    argparse parses positionals mixed with options only in
    ``parse_intermixed_args``, which refuses a parser with subcommands (the
    top level, and ``firmware``); so the chosen subcommand's own parser
    parses its arguments again that way, unless it has subcommands itself.
    """
    argv = list(sys.argv[1:] if argv is None else argv)
    parser, parsers = build_parsers()
    args, _ = parser.parse_known_args(argv)
    if args.command in NESTED:
        return parser.parse_args(argv)
    # The top level has no option that takes a value: the first word that
    # names the command is the command.
    command = args.command
    args = parsers[command].parse_intermixed_args(argv[argv.index(command) + 1:])
    args.command = command
    return args


def main(argv: Sequence[str] | None = None) -> int:
    """Run the console script; returns the exit status (2 for bad arguments)."""
    args = parse(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
