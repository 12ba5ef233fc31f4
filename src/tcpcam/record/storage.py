"""Where frames go on disk: segments with an index (the default), or a tree of JPEG files.

:class:`~tcpcam.record.segments.SegmentStore` (``--format segments``) keeps
each camera's frames in concatenated-JPEG segments indexed in SQLite.
:class:`JpegTreeStore` (``--format jpg``) writes one file per frame. The old
hourly ``mjpeg`` format is gone: segments are concatenated JPEGs too, with
an index; ``tcpcam convert`` turns old hour files and JPEG trees into
segments.

Stores are used by one thread, the recorder's disk writer
(:mod:`tcpcam.record.writer`). Both raise OSError on disk errors, after
cleaning up after themselves.
"""

from __future__ import annotations

import os

from tcpcam.common.atomic import isTemporary, removeQuietly, writeAtomically
from tcpcam.record.layout import dayName, isDayName, pictureName
from tcpcam.record.segments import RecoveryReport, SegmentStore

#: The storage formats, the default first.
FORMATS = ("segments", "jpg")


class JpegTreeStore:
    """One file per frame: ``DIRECTORY/YYYY-MM-DD/HH-MM-SS.mmm_SEQ.jpg`` (local time).

    Each file is written under a hidden temporary name (``.NAME.tmp``) in the
    same folder and renamed when whole, so a file with the final name is
    always a complete frame; :meth:`open` removes the temporary files a crash
    left, in every day folder.
    """

    format = "jpg"

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.recovery: RecoveryReport | None = None

    @property
    def openPaths(self) -> tuple[str, ...]:
        """Files this store holds open: none between frames."""
        return ()

    @property
    def pendingFrames(self) -> int:
        """Frames written but not yet final: none."""
        return 0

    def open(self) -> RecoveryReport:
        """Remove the temporary files a crash left behind; returns what was done."""
        report = RecoveryReport()
        try:
            days = sorted(os.listdir(self.directory))
        except OSError:
            days = []
        for day in days:
            folder = os.path.join(self.directory, day)
            if not isDayName(day) or not os.path.isdir(folder):
                continue
            for name in os.listdir(folder):
                if isTemporary(name) and removeQuietly(os.path.join(folder, name)):
                    report.files_removed += 1
        self.recovery = report
        return report

    def write(self, frame: bytes, when: float, seq: int | None = None, captureMs: int | None = None) -> str:
        """Write ``frame`` taken at ``when`` (Unix seconds); return its path."""
        final = os.path.join(self.directory, dayName(when), pictureName(when, seq or 0))
        writeAtomically(final, frame, fixedName=True, makeFolder=False)
        return final

    def commit(self, close: bool = False) -> int:
        """Every file is final once written: nothing to do."""
        return 0

    def closeSegment(self) -> None:
        """Nothing is held open between frames."""

    def close(self) -> None:
        """Nothing is held open between frames."""


def makeStore(fmt: str, directory: str, maxSegmentSeconds: float | None = None,
              maxSegmentBytes: int | None = None) -> SegmentStore | JpegTreeStore:
    """Return the store for format ``fmt`` (``segments`` or ``jpg``) writing under ``directory``."""
    if fmt == "jpg":
        return JpegTreeStore(directory)
    if fmt != "segments":
        raise ValueError("unknown storage format %r (known: %s)" % (fmt, ", ".join(FORMATS)))
    return SegmentStore(directory, maxSegmentSeconds, maxSegmentBytes)
