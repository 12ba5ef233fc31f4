"""What a camera says about itself over protocol 2: ``tcpcam info HOST``.

Prints its device facts (name, firmware, sensor, frame sizes), its settings
and its health (heap, uptime, reset cause, WiFi signal, capture errors,
clients) as one JSON object. A camera that speaks only the legacy protocol
has none of these: it is said so.
"""

from __future__ import annotations

import argparse
import json
from typing import Any

from tcpcam.cli.remote import add_camera_arguments, run_with_camera


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """HOST and the camera options."""
    add_camera_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Print what the camera says; 0, or 1 when it cannot be reached."""

    def show(camera: Any) -> Any:
        if camera.legacy:
            print(json.dumps({"protocol": 1, "note": "the camera speaks only the legacy protocol"}))
            return None
        return camera.connection.request("health").addCallback(lambda _: print(json.dumps(
            {"protocol": 2, "device": camera.device, "settings": camera.settings, "health": camera.health},
            sort_keys=True, indent=1)))

    return run_with_camera(args, "info", show)
