"""What a test tells either stand-in camera driver through the environment (not part of any driver's API).

``TCPCAM_CAMERA_DIR`` (the JPEG files captures return, in turn; the
firmware's ``test.jpg`` without it), ``TCPCAM_CAMERA_FAIL`` (capture
numbers that fail, or ``all``), ``TCPCAM_CAMERA_INIT_FAIL`` (how many
inits fail first) and ``TCPCAM_CAMERA_HANG`` (a capture number that never
returns). Shared by ``simulator/camera.py`` (lemariva's driver) and
``simulator/camera_api/camera.py`` (cnadler86's).
"""

import os as _os
import time as _time


def getenv(name):
    """The environment variable ``name``, or None (also where the port has no ``os.getenv``)."""
    getenv = getattr(_os, "getenv", None)
    return getenv(name) if getenv else None


def failing_captures():
    """The capture numbers (from 1) that fail, or ``"all"``."""
    text = getenv("TCPCAM_CAMERA_FAIL") or ""
    if text.strip() == "all":
        return "all"
    return [int(part.strip()) for part in text.split(",") if part.strip()]


def frame_files():
    """The JPEG files captures return, in turn."""
    folder = getenv("TCPCAM_CAMERA_DIR")
    if not folder:
        return ["test.jpg"]
    names = sorted(
        name for name in _os.listdir(folder)
        if name.lower().endswith(".jpg") or name.lower().endswith(".jpeg")
    )
    return [folder + "/" + name for name in names]


def init_fails(inits):
    """True when init number ``inits`` (from 1) is one of those told to fail."""
    return inits <= int(getenv("TCPCAM_CAMERA_INIT_FAIL") or 0)


def start(state):
    """Read what the captures of a fresh init do into ``state``: files, failures, the hang."""
    state["files"] = frame_files()
    state["fail"] = failing_captures()
    state["hang"] = int(getenv("TCPCAM_CAMERA_HANG") or 0)


def next_capture(state):
    """Count one capture in ``state``; never return on the hanging one; True when this one fails."""
    state["captures"] += 1
    number = state["captures"]
    if number == state["hang"]:
        while True:
            _time.sleep_ms(1000)
    fail = state["fail"]
    return fail == "all" or number in fail
