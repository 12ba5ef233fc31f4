"""One vocabulary of camera settings for users: ``config.json``, protocol 2 and the command line.

The firmware maps each setting to whichever camera driver the board's
image carries (the two drivers number frame sizes differently and grade
JPEG quality on opposite scales); users only ever see these names and
ranges. ``quality`` is a percentage where higher is better, as in most
tools: the default 85 is the sensor's 10 of 63, the original firmware's
quality.
"""

from tcpcam.core.options import Option, OptionTable

#: Frame sizes offered by the original firmware, smallest first, with their pixels.
FRAMESIZES = (
    ("240X240", 240, 240), ("QVGA", 320, 240), ("CIF", 400, 296), ("HVGA", 480, 320), ("VGA", 640, 480),
    ("SVGA", 800, 600), ("XGA", 1024, 768), ("HD", 1280, 720), ("SXGA", 1280, 1024), ("UXGA", 1600, 1200),
)
#: Their names, in the same order.
FRAMESIZE_NAMES = tuple(name for name, _, _ in FRAMESIZES)
#: Special effects both drivers offer.
EFFECTS = ("none", "negative", "grayscale", "red", "green", "blue", "sepia")
#: White balance modes both drivers offer.
WHITEBALANCES = ("auto", "sunny", "cloudy", "office", "home")

SETTINGS = OptionTable((
    Option("framesize", "VGA", "choice", meaning="picture size", choices=FRAMESIZE_NAMES),
    Option("quality", 85, "int", 1, 100, "JPEG quality in percent, higher is better"),
    Option("brightness", 0, "int", -2, 2, "brightness, -2 (darkest) to 2"),
    Option("contrast", 0, "int", -2, 2, "contrast, -2 to 2"),
    Option("saturation", 0, "int", -2, 2, "colour saturation, -2 (gray) to 2"),
    Option("flip", False, "bool", meaning="flip the picture upside down"),
    Option("mirror", False, "bool", meaning="mirror the picture left to right"),
    Option("effect", "none", "choice", meaning="special effect", choices=EFFECTS),
    Option("whitebalance", "auto", "choice", meaning="white balance", choices=WHITEBALANCES),
))


def pixels(framesize: str) -> tuple:
    """``(width, height)`` of a frame size name, or ValueError."""
    for name, width, height in FRAMESIZES:
        if name == framesize:
            return width, height
    raise ValueError("unknown frame size %r: one of %s" % (framesize, ", ".join(FRAMESIZE_NAMES)))


def sensor_quality(percent: int) -> int:
    """The sensor's JPEG quality (0 to 63, lower is better) for a percentage (higher is better)."""
    if not 1 <= percent <= 100:
        raise ValueError("quality must be 1 to 100 percent, not %r" % (percent,))
    return 63 - (63 * percent) // 100


def percent_quality(sensor: int) -> int:
    """The percentage :func:`sensor_quality` maps to ``sensor``, or the nearest below it."""
    if not 0 <= sensor <= 63:
        raise ValueError("sensor quality must be 0 to 63, not %r" % (sensor,))
    for percent in range(100, 0, -1):
        if sensor_quality(percent) >= sensor:
            return percent
    return 1
