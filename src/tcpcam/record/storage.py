"""Where frames go on disk: a tree of JPEG files, or one MJPEG file per hour.

Both stores write synchronously: a frame is written whole (or not at all)
before control returns to the reactor, so a shutdown can never cut one in
half. Both raise OSError on disk errors, after cleaning up after themselves.
"""

from __future__ import annotations

import os
from typing import BinaryIO

from tcpcam.common.atomic import writeAtomically
from tcpcam.record.layout import dayName, hourFileName, pictureName


class JpegTreeStore:
    """One file per frame: ``DIRECTORY/YYYY-MM-DD/HH-MM-SS.mmm_SEQ.jpg`` (local time).

    Each file is written under a hidden temporary name (``.NAME.tmp``) in the
    same folder and renamed when whole, so a file with the final name is
    always a complete frame.
    """

    format = "jpg"

    def __init__(self, directory: str) -> None:
        self.directory = directory

    @property
    def openPaths(self) -> tuple[str, ...]:
        """Files this store holds open: none between frames."""
        return ()

    def write(self, frame: bytes, when: float, seq: int) -> str:
        """Write ``frame`` taken at ``when`` (Unix seconds); return its path."""
        final = os.path.join(self.directory, dayName(when), pictureName(when, seq))
        writeAtomically(final, frame, fixedName=True, makeFolder=False)
        return final

    def close(self) -> None:
        """Nothing is held open between frames."""


class MjpegHourlyStore:
    """One concatenated-JPEG file per hour: ``DIRECTORY/YYYY-MM-DD/HH.mjpeg``.

    Players such as ffplay and VLC read it as an MJPEG stream. Frames go
    straight to the file with no user-space buffer, and the file is closed
    when the hour changes and on :meth:`close`; a frame that cannot be written whole is cut off again, so
    the file always ends on a frame boundary.
    """

    format = "mjpeg"

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self._path: str | None = None
        self._handle: BinaryIO | None = None

    @property
    def openPaths(self) -> tuple[str, ...]:
        """The file being appended to, if any."""
        return (self._path,) if self._handle is not None and self._path is not None else ()

    def write(self, frame: bytes, when: float, seq: int) -> str:
        """Append ``frame`` to the file of its hour; return that file's path."""
        path = os.path.join(self.directory, dayName(when), hourFileName(when))
        if path != self._path or self._handle is None:
            self.close()
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._handle = open(path, "ab", buffering=0)
            self._path = path
        handle = self._handle
        start = handle.tell()
        view = memoryview(frame)
        try:
            while view:
                view = view[handle.write(view):]
        except OSError:
            self._handle = None
            _truncateQuietly(path, start)
            handle.close()
            raise
        return path

    def close(self) -> None:
        """Close the current file (every frame is already in it)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()


def makeStore(fmt: str, directory: str) -> JpegTreeStore | MjpegHourlyStore:
    """Return the store for format ``fmt`` (``jpg`` or ``mjpeg``) writing under ``directory``."""
    if fmt == "mjpeg":
        return MjpegHourlyStore(directory)
    return JpegTreeStore(directory)


def _truncateQuietly(path: str, size: int) -> None:
    try:
        os.truncate(path, size)
    except OSError:
        pass
