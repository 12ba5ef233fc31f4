"""Convert a camera's JPEG files and hourly MJPEG files into segments with an index, resumably.

``tcpcam convert`` calls :func:`convertCamera` for each camera folder. The
sources are visited day by day, in time order (one day's file names in
memory at a time). Each ``HH-MM-SS.mmm_SEQ.jpg`` is one frame at the time in
its name; the frames of an hour file ``HH.mjpeg`` (which holds no time per
frame) are spread evenly from the start of the hour to the file's
modification time. Frames that are not whole JPEGs are skipped.

Resumable and safe to interrupt: the index rows of the new frames and the
names of the sources they came from (table ``converted``) are committed in
one transaction, every :data:`COMMIT_FRAMES` frames. After a crash or a
Ctrl-C, the next run cuts off what was written past the index and goes on
with the first source not converted. With ``delete``, a source file is
removed only once its frames are committed. Converting takes the index's
writer lock, so it refuses to run while a recorder records that camera.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from dataclasses import dataclass

from tcpcam.common.jpeg import JpegSplitter, jpegProblem
from tcpcam.core.limits import MAX_FRAME_BYTES
from tcpcam.record.layout import dayNumber, isHourFile, recordingTime
from tcpcam.record.segments import SegmentStore

#: Frames written between two commits.
COMMIT_FRAMES = 500
#: Bytes read at a time from an hour file.
READ_CHUNK = 1 << 16


@dataclass
class ConvertReport:
    """What :func:`convertCamera` did."""

    files: int = 0
    frames: int = 0
    skipped: int = 0
    alreadyDone: int = 0
    deleted: int = 0


def _sources(folder: str) -> Iterator[tuple[str, list[tuple[float, int, str]]]]:
    """``(day, [(seconds into the day, sequence, name)])`` of the sources, day by day in order."""
    try:
        days = sorted(os.listdir(folder))
    except OSError:
        return
    for day in days:
        path = os.path.join(folder, day)
        if dayNumber(day) is None or not os.path.isdir(path):
            continue
        entries = []
        for name in os.listdir(path):
            when = recordingTime(name)
            if when is not None:
                entries.append((when[0], when[1], name))
        entries.sort()
        yield day, entries


def _dayStart(day: str) -> float:
    import time

    year, month, mday = (int(part) for part in day.split("-"))
    return time.mktime((year, month, mday, 0, 0, 0, 0, 0, -1))


def _splitFile(path: str) -> Iterator[bytes]:
    """The whole JPEGs of a concatenated-JPEG file, read a chunk at a time."""
    splitter = JpegSplitter(MAX_FRAME_BYTES)
    with open(path, "rb") as handle:
        while True:
            try:
                frame = splitter.next()
            except ValueError:
                continue
            if frame is not None:
                if jpegProblem(frame) is None:
                    yield frame
                continue
            data = handle.read(READ_CHUNK)
            if not data:
                return
            splitter.feed(data)


def _hourFrames(path: str, hourStart: float) -> Iterator[tuple[float, bytes]]:
    """The frames of an hour file with times spread over the hour (two passes: memory holds one frame)."""
    count = sum(1 for _ in _splitFile(path))
    span = max(0.001 * count, min(3600.0, os.path.getmtime(path) - hourStart))
    for index, frame in enumerate(_splitFile(path)):
        yield hourStart + span * index / max(1, count), frame


def convertCamera(folder: str, delete: bool = False, progress: Callable[[ConvertReport], object] | None = None,
                  store: SegmentStore | None = None) -> ConvertReport:
    """Convert one camera folder's JPEG and hour files into its segment store (see the module docstring)."""
    report = ConvertReport()
    store = store or SegmentStore(folder)
    store.open(indexUnindexed=False)
    try:
        db = store.db
        batch: list[tuple[str, int]] = []

        def flush() -> None:
            store.commit(extra=("INSERT OR REPLACE INTO converted (source, frames) VALUES (?, ?)", list(batch)))
            if delete:
                for source, _ in batch:
                    if _remove(os.path.join(folder, source)):
                        report.deleted += 1
            batch.clear()
            if progress is not None:
                progress(report)

        for day, entries in _sources(folder):
            done = {row[0] for row in db.execute("SELECT source FROM converted WHERE source LIKE ?", (day + "/%",))}
            midnight = _dayStart(day)
            for seconds, _, name in entries:
                source = day + "/" + name
                path = os.path.join(folder, day, name)
                if source in done:
                    report.alreadyDone += 1
                    if delete and _remove(path):
                        report.deleted += 1
                    continue
                count = 0
                try:
                    if isHourFile(name):
                        frames: Iterator[tuple[float, bytes]] = _hourFrames(path, midnight + seconds)
                    else:
                        frames = iter([(midnight + seconds, _readFile(path))])
                    for when, frame in frames:
                        if jpegProblem(frame) is not None:
                            report.skipped += not isHourFile(name)
                            continue
                        store.write(frame, when)
                        count += 1
                except OSError:
                    report.skipped += 1
                    continue
                if not count:
                    continue  # nothing readable: left where it is
                report.files += 1
                report.frames += count
                batch.append((source, count))
                if store.pendingFrames >= COMMIT_FRAMES or len(batch) >= COMMIT_FRAMES:
                    flush()
        flush()
    except BaseException:
        # Frames written since the last commit have no converted rows: leave them unindexed.
        store.abandon()
        raise
    store.close()
    return report


def _readFile(path: str) -> bytes:
    with open(path, "rb") as handle:
        return handle.read(MAX_FRAME_BYTES + 1)


def _remove(path: str) -> bool:
    try:
        os.unlink(path)
    except FileNotFoundError:
        return False
    try:
        os.rmdir(os.path.dirname(path))
    except OSError:
        pass
    return True
