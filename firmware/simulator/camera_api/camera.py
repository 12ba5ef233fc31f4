"""A stand-in for cnadler86's micropython-camera-API ``camera`` module (v0.6.2), for the unix port.

It plays the driver of the ``ESP32_GENERIC-SPIRAM@AI_THINKER`` image with an
OV2640 sensor, as ``src/modcamera_api.c`` and ``src/modcamera.c`` of v0.6.2
define it, with the sensor checks of esp32-camera's ``sensors/ov2640.c``:

- module: ``Camera``, ``PixelFormat``, ``FrameSize``, ``GainCeiling``,
  ``GrabMode`` (classes of int constants; ``FrameSize.VGA`` is 10, where
  lemariva's ``FRAME_VGA`` is 8; ``GainCeiling`` names start with a digit:
  ``getattr(GainCeiling, "2X")``); no ``Version`` (release builds lack it).
- ``Camera(**kw)``: keyword-only (``data_pins``, ``pclk_pin``, ...,
  ``pixel_format=RGB565``, ``frame_size=QQVGA``, ``jpeg_quality=85``,
  ``fb_count=1``, ``grab_mode=WHEN_EMPTY``, ``init=True``); one camera
  object only (a second ``Camera()`` de-inits and reconfigures the same
  object); it captures a test frame and raises ``OSError("Failed to
  capture initial frame. ...")`` when there is none; ``OSError(-261,
  "ESP_ERR_NOT_FOUND")`` when ``esp_camera_init`` fails (no sensor);
  ``fb_count`` above 2 or below 1 is clamped with a ``Warning:`` line.
- ``capture()``: a ``memoryview`` (typecode ``'b'``) into one of the
  driver's ``fb_count`` frame buffers, or ``None``; the view is valid
  until the next ``capture()``, ``free_buffer()``, ``deinit()``,
  ``reconfigure()`` or frame size change: then the driver takes the buffer
  back and writes the next frame into it at once (so a view kept too long
  shows another frame, as on the board). ``OSError(ENOENT)`` when the
  camera is not initialised (also from ``frame_available``,
  ``reconfigure`` and every ``get_``/``set_`` of a sensor setting).
- properties: read-only ``pixel_format``, ``grab_mode``, ``fb_count``,
  ``pixel_width``, ``pixel_height``, ``max_frame_size``, ``sensor_name``
  (assigning: ``ValueError("read-only property")``); read-write sensor
  settings (``frame_size``, ``quality`` as a percentage, ``contrast``,
  ``brightness``, ``saturation``, ``special_effect``, ``wb_mode``,
  ``vflip``, ``hmirror``, ...); a value the OV2640 refuses:
  ``ValueError("Invalid setting for NAME")``. While the camera is not
  initialised every property, read or written, is an ``AttributeError``.

The OV2640's register defaults read at init are approximated (automatic
exposure, gain and white balance on, the rest off). Frames come from the
same files as the other stand-in (``TCPCAM_CAMERA_DIR``, else
``test.jpg``), read into the frame buffers, which are on the unix port's
heap (on the board they are in PSRAM, outside the Python heap). Failures
for tests: ``TCPCAM_CAMERA_FAIL`` (capture numbers, 1-based, not counting
the constructor's test frame, that return None; ``all`` also fails the test
frame), ``TCPCAM_CAMERA_INIT_FAIL`` (how many initialisations fail),
``TCPCAM_CAMERA_HANG`` (a capture number that never returns). Not part of
the device bundle.
"""

import array as _array
import os as _os
import sys as _sys
import time as _time

from standin_env import init_fails as _init_fails
from standin_env import next_capture as _next_capture
from standin_env import start as _start

_ENOENT = 2


class PixelFormat:
    """Pixel formats (esp32-camera ``pixformat_t``)."""

    RGB565 = 0
    YUV422 = 1
    YUV420 = 2
    GRAYSCALE = 3
    JPEG = 4
    RGB888 = 5
    RAW = 6
    RGB444 = 7
    RGB555 = 8


class FrameSize:
    """Frame sizes (cnadler86/esp32-camera ``framesize_t``, with 128X128 and 320X320)."""

    R96X96 = 0
    QQVGA = 1
    R128x128 = 2
    QCIF = 3
    HQVGA = 4
    R240X240 = 5
    QVGA = 6
    R320X320 = 7
    CIF = 8
    HVGA = 9
    VGA = 10
    SVGA = 11
    XGA = 12
    HD = 13
    SXGA = 14
    UXGA = 15
    FHD = 16
    P_HD = 17
    P_3MP = 18
    QXGA = 19
    QHD = 20
    WQXGA = 21
    P_FHD = 22
    QSXGA = 23


class GrabMode:
    """When the driver fills its frame buffers."""

    WHEN_EMPTY = 0
    LATEST = 1


class GainCeiling:
    """Gain ceilings; the names start with a digit: ``getattr(GainCeiling, "2X")``."""


for _index, _name in enumerate(("2X", "4X", "8X", "16X", "32X", "64X", "128X")):
    setattr(GainCeiling, _name, _index)
del _index, _name

#: (width, height) of each FrameSize value (esp32-camera driver/sensor.c ``resolution``).
_RESOLUTION = (
    (96, 96), (160, 120), (128, 128), (176, 144), (240, 176), (240, 240), (320, 240), (320, 320), (400, 296),
    (480, 320), (640, 480), (800, 600), (1024, 768), (1280, 720), (1280, 1024), (1600, 1200), (1920, 1080),
    (720, 1280), (864, 1536), (2048, 1536), (2560, 1440), (2560, 1600), (1088, 1920), (2560, 1920),
)
#: The OV2640's largest frame size.
_MAX_FRAME_SIZE = FrameSize.UXGA
#: The constructor's keywords and the AI_THINKER image's defaults (modcamera.h, camera_pins.h).
_DEFAULTS = {
    "data_pins": None, "pclk_pin": 22, "vsync_pin": 25, "href_pin": 23, "sda_pin": 26, "scl_pin": 27,
    "xclk_pin": 0, "i2c": None, "xclk_freq": 20, "powerdown_pin": 32, "reset_pin": -1,
    "pixel_format": PixelFormat.RGB565, "frame_size": FrameSize.QQVGA, "jpeg_quality": 85, "fb_count": 1,
    "grab_mode": GrabMode.WHEN_EMPTY, "init": True,
}
_INT_ARGUMENTS = ("pclk_pin", "vsync_pin", "href_pin", "sda_pin", "scl_pin", "xclk_pin", "xclk_freq", "powerdown_pin",
                  "reset_pin", "pixel_format", "frame_size", "jpeg_quality", "fb_count", "grab_mode")
_READ_ONLY = ("pixel_format", "grab_mode", "fb_count", "pixel_width", "pixel_height", "max_frame_size", "sensor_name")
#: Read-write sensor settings: name -> (kind, low, high) of what the OV2640 accepts (None: anything).
_SETTINGS = {
    "frame_size": ("int", None, None), "quality": ("int", None, None),
    "contrast": ("int", -2, 2), "brightness": ("int", -2, 2), "saturation": ("int", -2, 2),
    "sharpness": ("int", 1, 0), "denoise": ("int", 1, 0),  # the OV2640 refuses every value
    "gainceiling": ("int", None, None), "colorbar": ("bool", None, None), "whitebal": ("bool", None, None),
    "gain_ctrl": ("bool", None, None), "exposure_ctrl": ("bool", None, None), "hmirror": ("bool", None, None),
    "vflip": ("bool", None, None), "aec2": ("bool", None, None), "awb_gain": ("bool", None, None),
    "agc_gain": ("int", None, None), "aec_value": ("int", None, None), "special_effect": ("int", 0, 6),
    "wb_mode": ("int", 0, 4), "ae_level": ("int", -2, 2), "dcw": ("bool", None, None), "bpc": ("bool", None, None),
    "wpc": ("bool", None, None), "raw_gma": ("bool", None, None), "lenc": ("bool", None, None),
}
_SENSOR_DEFAULTS = {
    "contrast": 0, "brightness": 0, "saturation": 0, "sharpness": 0, "denoise": 0, "gainceiling": 0,
    "colorbar": False, "whitebal": True, "gain_ctrl": True, "exposure_ctrl": True, "hmirror": False, "vflip": False,
    "aec2": False, "awb_gain": True, "agc_gain": 0, "aec_value": 0, "special_effect": 0, "wb_mode": 0, "ae_level": 0,
    "dcw": True, "bpc": False, "wpc": True, "raw_gma": True, "lenc": True,
}

#: The driver's state (one camera, as the C singleton), for tests as well.
state = {
    "object": None, "initialized": False, "config": None, "sensor": {}, "buffers": [], "lengths": [],
    "ready": [], "held": None, "captures": 0, "fills": 0, "inits": 0, "frees": 0, "files": [], "fail": [], "hang": 0,
}


def _warning(text):
    # mp_warning prints to the error printer (stderr on the unix port, the UART on a board).
    print("Warning: " + text, file=_sys.stderr)


def _as_int(value):
    if not isinstance(value, (int, bool)):
        raise TypeError("can't convert %s to int" % type(value).__name__)
    return int(value)


def _no_attribute(name):
    return AttributeError("'Camera' object has no attribute '%s'" % name)


def _check_init():
    if not state["initialized"]:
        raise OSError(_ENOENT)


def _mapped_quality(percent):
    # modcamera.c map(q, 0, 100, 63, 0) with C integer division (truncation towards zero).
    scaled = percent * -63
    step = -(-scaled // 100) if scaled < 0 else scaled // 100
    return step + 63


def _check_fb_count(count):
    if count > 2:
        _warning("Frame buffer size limited to 2")
        return 2
    if count < 1:
        _warning("Frame buffer size must be >0. Setting it to 1")
        return 1
    return count


def _check_grab_mode(mode):
    if mode not in (GrabMode.WHEN_EMPTY, GrabMode.LATEST):
        raise ValueError("Invalid grab_mode")
    return mode


def _check_pixel_format(pixel_format):
    if pixel_format > PixelFormat.RGB555:
        raise ValueError("Invalid pixel_format")
    return pixel_format


def _fill(index):
    """The driver writes the next frame into buffer ``index``."""
    files = state["files"]
    buffer = state["buffers"][index]
    state["fills"] += 1
    length = 0
    if files:
        try:
            with open(files[(state["fills"] - 1) % len(files)], "rb") as handle:
                length = handle.readinto(buffer) or 0
        except OSError:
            length = 0
    state["lengths"][index] = length
    state["ready"].append(index)


def _give_back():
    """``esp_camera_fb_return`` of the held buffer: the driver fills it again at once."""
    held = state["held"]
    if held is not None:
        state["held"] = None
        _fill(held)


def _init_camera():
    if state["initialized"]:
        return
    config = state["config"]
    if config["fb_count"] > 1 and config["pixel_format"] != PixelFormat.JPEG:
        _warning("It is recomended to use a frame buffer size of 1 for non-JPEG pixel format")
    state["inits"] += 1
    if _init_fails(state["inits"]):
        print("E (%d) camera: Camera probe failed with error 0x105(ESP_ERR_NOT_FOUND)" % _time.ticks_ms())
        raise OSError(-261, "ESP_ERR_NOT_FOUND")
    _start(state)
    size = 1
    for name in state["files"]:
        try:
            size = max(size, _os.stat(name)[6])
        except OSError:
            pass
    if len(state["buffers"]) != config["fb_count"] or len(state["buffers"][0]) < size:
        state["buffers"] = []
        _gc_collect()
        state["buffers"] = [_array.array("b", bytes(size)) for _ in range(config["fb_count"])]
    state["lengths"] = [0] * config["fb_count"]
    state["ready"] = []
    state["held"] = None
    for index in range(config["fb_count"]):
        _fill(index)
    state["initialized"] = True


def _deinit_camera():
    if state["initialized"]:
        state["held"] = None
        state["ready"] = []
        state["initialized"] = False


def _take_frame():
    _check_init()
    _give_back()
    if _next_capture(state):
        return None
    return _newest_or_oldest()


def _newest_or_oldest():
    ready = state["ready"]
    if not ready:
        return None
    latest = state["config"]["grab_mode"] == GrabMode.LATEST
    index = ready.pop(-1 if latest else 0)
    state["held"] = index
    if not state["lengths"][index]:
        return None
    return memoryview(state["buffers"][index])[:state["lengths"][index]]


def _gc_collect():
    # Let go of old frame buffers before new ones are made (the stand-in's buffers are on the heap).
    import gc

    gc.collect()


def _sensor_get(name):
    _check_init()
    if name == "quality":
        return state["config"]["jpeg_quality"]
    if name == "frame_size":
        return state["config"]["frame_size"]
    return state["sensor"][name]


def _sensor_set(name, value):
    _check_init()
    kind, low, high = _SETTINGS[name]
    if kind == "bool":
        value = bool(value)
    else:
        value = _as_int(value)
    if name == "frame_size":
        _set_frame_size(value)
        return
    if name == "quality":
        # The driver maps the percentage to 0-63 and the OV2640 clamps that: every int is accepted.
        state["sensor"]["sensor_quality"] = min(63, max(0, _mapped_quality(value)))
        state["config"]["jpeg_quality"] = value
        return
    if low is not None and not low <= value <= high:
        raise ValueError("Invalid setting for " + name)
    state["sensor"][name] = value


def _set_frame_size(value):
    if value > _MAX_FRAME_SIZE:
        _warning("Frame size will be scaled down to maximal frame size supported by the camera sensor")
        value = _MAX_FRAME_SIZE
    if value < 0:
        raise ValueError("Invalid setting for frame_size")
    if state["held"] is not None:
        _give_back()
    state["config"]["frame_size"] = value


def _read_only_get(name):
    config = state["config"]
    if name in ("pixel_format", "grab_mode", "fb_count"):
        return config[name]
    _check_init()
    if name == "pixel_width":
        return _RESOLUTION[config["frame_size"]][0]
    if name == "pixel_height":
        return _RESOLUTION[config["frame_size"]][1]
    if name == "max_frame_size":
        return _MAX_FRAME_SIZE
    return "OV2640"


class Camera:
    """The camera (one object, as the driver's static singleton)."""

    def __new__(cls, *args, **kwargs):
        if args:
            raise TypeError("extra positional arguments given")
        for name in kwargs:
            if name not in _DEFAULTS:
                raise TypeError("extra keyword arguments given")
        values = dict(_DEFAULTS)
        values.update(kwargs)
        pins = values["data_pins"]
        if pins is not None:
            if not isinstance(pins, (list, bytearray)):
                raise TypeError("data_pins must be a list or bytearray")
            if len(pins) != 8:
                raise ValueError("data_pins must have 8 elements")
            pins = [_as_int(pin) for pin in pins]
        for name in _INT_ARGUMENTS:
            values[name] = _as_int(values[name])
        if values["i2c"] is not None:
            raise TypeError("i2c must be a machine.I2C object")
        if values["xclk_freq"] < 1000:
            values["xclk_freq"] *= 1000000
        if not 0 <= values["jpeg_quality"] <= 100:
            raise ValueError("jpeg quality must be in range 0-100")
        camera = state["object"]
        if camera is None:
            camera = object.__new__(cls)
            state["object"] = camera
        else:
            _deinit_camera()
        config = {"pixel_format": _check_pixel_format(values["pixel_format"]), "frame_size": values["frame_size"],
                  "jpeg_quality": values["jpeg_quality"], "xclk_freq": values["xclk_freq"]}
        if config["xclk_freq"] > 40000000:
            raise ValueError("xclk frequency cannot be grather than 40MHz")
        config["fb_count"] = _check_fb_count(values["fb_count"])
        config["grab_mode"] = _check_grab_mode(values["grab_mode"])
        config["data_pins"] = pins or [5, 18, 19, 21, 36, 39, 34, 35]
        state["config"] = config
        state["sensor"] = dict(_SENSOR_DEFAULTS)
        _init_camera()
        state["sensor"]["sensor_quality"] = _mapped_quality(config["jpeg_quality"])
        if state["fail"] == "all" or _newest_or_oldest() is None:
            _deinit_camera()
            raise OSError("Failed to capture initial frame. Construct a new object with appropriate configuration.")
        if values["init"]:
            _give_back()
        else:
            _deinit_camera()
        return camera

    def __init__(self, *args, **kwargs):
        pass

    def __getattr__(self, name):
        if not state["initialized"]:
            raise _no_attribute(name)
        if name in _READ_ONLY:
            return _read_only_get(name)
        if name in _SETTINGS:
            return _sensor_get(name)
        raise _no_attribute(name)

    def __setattr__(self, name, value):
        if not state["initialized"]:
            raise _no_attribute(name)
        if name in _READ_ONLY:
            raise ValueError("read-only property")
        if name not in _SETTINGS:
            raise _no_attribute(name)
        _sensor_set(name, value)

    def __repr__(self):
        return "Camera with sensor OV2640" if state["initialized"] else "Camera unknown"

    def __enter__(self):
        return self

    def __exit__(self, *exc_info):
        self.deinit()

    def init(self):
        """(Re)initialise with the stored configuration; nothing if running."""
        _init_camera()

    def deinit(self):
        """Give back every buffer and stop; nothing if not running."""
        _deinit_camera()

    def capture(self):
        """A memoryview of the next frame in the driver's buffer, or None."""
        return _take_frame()

    def free_buffer(self):
        """Give the held frame buffer back to the driver."""
        if state["initialized"]:
            _give_back()
            state["frees"] += 1

    def frame_available(self):
        """True when a filled frame buffer waits."""
        _check_init()
        return bool(state["ready"])

    def reconfigure(self, *args, **kwargs):
        """Change frame size, pixel format, grab mode or buffer count (keywords only), then re-init."""
        if args:
            raise TypeError("extra positional arguments given")
        for name in kwargs:
            if name not in ("frame_size", "pixel_format", "grab_mode", "fb_count"):
                raise TypeError("extra keyword arguments given")
        _check_init()
        config = state["config"]
        _set_frame_size(_as_int(kwargs.get("frame_size", config["frame_size"])))
        config["pixel_format"] = _check_pixel_format(_as_int(kwargs.get("pixel_format", config["pixel_format"])))
        config["grab_mode"] = _check_grab_mode(_as_int(kwargs.get("grab_mode", config["grab_mode"])))
        config["fb_count"] = _check_fb_count(_as_int(kwargs.get("fb_count", config["fb_count"])))
        _deinit_camera()
        _init_camera()


def _make_getter(name):
    def get(self):
        if name in _READ_ONLY:
            return _read_only_get(name)
        return _sensor_get(name)
    return get


def _make_setter(name):
    def set_value(self, value):
        _sensor_set(name, value)
        if _sensor_get(name) != (bool(value) if _SETTINGS[name][0] == "bool" else value):
            _warning("Failed to set " + name)
    return set_value


for _name in _READ_ONLY:
    setattr(Camera, "get_" + _name, _make_getter(_name))
for _name in _SETTINGS:
    setattr(Camera, "get_" + _name, _make_getter(_name))
    setattr(Camera, "set_" + _name, _make_setter(_name))
del _name
