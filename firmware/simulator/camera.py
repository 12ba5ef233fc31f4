"""A stand-in for micropython-camera-driver's ``camera`` module, for the unix port.

Same functions, arguments, constants and return values as the driver:
``init`` takes the camera id as its one positional argument and the rest
as keywords only, and returns True or raises ``OSError("Camera Init
Failed")`` (``ValueError`` for a bad format, frame size or clock),
``capture`` returns the JPEG as bytes or ``False``, ``deinit`` returns
False when the camera was not running, the sensor setters return None (or
False before ``init``). Calling ``init`` on a running camera reboots a real
board: here it raises SystemExit, so the firmware's mistake cannot go unseen.

Frames come from the ``*.jpg``/``*.jpeg`` files of the folder named by the
environment variable ``TCPCAM_CAMERA_DIR`` (in name order, round and round),
else from ``test.jpg`` in the current folder. Failures for tests:
``TCPCAM_CAMERA_FAIL`` lists capture numbers (1-based, comma separated) that
return False, or ``all``; ``TCPCAM_CAMERA_INIT_FAIL`` is how many ``init``
calls fail before one succeeds. Not part of the device bundle.
"""

import os

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

#: What the stand-in was told, for tests: init arguments and sensor settings.
state = {"running": False, "inits": 0, "captures": 0, "settings": {}}


def _getenv(name):
    getenv = getattr(os, "getenv", None)
    return getenv(name) if getenv else None


def _failing_captures():
    text = _getenv("TCPCAM_CAMERA_FAIL") or ""
    if text.strip() == "all":
        return "all"
    numbers = []
    for part in text.split(","):
        part = part.strip()
        if part:
            numbers.append(int(part))
    return numbers


def _frame_files():
    folder = _getenv("TCPCAM_CAMERA_DIR")
    if not folder:
        return ["test.jpg"]
    names = sorted(
        name for name in os.listdir(folder)
        if name.lower().endswith(".jpg") or name.lower().endswith(".jpeg")
    )
    return [folder + "/" + name for name in names]


def init(id, *, format=JPEG, framesize=FRAME_VGA, quality=12, d0=5, d1=18, d2=19, d3=21, d4=36, d5=39,
         d6=34, d7=35, vsync=25, href=23, pclk=22, pwdn=32, reset=-1, xclk=0, siod=26, sioc=27,
         xclk_freq=XCLK_10MHz, fb_size=1, fb_location=DRAM):
    """Start the camera: True, or OSError("Camera Init Failed")."""
    for value in (format, framesize, quality, d0, d1, d2, d3, d4, d5, d6, d7, vsync, href, pclk, pwdn, reset,
                  xclk, siod, sioc, xclk_freq, fb_size, fb_location):
        _as_int(value)
    if format not in _FORMATS:
        raise ValueError("Image format is not valid")
    _check_framesize(framesize)
    if xclk_freq not in _XCLK:
        raise ValueError("xclk frequency is not valid")
    if state["running"]:
        print("camera: init() on a running camera: a real board reboots here")
        raise SystemExit(70)
    state["inits"] += 1
    if state["inits"] <= int(_getenv("TCPCAM_CAMERA_INIT_FAIL") or 0):
        raise OSError("Camera Init Failed")
    state["running"] = True
    state["settings"] = {"format": format, "framesize": framesize, "quality": quality, "fb_location": fb_location}
    state["files"] = _frame_files()
    state["fail"] = _failing_captures()
    return True


def deinit():
    """Stop the camera: True, or False when it was not running."""
    if not state["running"]:
        return False
    state["running"] = False
    return True


def capture():
    """The next JPEG as bytes, or False when the capture fails."""
    if not state["running"]:
        return False
    state["captures"] += 1
    number = state["captures"]
    fail = state["fail"]
    if fail == "all" or number in fail:
        return False
    files = state["files"]
    if not files:
        return False
    try:
        with open(files[(number - 1) % len(files)], "rb") as handle:
            return handle.read()
    except OSError:
        return False


def _as_int(value):
    # The driver reads every argument with mp_obj_get_int: an int or a bool, else TypeError.
    if not isinstance(value, (int, bool)):
        raise TypeError("can't convert %s to int" % type(value).__name__)
    return int(value)


def _check_framesize(size):
    if not FRAME_96X96 <= size <= FRAME_QSXGA:
        raise ValueError("Image framesize is not valid")


def _setter(name, check=None):
    def set_value(value):
        if not state["running"]:
            return False
        value = _as_int(value)
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
