"""Frame sources: the camera, a JPEG file, or a fixed text (the original's build types).

Each source has ``start()``, ``capture()`` and ``problem``: ``capture``
returns the frame as bytes, or ``False`` when there is none this time, and
then ``problem`` says why in a few words (the core logs the first failure
in a row).
"""

import time

from tcpcam_fw.log import say

from tcpcam.core.camera_settings import sensor_quality
from tcpcam.core.text import plural


class HelloSource:
    """The same short text every time, as the original's test build."""

    problem = None

    def __init__(self, config):
        self.frame = config["hello_text"].encode()

    def start(self):
        """Nothing to start."""
        return True

    def capture(self):
        """The text as bytes."""
        return self.frame


class JpegSource:
    """One JPEG file from the device's filesystem, read once."""

    def __init__(self, config):
        self.path = config["jpeg_path"]
        self.frame = False
        self.problem = "no JPEG file read"

    def start(self):
        """Read the file; False (logged) when it cannot be read."""
        try:
            with open(self.path, "rb") as handle:
                self.frame = handle.read()
        except (OSError, MemoryError) as error:
            self.problem = "cannot read %s (%s)" % (self.path, str(error) or "out of memory")
            say("jpeg: %s; no frames" % self.problem)
            self.frame = False
            return False
        say("jpeg: serving %s (%s)" % (self.path, plural(len(self.frame), "byte")))
        return True

    def capture(self):
        """The file's bytes, or False when it could not be read."""
        return self.frame


class CameraSource:
    """The OV2640 through micropython-camera-driver's ``camera`` module.

    ``camera.init`` on a camera that is already running reboots the board,
    and after a soft reset the driver may still be running, so every start
    calls ``camera.deinit()`` first. A failed start is logged and tried again
    after ``camera_retry_ms``; after :attr:`max_failed_captures` failed
    captures in a row the camera is restarted the same way.
    """

    #: Failed captures in a row that make the camera restart.
    max_failed_captures = 5

    def __init__(self, config):
        self.config = config
        self.camera = None
        self.ready = False
        self.failed_captures = 0
        self.problem = "the camera is not started"
        self._next_start = time.ticks_ms()

    def start(self):
        """Start the camera; False (logged) when it did not start."""
        config = self.config
        try:
            import camera
        except ImportError:
            self._retry_later()
            say("camera: no camera module in this MicroPython image; flash one built with the camera driver")
            return False
        self.camera = camera
        self._stop()
        try:
            camera.init(0, format=camera.JPEG, framesize=getattr(camera, "FRAME_" + config["framesize"]),
                        fb_location=camera.PSRAM)
        except (OSError, ValueError) as error:
            self._stop()
            self._retry_later()
            say("camera: init failed (%s); deinit done, retry in %d ms" % (error, config["camera_retry_ms"]))
            return False
        camera.quality(sensor_quality(config["quality"]))
        camera.flip(1 if config["flip"] else 0)
        camera.mirror(1 if config["mirror"] else 0)
        self.ready = True
        self.failed_captures = 0
        say("camera: started, %s, quality %d%%" % (config["framesize"], config["quality"]))
        return True

    def capture(self):
        """A JPEG as bytes, or False (the camera failed or is not started yet)."""
        if not self.ready:
            if time.ticks_diff(self._next_start, time.ticks_ms()) > 0 or not self.start():
                self.problem = "the camera is not started"
                return False
        try:
            frame = self.camera.capture()
        except MemoryError:
            frame = False
            say("camera: no memory for the frame")
        if frame is False or not frame:
            self.problem = "the camera gave no frame"
            self.failed_captures += 1
            if self.failed_captures >= self.max_failed_captures:
                say("camera: %d failed captures in a row; restarting the camera" % self.failed_captures)
                self._stop()
            return False
        self.failed_captures = 0
        return frame

    def _retry_later(self):
        self._next_start = time.ticks_add(time.ticks_ms(), self.config["camera_retry_ms"])

    def _stop(self):
        self.ready = False
        try:
            self.camera.deinit()
        except (OSError, AttributeError):
            pass


def make_source(config):
    """The source named by ``config["source"]``."""
    kinds = {"camera": CameraSource, "jpeg": JpegSource, "hello": HelloSource}
    return kinds[config["source"]](config)
