"""``pattern[:SIZE]``: a synthetic camera drawing a moving test card with Pillow."""

from __future__ import annotations

import datetime
import io
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from zope.interface import implementer

from tcpcam.core.camera_settings import FRAMESIZES, SETTINGS, pixels
from tcpcam.server.sources.base import IFrameSource, SourceSpecError

if TYPE_CHECKING:
    from PIL.ImageFont import FreeTypeFont, ImageFont

#: The original firmware's frame sizes, by the names it used.
FRAME_SIZES = {name: (width, height) for name, width, height in FRAMESIZES}
#: Size drawn when the spec names none.
DEFAULT_SIZE = (640, 480)
#: Smallest and largest width or height accepted.
MIN_SIDE = 16
MAX_SIDE = 4096
#: Pillow JPEG quality (1-95) of the drawn frames.
JPEG_QUALITY = 80

_BARS = ((192, 192, 192), (192, 192, 0), (0, 192, 192), (0, 192, 0),
         (192, 0, 192), (192, 0, 0), (0, 0, 192), (16, 16, 16))


def parseSize(text: str) -> tuple[int, int]:
    """``"VGA"``, ``"640x480"`` or ``""`` (the default) -> ``(width, height)``."""
    if not text:
        return DEFAULT_SIZE
    named = FRAME_SIZES.get(text.upper())
    if named is not None:
        return named
    width, separator, height = text.lower().partition("x")
    if not (separator and width.isdigit() and height.isdigit()):
        raise SourceSpecError(
            "pattern source: bad size %r: expected WIDTHxHEIGHT such as 640x480, or one of %s"
            % (text, ", ".join(FRAME_SIZES)))
    size = (int(width), int(height))
    if not all(MIN_SIDE <= side <= MAX_SIDE for side in size):
        raise SourceSpecError(
            "pattern source: size %dx%d out of range: each side must be %d to %d"
            % (size + (MIN_SIDE, MAX_SIDE)))
    return size


def _font(pixels: int) -> FreeTypeFont | ImageFont:
    from PIL import ImageFont

    try:
        return ImageFont.load_default(size=pixels)
    except TypeError:  # Pillow < 10.1: one small bitmap font
        return ImageFont.load_default()


@implementer(IFrameSource)
class PatternSource:
    """A real JPEG each frame: colour bars scrolling, a bouncing box, the
    frame number and the local time drawn in, at a size of the original's.

    ``clock`` returns the time to draw (a ``datetime``); it defaults to now.

    It obeys the camera settings of protocol 2 (:meth:`applySettings`), so
    every setting can be seen end to end: the frame size changes the
    picture's size, the quality its JPEG quality, and brightness, contrast,
    saturation, flip, mirror and the effects change the picture.
    """

    #: What protocol 2's hello says this camera is.
    sensor = "simulated"

    def __init__(self, size: tuple[int, int] = DEFAULT_SIZE, quality: int = JPEG_QUALITY,
                 clock: Callable[[], datetime.datetime] | None = None) -> None:
        self.quality = quality
        self.frameNumber = 0
        self._clock = clock or datetime.datetime.now
        #: The camera settings in the vocabulary of tcpcam.core.camera_settings.
        self.settings = SETTINGS.defaults()
        self.settings["quality"] = quality
        for name, width, height in FRAMESIZES:
            if (width, height) == tuple(size):
                self.settings["framesize"] = name
        self._resize(size)

    @property
    def framesizes(self) -> list[str]:
        """The frame sizes it can draw: all of the original's."""
        return [name for name, _, _ in FRAMESIZES]

    def applySettings(self, settings: dict[str, Any]) -> dict[str, Any]:
        """Take new camera settings (checked ones, every key); returns them as applied."""
        settings = dict(settings)
        if settings["framesize"] != self.settings["framesize"]:
            self._resize(pixels(settings["framesize"]))
        self.quality = min(95, int(settings["quality"]))
        self.settings = settings
        return settings

    def _resize(self, size: tuple[int, int]) -> None:
        from PIL import Image, ImageDraw

        self.size = size
        width, height = size
        self._bars = Image.new("RGB", (width, height))
        draw = ImageDraw.Draw(self._bars)
        for index, colour in enumerate(_BARS):
            draw.rectangle((index * width // len(_BARS), 0, (index + 1) * width // len(_BARS), height),
                           fill=colour)
        self._textHeight = max(10, height // 14)
        self._font = _font(self._textHeight)
        self._box = max(8, min(size) // 6)

    def nextFrame(self) -> bytes:
        """Draw and encode the next frame."""
        from PIL import ImageChops, ImageDraw

        number = self.frameNumber
        self.frameNumber += 1
        width, height = self.size
        image = ImageChops.offset(self._bars, (number * 4) % width, 0)
        draw = ImageDraw.Draw(image)
        box = self._box
        x = _bounce(number * 7, width - box)
        y = _bounce(number * 5, height - box)
        draw.rectangle((x, y, x + box, y + box), fill=(255, 255, 255), outline=(0, 0, 0))
        line = self._textHeight + 4
        draw.rectangle((0, height - 2 * line - 4, width, height), fill=(0, 0, 0))
        now = self._clock()
        draw.text((4, height - 2 * line - 2), "tcpcam %dx%d  frame %d" % (width, height, number),
                  font=self._font, fill=(255, 255, 255))
        draw.text((4, height - line - 2), now.strftime("%Y-%m-%d %H:%M:%S.") + "%03d" % (now.microsecond // 1000),
                  font=self._font, fill=(255, 255, 0))
        image = _adjusted(image, self.settings)
        output = io.BytesIO()
        image.save(output, "JPEG", quality=self.quality)
        return output.getvalue()


def _adjusted(image: Any, settings: dict[str, Any]) -> Any:
    """The picture with the settings that change it: brightness, contrast, saturation, flip, mirror, effect."""
    from PIL import Image, ImageEnhance, ImageOps

    for enhancer, name in ((ImageEnhance.Brightness, "brightness"), (ImageEnhance.Contrast, "contrast"),
                           (ImageEnhance.Color, "saturation")):
        if settings.get(name):
            image = enhancer(image).enhance(1.0 + 0.4 * settings[name])
    if settings.get("flip"):
        image = image.transpose(Image.Transpose.FLIP_TOP_BOTTOM)
    if settings.get("mirror"):
        image = image.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
    effect = settings.get("effect", "none")
    if effect == "grayscale":
        image = ImageOps.grayscale(image).convert("RGB")
    elif effect == "negative":
        image = ImageOps.invert(image)
    elif effect == "sepia":
        image = ImageOps.colorize(ImageOps.grayscale(image), (40, 20, 0), (255, 230, 190))
    elif effect in ("red", "green", "blue"):
        red, green, blue = image.split()
        empty = Image.new("L", image.size, 0)
        bands = {"red": (red, empty, empty), "green": (empty, green, empty), "blue": (empty, empty, blue)}[effect]
        image = Image.merge("RGB", bands)
    return image


def _bounce(step: int, span: int) -> int:
    if span <= 0:
        return 0
    step %= 2 * span
    return step if step <= span else 2 * span - step
