"""Frame sources: the camera, a JPEG file, or a fixed text (the original's build types).

Every source has the same interface, which the server drives:

- ``start()``: get ready; False (logged) when it could not, and then
  ``capture()`` tries again later.
- ``capture()``: the frame (bytes-like), or ``False`` when there is none
  this time; then ``problem`` says why in a few words (the core logs the
  first failure in a row). It never busy-waits: a camera driver blocks in
  its own frame queue for at most ``CAMERA_FRAME_WAIT_MS``.
- ``release()``: the server is done with the frame ``capture()`` returned:
  it has been written to every client (or dropped). A source whose
  ``lends`` attribute is True hands out a view into the camera driver's
  frame buffer, valid only until ``release()`` or the next ``capture()``;
  the server must then call ``release()`` once the broadcast is written
  and must not capture again while a client still writes the frame (or
  must copy it, ``bytes(frame)``, for the clients still writing).
- ``apply(changes)``: new camera settings (a dict of some keys of
  :data:`tcpcam.core.camera_settings.SETTINGS`); returns the problems, one
  line each. The camera applies them between frames: at once when no frame
  is lent out, else at ``release()`` or the next ``capture()``.

``lends`` is False unless the server sets ``lend_frames = True`` on the
camera source (protocol 2's server, which releases after the broadcast).
Until then the camera source copies each frame of a driver that lends its
buffer (cnadler86's: one copy per frame, not per client, as lemariva's
driver copies anyway) and gives the buffer back at once, so the current
server, which copies nothing and may capture again while a slow client is
still writing the previous frame, always writes whole, unchanged frames.
"""

import time

from tcpcam_fw import camera_drivers
from tcpcam_fw.log import say

from tcpcam.core.camera_settings import SETTINGS
from tcpcam.core.text import plural


class HelloSource:
    """The same short text every time, as the original's test build."""

    problem = None
    lends = False

    def __init__(self, config):
        self.frame = config["hello_text"].encode()

    def start(self):
        """Nothing to start."""
        return True

    def capture(self):
        """The text as bytes."""
        return self.frame

    def release(self):
        """Nothing to give back."""

    def apply(self, changes):
        """No camera: settings have nothing to change."""
        return []


class JpegSource:
    """One JPEG file from the device's filesystem, read once."""

    lends = False

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

    def release(self):
        """Nothing to give back."""

    def apply(self, changes):
        """No camera: settings have nothing to change."""
        return []


class CameraSource:
    """The camera, through whichever driver the image carries (:mod:`tcpcam_fw.camera_drivers`).

    A failed start is logged and tried again after ``camera_retry_ms``;
    after :attr:`max_failed_captures` failed captures in a row the camera is
    restarted the same way. ``psram`` says whether the board has PSRAM (two
    frame buffers, grab-latest), ``camera_module`` overrides the ``camera``
    import (tests).
    """

    #: Failed captures in a row that make the camera restart.
    max_failed_captures = 5

    def __init__(self, config, psram=False, camera_module=None):
        self.config = config
        self.psram = psram
        self.camera_module = camera_module
        #: The driver adapter, once the camera module was found.
        self.driver = None
        #: Set True by a server that calls release() after each broadcast (see the module).
        self.lend_frames = False
        #: The camera settings in force, in the users' vocabulary.
        self.settings = {option.name: config[option.name] for option in SETTINGS.options}
        self.ready = False
        self.failed_captures = 0
        self.problem = "the camera is not started"
        self._held = False
        self._pending = False
        self._next_start = time.ticks_ms()

    @property
    def lends(self):
        """True when capture() returns a view that release() or the next capture invalidates."""
        return self.lend_frames and self.driver is not None and self.driver.lends_frames

    def start(self):
        """Start the camera; False (logged) when it did not start."""
        config = self.config
        if self.driver is None and not self._find_driver():
            return False
        self._held = False
        try:
            self.driver.start(self.settings)
        except (OSError, ValueError, TypeError, AttributeError) as error:
            self._stop()
            self._retry_later()
            say("camera: init failed (%s); deinit done, retry in %d ms" % (error, config["camera_retry_ms"]))
            return False
        self.ready = True
        self._pending = False
        self.failed_captures = 0
        say("camera: started with %s, %s, %s, quality %d%%" % (
            self.driver.name, self.driver.describe(), self.settings["framesize"], self.settings["quality"]))
        return True

    def capture(self):
        """The frame, or False (the camera failed or is not started yet)."""
        if self._held:
            self.release()
        if not self.ready:
            if time.ticks_diff(self._next_start, time.ticks_ms()) > 0 or not self.start():
                self.problem = "the camera is not started"
                return False
        if self._pending:
            self._apply_now()
        try:
            frame = self.driver.capture()
        except MemoryError:
            frame = None
            say("camera: no memory for the frame")
        except OSError as error:
            frame = None
            self.problem = "the camera failed (%s)" % (error,)
        if frame is None or not len(frame):
            if frame is not None:
                self.driver.release()
            self.problem = "the camera gave no frame"
            self.failed_captures += 1
            if self.failed_captures >= self.max_failed_captures:
                say("camera: %d failed captures in a row; restarting the camera" % self.failed_captures)
                self._stop()
            return False
        self.failed_captures = 0
        if not self.driver.lends_frames:
            return frame
        if self.lend_frames:
            self._held = True
            return frame
        try:
            copy = bytes(frame)
        except MemoryError:
            copy = False
            self.problem = "no memory to copy the frame"
        frame = None
        self.driver.release()
        return copy

    def release(self):
        """The frame capture() returned has gone to every client: give its buffer back."""
        if self._held:
            self._held = False
            self.driver.release()
        if self._pending and self.ready:
            self._apply_now()

    def apply(self, changes):
        """Take new settings (checked by the core's table); returns the problems, one line each."""
        settings, problems = SETTINGS.merge(changes, self.settings)
        changed = settings != self.settings
        self.settings = settings
        if changed:
            self._pending = True
            if self.ready and not self._held:
                self._apply_now()
        return ["camera: %s" % problem for problem in problems]

    def _apply_now(self):
        self._pending = False
        try:
            self.driver.apply(self.settings)
        except (OSError, ValueError, TypeError, AttributeError) as error:
            say("camera: settings not applied (%s); restarting the camera" % (error,))
            self._stop()
            return
        say("camera: settings applied: %s, quality %d%%" % (self.settings["framesize"], self.settings["quality"]))

    def _find_driver(self):
        module = self.camera_module
        if module is None:
            try:
                import camera as module
            except ImportError:
                self._retry_later()
                say("camera: no camera module in this MicroPython image; flash one built with a camera driver")
                return False
        driver = camera_drivers.detect(module, self.psram, self.config["frame_buffers"])
        if driver is None:
            self._retry_later()
            say("camera: the camera module is neither lemariva's nor cnadler86's driver")
            return False
        self.driver = driver
        return True

    def _retry_later(self):
        self._next_start = time.ticks_add(time.ticks_ms(), self.config["camera_retry_ms"])

    def _stop(self):
        self.ready = False
        self._held = False
        try:
            self.driver.stop()
        except (OSError, AttributeError):
            pass


class Monitored:
    """A source whose every capture marks the frame loop alive and is counted in health.

    The server sees the same interface as the source's; ``on_capture(ok)``
    is called after each capture with whether it gave a frame.
    """

    def __init__(self, source, on_capture):
        self.source = source
        self.on_capture = on_capture

    @property
    def problem(self):
        """The wrapped source's problem."""
        return self.source.problem

    @property
    def lends(self):
        """Whether the wrapped source lends its frames."""
        return self.source.lends

    @property
    def lend_frames(self):
        """Whether the server releases each frame after its broadcast (see the module)."""
        return getattr(self.source, "lend_frames", False)

    @lend_frames.setter
    def lend_frames(self, value):
        self.source.lend_frames = value

    def start(self):
        """Start the wrapped source."""
        return self.source.start()

    def capture(self):
        """The wrapped source's frame, counted."""
        frame = self.source.capture()
        self.on_capture(frame is not False and frame is not None)
        return frame

    def release(self):
        """Give the frame back to the wrapped source."""
        self.source.release()

    def apply(self, changes):
        """New settings for the wrapped source."""
        return self.source.apply(changes)


def make_source(config, psram=False):
    """The source named by ``config["source"]``."""
    if config["source"] == "camera":
        return CameraSource(config, psram)
    kinds = {"jpeg": JpegSource, "hello": HelloSource}
    return kinds[config["source"]](config)
