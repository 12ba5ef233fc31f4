"""Both MicroPython camera drivers behind one small interface, chosen by what the image provides.

Images for the ESP32-CAM carry one of two drivers, both imported as
``camera``:

- lemariva's micropython-camera-driver (images of MicroPython 1.14, 1.18
  and 1.21): module functions ``init(0, format=..., framesize=...,
  quality=..., fb_size=..., fb_location=...)``, ``capture()`` returning a
  ``bytes`` copy (or ``False``), setters ``quality(0..63)`` where lower is
  better, ``framesize(FRAME_*)``, ``speffect(EFFECT_*)``,
  ``whitebalance(WB_*)``, ``flip``, ``mirror``, ``brightness``,
  ``contrast``, ``saturation``. Its grab mode is fixed at WHEN_EMPTY: with
  two buffers a frame can be one capture old.
- cnadler86's micropython-camera-API (MicroPython 1.24 and later): a
  ``Camera`` class whose ``capture()`` returns a ``memoryview`` into the
  driver's buffer (or ``None``), valid until ``free_buffer()`` or the next
  capture; settings are properties (``quality`` as a percentage where
  higher is better, ``frame_size`` from ``FrameSize``, ``special_effect``,
  ``wb_mode``, ``vflip``, ``hmirror``, ...).

:func:`detect` picks the class for the module found. Both classes have the
same interface: ``start(settings)``, ``capture()`` (the frame, or None),
``release()`` (give the frame's buffer back), ``apply(settings)`` and
``stop()``; ``lends_frames`` says whether ``capture()`` returns a view that
``release()`` or the next capture invalidates. ``settings`` is a dict in
the users' vocabulary of :mod:`tcpcam.core.camera_settings`; the tables
below map it to each driver's own names and numbers (the two number frame
sizes differently: VGA is 8 for one and 10 for the other).

Where the board has PSRAM the camera gets two frame buffers (grab-latest
with cnadler86's driver); without, one buffer (in DRAM for lemariva's
driver; cnadler86's driver needs PSRAM and fails to start without).
"""

from tcpcam.core.camera_settings import FRAMESIZE_NAMES, sensor_quality

#: User frame size -> lemariva's constant name.
LEMARIVA_FRAMESIZES = {name: "FRAME_" + name for name in FRAMESIZE_NAMES}
#: User frame size -> the name in cnadler86's ``FrameSize`` (its 240X240 is ``R240X240``).
CAMERA_API_FRAMESIZES = {name: ("R" + name if name[0].isdigit() else name) for name in FRAMESIZE_NAMES}
#: User effect -> lemariva's constant name.
LEMARIVA_EFFECTS = {"none": "EFFECT_NONE", "negative": "EFFECT_NEG", "grayscale": "EFFECT_BW", "red": "EFFECT_RED",
                    "green": "EFFECT_GREEN", "blue": "EFFECT_BLUE", "sepia": "EFFECT_RETRO"}
#: User white balance -> lemariva's constant name (``WB_NONE`` is automatic white balance).
LEMARIVA_WHITEBALANCES = {"auto": "WB_NONE", "sunny": "WB_SUNNY", "cloudy": "WB_CLOUDY", "office": "WB_OFFICE",
                          "home": "WB_HOME"}
#: User effect -> cnadler86's ``special_effect`` number (esp32-camera's; the API exports no names).
CAMERA_API_EFFECTS = {"none": 0, "negative": 1, "grayscale": 2, "red": 3, "green": 4, "blue": 5, "sepia": 6}
#: User white balance -> cnadler86's ``wb_mode`` number (0 is automatic).
CAMERA_API_WHITEBALANCES = {"auto": 0, "sunny": 1, "cloudy": 2, "office": 3, "home": 4}


class LemarivaCamera:
    """lemariva's micropython-camera-driver: module functions, quality 0-63 lower-better, bytes copies."""

    #: The driver's name in console lines.
    name = "lemariva micropython-camera-driver"
    #: capture() returns a copy the caller may keep.
    lends_frames = False

    def __init__(self, module, psram, buffers=0):
        self.module = module
        self.psram = psram
        #: Frame buffers asked for (two with PSRAM unless ``buffers`` says otherwise).
        self.buffers = buffers or (2 if psram else 1)

    def start(self, settings):
        """Stop the camera if it runs (a second init fails and wedges it), init, apply ``settings``."""
        module = self.module
        self.stop()
        module.init(0, format=module.JPEG, framesize=self.framesize(settings["framesize"]),
                    quality=sensor_quality(settings["quality"]), fb_size=self.buffers,
                    fb_location=module.PSRAM if self.psram else module.DRAM)
        self.apply(settings)

    def capture(self):
        """The JPEG as bytes, or None."""
        frame = self.module.capture()
        return frame if frame else None

    def release(self):
        """Nothing: the driver gave its buffer back when it copied the frame."""

    def apply(self, settings):
        """Set every sensor setting of ``settings`` (a dict in the users' vocabulary)."""
        module = self.module
        module.framesize(self.framesize(settings["framesize"]))
        module.quality(sensor_quality(settings["quality"]))
        module.brightness(settings["brightness"])
        module.contrast(settings["contrast"])
        module.saturation(settings["saturation"])
        module.flip(1 if settings["flip"] else 0)
        module.mirror(1 if settings["mirror"] else 0)
        module.speffect(getattr(module, LEMARIVA_EFFECTS[settings["effect"]]))
        module.whitebalance(getattr(module, LEMARIVA_WHITEBALANCES[settings["whitebalance"]]))

    def stop(self):
        """Stop the camera (nothing if it is not running)."""
        self.module.deinit()

    def framesize(self, name):
        """The driver's number for a user frame size name."""
        return getattr(self.module, LEMARIVA_FRAMESIZES[name])

    def describe(self):
        """A few words for the console: buffers and where they live."""
        return "%d frame buffer%s in %s, grab when empty" % (
            self.buffers, "" if self.buffers == 1 else "s", "PSRAM" if self.psram else "DRAM")


class CameraApiCamera:
    """cnadler86's micropython-camera-API: a Camera object, quality in percent, memoryviews into its buffers."""

    #: The driver's name in console lines.
    name = "cnadler86 micropython-camera-API"
    #: capture() returns a view valid until release() or the next capture().
    lends_frames = True

    def __init__(self, module, psram, buffers=0):
        self.module = module
        self.psram = psram
        self.buffers = buffers or (2 if psram else 1)
        self.camera = None

    def start(self, settings):
        """Make the (one) Camera object in JPEG with two buffers and grab-latest where there is PSRAM."""
        module = self.module
        grab = module.GrabMode.LATEST if self.buffers > 1 else module.GrabMode.WHEN_EMPTY
        self.camera = module.Camera(pixel_format=module.PixelFormat.JPEG,
                                    frame_size=self.framesize(settings["framesize"]),
                                    jpeg_quality=settings["quality"], fb_count=self.buffers, grab_mode=grab)
        self.apply(settings)

    def capture(self):
        """A memoryview of the frame in the driver's buffer, or None."""
        return self.camera.capture()

    def release(self):
        """Give the frame's buffer back to the driver, which fills it again."""
        if self.camera is not None:
            self.camera.free_buffer()

    def apply(self, settings):
        """Set every sensor setting of ``settings`` (a dict in the users' vocabulary)."""
        camera = self.camera
        size = self.framesize(settings["framesize"])
        if camera.frame_size != size:
            camera.frame_size = size
        camera.quality = settings["quality"]
        camera.brightness = settings["brightness"]
        camera.contrast = settings["contrast"]
        camera.saturation = settings["saturation"]
        camera.vflip = bool(settings["flip"])
        camera.hmirror = bool(settings["mirror"])
        camera.special_effect = CAMERA_API_EFFECTS[settings["effect"]]
        camera.wb_mode = CAMERA_API_WHITEBALANCES[settings["whitebalance"]]

    def stop(self):
        """De-initialise the camera (nothing if it is not running)."""
        if self.camera is not None:
            self.camera.deinit()

    def framesize(self, name):
        """The driver's number for a user frame size name."""
        return getattr(self.module.FrameSize, CAMERA_API_FRAMESIZES[name])

    def describe(self):
        """A few words for the console: buffers and grab mode."""
        return "%d frame buffer%s in PSRAM, %s" % (
            self.buffers, "" if self.buffers == 1 else "s", "grab latest" if self.buffers > 1 else "grab when empty")


def detect(module, psram, buffers=0):
    """The driver class instance for the ``camera`` module this image carries, or None if it is neither."""
    if hasattr(module, "Camera") and hasattr(module, "FrameSize"):
        return CameraApiCamera(module, psram, buffers)
    if hasattr(module, "init") and hasattr(module, "FRAME_VGA"):
        return LemarivaCamera(module, psram, buffers)
    return None
