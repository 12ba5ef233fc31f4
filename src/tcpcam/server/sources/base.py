"""What a frame source is, and the errors a source raises."""

from __future__ import annotations

from typing import TYPE_CHECKING

from zope.interface import Interface

from tcpcam.common.jpeg import startsLikeJpeg
from tcpcam.core.limits import MAX_FRAME_BYTES
from tcpcam.core.text import plural

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred

#: Largest frame a built-in source hands out: what a client accepts by default.
MAX_SOURCE_FRAME_BYTES = MAX_FRAME_BYTES


class IFrameSource(Interface):
    """Something that produces frames (usually JPEG pictures) for a server."""

    def nextFrame() -> bytes | Deferred[bytes]:
        """Return the next frame as bytes, or a Deferred that fires with them.

        The server asks for a frame only when a client can take one, and
        never asks again before the previous answer arrived. Raising (or
        failing the Deferred) skips one frame: the server logs it and asks
        again later.
        """


class SourceSpecError(ValueError):
    """A source spec names no source, or its argument is unusable.

    The message is one line meant for the user, such as
    ``jpeg source: cannot read /tmp/x.jpg: No such file or directory``.
    """


class FrameUnavailable(Exception):
    """A source could not produce this one frame; the next may work."""


def checkJpeg(data: bytes, where: str) -> bytes:
    """Return ``data`` if it starts like a JPEG and is not too large, else raise.

    ``where`` names the file in the message. Raises :class:`FrameUnavailable`.
    """
    if len(data) > MAX_SOURCE_FRAME_BYTES:
        raise FrameUnavailable(
            "%s: %s, over the frame limit of %s"
            % (where, plural(len(data), "byte"), plural(MAX_SOURCE_FRAME_BYTES, "byte")))
    if not startsLikeJpeg(data):
        raise FrameUnavailable("%s: not a JPEG (no start-of-image marker)" % (where,))
    return data


def readJpeg(path: str) -> bytes:
    """Read one JPEG file whole, within the frame limit; raise FrameUnavailable."""
    try:
        with open(path, "rb") as stream:
            data = stream.read(MAX_SOURCE_FRAME_BYTES + 1)
    except OSError as error:
        raise FrameUnavailable("cannot read %s: %s" % (path, error.strerror or error)) from None
    return checkJpeg(data, path)
