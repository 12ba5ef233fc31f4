"""Erase an ESP32 and write a MicroPython image to it with esptool, used as a library.

The image must be a MicroPython build that includes the camera driver (for
example one from lemariva/micropython-camera-driver); on the ESP32 it goes
at offset 0x1000, after the first-stage boot area.
"""

from __future__ import annotations

from pathlib import Path

from tcpcam.board.bundle import BoardError

#: Where an ESP32 MicroPython image is written.
ESP32_OFFSET = 0x1000
#: Where MicroPython's image goes on each chip esptool is allowed to flash
#: (MicroPython's download page gives the same offsets).
IMAGE_OFFSETS = {"esp32": ESP32_OFFSET, "esp32s2": 0x1000, "esp32s3": 0x0, "esp32c3": 0x0}
#: First byte of every ESP firmware image.
IMAGE_MAGIC = 0xE9
#: Default serial speed for writing.
DEFAULT_BAUD = 460800


class FlashError(BoardError):
    """Flashing cannot start or failed; the message says why in one line."""


def esptool_major() -> int:
    """Major version of the installed esptool (command names changed in 5)."""
    import esptool

    try:
        return int(str(esptool.__version__).split(".")[0])
    except ValueError:
        return 5


def command_name(name: str, major: int | None = None) -> str:
    """``erase-flash`` for esptool 5 and later, ``erase_flash`` before."""
    major = esptool_major() if major is None else major
    return name if major >= 5 else name.replace("-", "_")


def check_image(image: str | Path) -> None:
    """Refuse a missing file or one that is not an ESP firmware image."""
    path = Path(image)
    try:
        with path.open("rb") as stream:
            first = stream.read(1)
    except OSError as error:
        raise FlashError("cannot read image %s: %s" % (image, error.strerror or error)) from None
    if not first or first[0] != IMAGE_MAGIC:
        raise FlashError("%s is not an ESP32 firmware image (it should start with byte 0x%02X)"
                         % (image, IMAGE_MAGIC))


def esptool_argvs(port: str, image: str | Path, baud: int = DEFAULT_BAUD, chip: str = "esp32", erase: bool = True,
                  major: int | None = None) -> list[list[str]]:
    """The esptool argument lists, in order: erase (unless ``erase`` is false), then write."""
    if chip not in IMAGE_OFFSETS:
        raise FlashError("unknown chip %r: one of %s" % (chip, ", ".join(IMAGE_OFFSETS)))
    common = ["--chip", chip, "--port", port, "--baud", str(baud)]
    argvs = []
    if erase:
        argvs.append(common + [command_name("erase-flash", major)])
    argvs.append(common + [command_name("write-flash", major), "-z", "0x%x" % IMAGE_OFFSETS[chip], str(image)])
    return argvs


def flash(argvs: list[list[str]]) -> None:
    """Run each esptool argument list through ``esptool.main``; FlashError on failure."""
    import esptool

    for argv in argvs:
        try:
            esptool.main(argv)
        except SystemExit as exit:
            if exit.code not in (0, None):
                raise FlashError("esptool %s failed (exit status %s)" % (argv[-1], exit.code)) from None
        except Exception as error:  # esptool raises FatalError, serial errors and OSError
            lines = [line.strip() for line in str(error).splitlines() if line.strip()]
            raise FlashError("esptool failed: %s" % (lines[0] if lines else type(error).__name__)) from None
