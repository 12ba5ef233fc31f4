"""Sources from fixed data: ``hello``, ``jpeg:PATH`` and ``dir:PATH``."""

from __future__ import annotations

import os

from zope.interface import implementer

from tcpcam.server.sources.base import FrameUnavailable, IFrameSource, SourceSpecError, readJpeg

#: File name endings taken as JPEG pictures (compared in lower case).
JPEG_SUFFIXES = (".jpg", ".jpeg")


@implementer(IFrameSource)
class HelloSource:
    """The original test build's payload: the 11 bytes ``Hello World``."""

    payload = b"Hello World"

    def nextFrame(self) -> bytes:
        """Return ``Hello World``."""
        return self.payload


@implementer(IFrameSource)
class JpegFileSource:
    """One JPEG file, read once and sent as every frame (the original's sample)."""

    def __init__(self, path: str) -> None:
        try:
            self.payload = readJpeg(path)
        except FrameUnavailable as error:
            raise SourceSpecError("jpeg source: %s" % (error,)) from None
        self.path = path

    def nextFrame(self) -> bytes:
        """Return the file's bytes."""
        return self.payload


def listJpegs(path: str) -> list[str]:
    """Names of the JPEG files in the folder ``path``, in name order."""
    return sorted(
        name for name in os.listdir(path)
        if name.lower().endswith(JPEG_SUFFIXES) and not name.startswith(".")
    )


@implementer(IFrameSource)
class DirectorySource:
    """The JPEG files of a folder in name order, looping.

    The folder is listed again at the start of every round, so pictures added
    or removed meanwhile are seen; a file that cannot be read is a skipped
    frame.
    """

    def __init__(self, path: str) -> None:
        try:
            names = listJpegs(path)
        except OSError as error:
            raise SourceSpecError("dir source: cannot list %s: %s" % (path, error.strerror or error)) from None
        if not names:
            raise SourceSpecError("dir source: no .jpg or .jpeg files in %s" % (path,))
        self.path = path
        self._names = names
        self._position = 0

    def nextFrame(self) -> bytes:
        """Return the next picture's bytes."""
        if self._position >= len(self._names):
            self._position = 0
            try:
                self._names = listJpegs(self.path)
            except OSError as error:
                self._names = []
                raise FrameUnavailable("cannot list %s: %s" % (self.path, error.strerror or error)) from None
            if not self._names:
                raise FrameUnavailable("no .jpg or .jpeg files left in %s" % (self.path,))
        name = self._names[self._position]
        self._position += 1
        return readJpeg(os.path.join(self.path, name))
