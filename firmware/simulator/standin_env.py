"""What a test tells either stand-in camera driver through the environment (not part of any driver's API).

``TCPCAM_CAMERA_DIR`` (the JPEG files captures return, in turn; the
firmware's ``test.jpg`` without it) and ``TCPCAM_CAMERA_FAIL`` (capture
numbers that fail, or ``all``). Shared by ``simulator/camera.py``
(lemariva's driver) and ``simulator/camera_api/camera.py`` (cnadler86's).
"""

import os as _os


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
