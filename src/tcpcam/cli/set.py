"""Change camera settings over protocol 2: ``tcpcam set HOST framesize=SVGA quality=80``.

Settings (the one vocabulary of config.json and protocol 2): framesize,
quality (percent, higher is better), brightness, contrast, saturation (-2 to
2), flip, mirror (true/false), effect, whitebalance. Prints every setting as
the camera applied them.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any

from tcpcam.cli.remote import EXIT_USAGE, add_camera_arguments, run_with_camera
from tcpcam.core.camera_settings import SETTINGS


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """HOST, the camera options and NAME=VALUE settings."""
    add_camera_arguments(parser)
    parser.add_argument("settings", metavar="NAME=VALUE", nargs="+",
                        help="settings to change: " + ", ".join(option.name for option in SETTINGS.options))


def parse_settings(words: list[str]) -> dict[str, Any]:
    """``["quality=80", "flip=on"]`` -> checked values, or ValueError with one line."""
    texts = {}
    for word in words:
        name, sep, text = word.partition("=")
        if not sep or name.strip() not in SETTINGS:
            raise ValueError("bad setting %r: expected NAME=VALUE with NAME one of %s"
                             % (word, ", ".join(option.name for option in SETTINGS.options)))
        texts[name.strip()] = text.strip()
    values, problems = SETTINGS.parse_texts(texts)
    if problems:
        raise ValueError(problems[0].replace("bad --", "bad "))
    return {name: values[name] for name in texts}


def run(args: argparse.Namespace) -> int:
    """Change the settings; 0, 1 (the camera refused or is out of reach) or 2 (bad arguments)."""
    try:
        changes = parse_settings(args.settings)
    except ValueError as error:
        sys.stderr.write("tcpcam set: error: %s\n" % error)
        return EXIT_USAGE

    def change(camera: Any) -> Any:
        return camera.set(**changes).addCallback(lambda settings: print(json.dumps(settings, sort_keys=True)))

    return run_with_camera(args, "set", change)
