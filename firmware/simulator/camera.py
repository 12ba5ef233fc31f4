"""A stand-in for lemariva's micropython-camera-driver ``camera`` module, for the unix port.

It plays the driver of the ``micropython_v1.21.0_camera_no_ble.bin`` image
(MicroPython 1.21.0, esp32-camera 2.0.5), so the pixel format constants are
that image's (``JPEG`` 4, ``GRAYSCALE`` 3; the 1.18 image had 3 and 2).
Same functions, arguments, constants, return values and errors as the
driver's ``modcamera.c``:

- ``init(id, *, format=JPEG, framesize=FRAME_VGA, quality=12, ...,
  fb_size=1, fb_location=DRAM)``: one positional argument (required,
  ignored), the rest keyword-only; True, or ``OSError("Camera Init
  Failed")``; ``ValueError`` for a bad format, frame size or clock; the
  argument parser's ``TypeError`` texts for a missing or extra positional
  argument or an unknown keyword. Grab mode is fixed (WHEN_EMPTY).
- ``init`` on a camera that is already running fails the way esp32-camera
  does: ``OSError("Camera Init Failed")``, the camera is left stopped, and
  every later ``init`` fails too until the board is reset (the driver
  leaked its interrupt): here, until the process ends.
- ``capture()``: the JPEG as ``bytes`` (a copy), or ``False``; never raises.
- ``deinit()``: True, or False when the camera was not running.
- setters (``flip``, ``mirror``, ``framesize``, ``quality``, ``contrast``,
  ``saturation``, ``brightness``, ``speffect``, ``whitebalance``): None,
  or False before ``init`` (checked before the value); ``framesize`` alone
  checks its value; the sensor's own return code is ignored.

Frames come from the ``*.jpg``/``*.jpeg`` files of the folder named by the
environment variable ``TCPCAM_CAMERA_DIR`` (in name order, round and round),
else from ``test.jpg`` in the current folder. Failures for tests:
``TCPCAM_CAMERA_FAIL`` lists capture numbers (1-based, comma separated) that
return False, or ``all``; ``TCPCAM_CAMERA_INIT_FAIL`` is how many ``init``
calls fail before one succeeds; ``TCPCAM_CAMERA_HANG`` is a capture number
that never returns (a wedged driver: only the watchdog gets the board back).
Besides the driver's names, the module has only ``state`` (what the driver
was told, for tests) and private names. Not part of the device bundle.
"""

import os as _os
import time as _time

from standin_env import init_fails as _init_fails
from standin_env import next_capture as _next_capture
from standin_env import start as _start

JPEG = 4
YUV422 = 1
GRAYSCALE = 3
RGB565 = 0

FRAME_96X96 = 0
FRAME_QQVGA = 1
FRAME_QCIF = 2
FRAME_HQVGA = 3
FRAME_240X240 = 4
FRAME_QVGA = 5
FRAME_CIF = 6
FRAME_HVGA = 7
FRAME_VGA = 8
FRAME_SVGA = 9
FRAME_XGA = 10
FRAME_HD = 11
FRAME_SXGA = 12
FRAME_UXGA = 13
FRAME_FHD = 14
FRAME_P_HD = 15
FRAME_P_3MP = 16
FRAME_QXGA = 17
FRAME_QHD = 18
FRAME_WQXGA = 19
FRAME_P_FHD = 20
FRAME_QSXGA = 21

WB_NONE = 0
WB_SUNNY = 1
WB_CLOUDY = 2
WB_OFFICE = 3
WB_HOME = 4

EFFECT_NONE = 0
EFFECT_NEG = 1
EFFECT_BW = 2
EFFECT_RED = 3
EFFECT_GREEN = 4
EFFECT_BLUE = 5
EFFECT_RETRO = 6

XCLK_10MHz = 10000000
XCLK_20MHz = 20000000

DRAM = 1
PSRAM = 0

_FORMATS = (JPEG, YUV422, GRAYSCALE, RGB565)
_XCLK = (XCLK_10MHz, XCLK_20MHz)
#: init's keywords and defaults (modcamera.c allowed_args, modcamera.h defaults).
_INIT_DEFAULTS = {
    "format": JPEG, "framesize": FRAME_VGA, "quality": 12, "d0": 5, "d1": 18, "d2": 19, "d3": 21, "d4": 36,
    "d5": 39, "d6": 34, "d7": 35, "vsync": 25, "href": 23, "pclk": 22, "pwdn": 32, "reset": -1, "xclk": 0,
    "siod": 26, "sioc": 27, "xclk_freq": XCLK_10MHz, "fb_size": 1, "fb_location": DRAM,
}

#: What the stand-in was told, for tests: init arguments and sensor settings.
state = {"running": False, "leaked": False, "inits": 0, "captures": 0, "settings": {}}


def _idf_error(text):
    # esp32-camera logs on the console (the UART) before the driver raises.
    print("E (%d) camera: %s" % (_time.ticks_ms(), text))


def init(*args, **kwargs):
    """Start the camera: True, or OSError("Camera Init Failed")."""
    if not args:
        raise TypeError("function missing 1 required positional arguments")
    if len(args) > 1:
        raise TypeError("extra positional arguments given")
    for name in kwargs:
        if name not in _INIT_DEFAULTS:
            raise TypeError("extra keyword arguments given")
    values = dict(_INIT_DEFAULTS)
    values.update(kwargs)
    for name in _INIT_DEFAULTS:
        values[name] = _as_int(values[name])
    if values["format"] not in _FORMATS:
        raise ValueError("Image format is not valid")
    _check_framesize(values["framesize"])
    if values["xclk_freq"] not in _XCLK:
        raise ValueError("xclk frequency is not valid")
    state["inits"] += 1
    if state["running"]:
        # esp_camera_init on a running camera: camera_probe fails, the driver deinits and leaks.
        _idf_error("Camera probe failed with error 0x103(ESP_ERR_INVALID_STATE)")
        _idf_error("Camera Init Failed")
        state["running"] = False
        state["leaked"] = True
        raise OSError("Camera Init Failed")
    if state["leaked"]:
        _idf_error("cam intr alloc failed")
        _idf_error("Camera Init Failed")
        raise OSError("Camera Init Failed")
    if _init_fails(state["inits"]):
        _idf_error("Camera probe failed with error 0x105(ESP_ERR_NOT_FOUND)")
        _idf_error("Camera Init Failed")
        raise OSError("Camera Init Failed")
    state["running"] = True
    state["settings"] = {"format": values["format"], "framesize": values["framesize"], "quality": values["quality"],
                         "fb_size": values["fb_size"], "fb_location": values["fb_location"]}
    _start(state)
    return True


def deinit(*args):
    """Stop the camera: True, or False when it was not running."""
    _check_count(args, 0)
    if not state["running"]:
        return False
    state["running"] = False
    return True


def capture(*args):
    """The next JPEG as bytes, or False when the capture fails."""
    _check_count(args, 0)
    if not state["running"]:
        return False
    if _next_capture(state):
        return False
    number = state["captures"]
    files = state["files"]
    if not files:
        return False
    path = files[(number - 1) % len(files)]
    try:
        # One allocation of exactly the frame's size, as the driver's copy of its frame buffer.
        size = _os.stat(path)[6]
        with open(path, "rb") as handle:
            return handle.read(size)
    except OSError:
        return False


def _check_count(args, count):
    if len(args) != count:
        raise TypeError("function takes %d positional arguments but %d were given" % (count, len(args)))


def _as_int(value):
    # The driver reads every argument with mp_obj_get_int: an int or a bool, else TypeError.
    if not isinstance(value, (int, bool)):
        raise TypeError("can't convert %s to int" % type(value).__name__)
    return int(value)


def _check_framesize(size):
    if not FRAME_96X96 <= size <= FRAME_QSXGA:
        raise ValueError("Image framesize is not valid")


def _setter(name, check=None):
    def set_value(*args):
        _check_count(args, 1)
        if not state["running"]:
            return False
        value = _as_int(args[0])
        if check is not None:
            check(value)
        state["settings"][name] = value
        return None
    return set_value


flip = _setter("flip")
mirror = _setter("mirror")
framesize = _setter("framesize", _check_framesize)
quality = _setter("quality")
contrast = _setter("contrast")
saturation = _setter("saturation")
brightness = _setter("brightness")
speffect = _setter("speffect")
whitebalance = _setter("whitebalance")
