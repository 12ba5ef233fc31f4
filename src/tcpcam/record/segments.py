"""The segment store: each camera's frames in concatenated-JPEG segment files, indexed in SQLite.

::

    OUT/CAMERA/YYYY-MM-DD/HH-MM-SS.mmm.mjpeg   a segment (local time of its first frame)
    OUT/CAMERA/index.sqlite3                   the index (see tcpcam.record.index)

A segment holds up to :attr:`SegmentStore.maxSegmentSeconds` seconds and
:attr:`SegmentStore.maxSegmentBytes` bytes of frames, one JPEG after the
other with nothing in between, so it plays as it is (``ffplay -f mjpeg``,
VLC). A new segment also begins after a gap of more than
:attr:`SegmentStore.gapSeconds` between frames, when the day changes and
when the clock goes back, so a segment is one stretch of recording.

**Crash safety.** Frame bytes are appended to the segment first; the index
rows saying where they are follow in one transaction by :meth:`commit`,
after ``fdatasync`` of the segment (:attr:`syncBeforeCommit`), so neither a
crash nor a power cut can leave a row that points at bytes the disk does not
hold. What a crash can leave is the opposite: whole frames past the last
indexed one, a frame cut in half at the end of a segment, a segment file with
no row, or rows of a segment file deleted by retention. :meth:`SegmentStore.open`
repairs all of these before the first write (see :func:`recover`): every
frame of each segment not yet closed is checked to be a whole JPEG, whole
frames past the index are indexed (their times spread evenly up to the
file's modification time), the rest is cut off, rows of missing files are
deleted and temporary files are removed.

Only the thread that owns a store calls it (the recorder's disk writer, or
``tcpcam convert``); the index is written by that one connection.
"""

from __future__ import annotations

import os
import sqlite3
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from typing import BinaryIO

from tcpcam.common.atomic import isTemporary, removeQuietly
from tcpcam.common.jpeg import EOI, SOI, jpegProblem
from tcpcam.core.limits import MAX_FRAME_BYTES
from tcpcam.core.text import plural
from tcpcam.record.index import WriterLock, connectWriter
from tcpcam.record.layout import dayName, isDayName, isSegmentName, segmentName, segmentStart

#: Longest a segment runs, in seconds.
SEGMENT_SECONDS = 60.0
#: Largest a segment grows, in bytes (a frame never straddles two segments).
SEGMENT_BYTES = 16 * 1024 * 1024
#: A pause between frames longer than this (seconds) begins a new segment.
SPAN_GAP_SECONDS = 5.0
#: Bytes read at a time when recovery scans a segment.
SCAN_CHUNK = 1 << 16


@dataclass
class RecoveryReport:
    """What :func:`recover` found and did in one camera folder."""

    segments_checked: int = 0
    rows_dropped: int = 0
    frames_found: int = 0
    bytes_cut: int = 0
    orphans_indexed: int = 0
    files_removed: int = 0
    problems: list[str] = field(default_factory=list)

    @property
    def repaired(self) -> bool:
        """True if anything had to be changed."""
        return bool(self.rows_dropped or self.frames_found or self.bytes_cut or self.orphans_indexed
                    or self.files_removed)

    def describe(self) -> str:
        """One line for the log."""
        return ("%d index rows of missing or broken frames dropped, %d whole frames past the index indexed,"
                " %s of cut frames removed, %d unindexed segments indexed, %d leftover files removed"
                % (self.rows_dropped, self.frames_found, plural(self.bytes_cut, "byte"), self.orphans_indexed,
                   self.files_removed))


@dataclass
class _Open:
    """The segment being written."""

    path: str
    relative: str
    handle: BinaryIO
    day: str
    start_ms: int
    end_ms: int
    id: int | None = None
    frames: int = 0
    bytes: int = 0
    pending: list[tuple[int, int, int, int | None, int | None]] = field(default_factory=list)


class SegmentStore:
    """One camera's segments and index (see the module docstring).

    Raises OSError on disk errors after putting the segment back to its
    last whole frame; the next :meth:`write` tries again.
    """

    format = "segments"
    #: Longest a segment runs, in seconds.
    maxSegmentSeconds = SEGMENT_SECONDS
    #: Largest a segment grows, in bytes.
    maxSegmentBytes = SEGMENT_BYTES
    #: A pause longer than this (seconds) begins a new segment.
    gapSeconds = SPAN_GAP_SECONDS
    #: ``fdatasync`` a segment before committing the rows of its new frames (power-cut safety).
    syncBeforeCommit = True

    def __init__(self, directory: str, maxSegmentSeconds: float | None = None,
                 maxSegmentBytes: int | None = None, sync: bool | None = None) -> None:
        self.directory = directory
        if maxSegmentSeconds is not None:
            self.maxSegmentSeconds = maxSegmentSeconds
        if maxSegmentBytes is not None:
            self.maxSegmentBytes = maxSegmentBytes
        if sync is not None:
            self.syncBeforeCommit = sync
        self._lock = WriterLock(directory)
        self._db: sqlite3.Connection | None = None
        self._open: _Open | None = None
        #: Bytes of every indexed and pending frame of this camera.
        self.totalBytes = 0
        self.recovery: RecoveryReport | None = None
        #: Called in the writer's thread as ``onClosed(store, segment id)`` once a segment is final and indexed.
        self.onClosed: Callable[[SegmentStore, int], object] | None = None

    # -- life cycle -----------------------------------------------------

    def open(self, indexUnindexed: bool = True) -> RecoveryReport:
        """Take the writer lock, open the index and repair what a crash left; returns the report.

        ``indexUnindexed`` False cuts whole frames past the index off instead
        of indexing them (``tcpcam convert``, which writes them again).
        """
        if self._db is not None:
            assert self.recovery is not None
            return self.recovery
        os.makedirs(self.directory, exist_ok=True)
        self._lock.acquire()
        try:
            self._db = connectWriter(self.directory)
            self.recovery = recover(self.directory, self._db, indexUnindexed)
            self.totalBytes = self._db.execute("SELECT COALESCE(SUM(bytes), 0) FROM segments").fetchone()[0]
        except BaseException:
            self._closeDb()
            raise
        return self.recovery

    @property
    def db(self) -> sqlite3.Connection:
        """The writer connection (opening the store first if needed)."""
        if self._db is None:
            self.open()
        assert self._db is not None
        return self._db

    @property
    def openPaths(self) -> tuple[str, ...]:
        """The segment being written, if any."""
        return (self._open.path,) if self._open is not None else ()

    @property
    def pendingFrames(self) -> int:
        """Frames written but not yet in the index."""
        return len(self._open.pending) if self._open is not None else 0

    def close(self) -> None:
        """Index what is pending, close the segment and the index, let go of the lock."""
        if self._db is None:
            return
        try:
            self.closeSegment()
        finally:
            self._closeDb()

    def abandon(self) -> None:
        """Close without indexing what is pending (the next :meth:`open` deals with those bytes)."""
        current, self._open = self._open, None
        if current is not None:
            current.handle.close()
        self._closeDb()

    def _closeDb(self) -> None:
        db, self._db = self._db, None
        if db is not None:
            db.close()
        self._lock.release()

    # -- writing ----------------------------------------------------------

    def write(self, frame: bytes, when: float, seq: int | None = None, captureMs: int | None = None) -> str:
        """Append ``frame`` taken at ``when`` (Unix seconds); returns the segment's path.

        The frame is in the index after the next :meth:`commit`.
        """
        if self._db is None:
            self.open()
        whenMs = int(round(when * 1000))
        current = self._open
        if current is not None and self._mustRoll(current, whenMs, len(frame), when):
            self.closeSegment()
            current = None
        if current is None:
            current = self._startSegment(when, whenMs)
        handle = current.handle
        start = current.bytes
        view = memoryview(frame)
        try:
            while view:
                written = handle.write(view)
                if not written:
                    raise OSError("nothing written to %s" % current.path)
                view = view[written:]
        except OSError:
            self._cutBack(current, start)
            raise
        current.pending.append((whenMs, start, len(frame), seq, captureMs))
        current.bytes += len(frame)
        current.frames += 1
        current.end_ms = whenMs
        self.totalBytes += len(frame)
        return current.path

    def _mustRoll(self, current: _Open, whenMs: int, size: int, when: float) -> bool:
        if current.frames == 0:
            return False
        return (whenMs - current.start_ms >= self.maxSegmentSeconds * 1000
                or current.bytes + size > self.maxSegmentBytes
                or whenMs - current.end_ms > self.gapSeconds * 1000
                or whenMs < current.end_ms
                or dayName(when) != current.day)

    def _startSegment(self, when: float, whenMs: int) -> _Open:
        day = dayName(when)
        folder = os.path.join(self.directory, day)
        os.makedirs(folder, exist_ok=True)
        for clash in range(1000):
            name = segmentName(when, clash)
            path = os.path.join(folder, name)
            try:
                fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o666)
            except FileExistsError:
                continue
            handle = os.fdopen(fd, "wb", buffering=0)
            self._open = _Open(path=path, relative=os.path.join(day, name), handle=handle, day=day,
                               start_ms=whenMs, end_ms=whenMs)
            return self._open
        raise OSError("no free segment name in %s for %s" % (folder, segmentName(when)))

    def _cutBack(self, current: _Open, size: int) -> None:
        try:
            current.handle.truncate(size)
            current.handle.seek(size)
        except OSError:
            pass
        if current.frames == 0 and current.id is None:
            # Nothing of this segment is indexed: forget the file altogether.
            current.handle.close()
            removeQuietly(current.path)
            self._open = None

    def commit(self, close: bool = False, extra: tuple[str, list[tuple[object, ...]]] | None = None) -> int:
        """Put the pending frames in the index (after ``fdatasync``); returns how many.

        ``close`` also marks the segment final; ``extra`` is ``(sql, rows)``
        run in the same transaction (``tcpcam convert`` notes its sources so).
        """
        current = self._open
        if current is None or (not current.pending and not close):
            if extra is not None:
                self.db.execute("BEGIN IMMEDIATE")
                try:
                    self.db.executemany(*extra)
                    self.db.execute("COMMIT")
                except BaseException:
                    self.db.execute("ROLLBACK")
                    raise
            return 0
        if self.syncBeforeCommit and current.pending:
            os.fdatasync(current.handle.fileno())
        db = self.db
        rows = current.pending
        inserted = current.id is None
        db.execute("BEGIN IMMEDIATE")
        try:
            if current.id is None:
                cursor = db.execute(
                    "INSERT INTO segments (path, start_ms, end_ms, frames, bytes, closed) VALUES (?, ?, ?, ?, ?, ?)",
                    (current.relative, current.start_ms, current.end_ms, current.frames, current.bytes,
                     int(close)))
                current.id = cursor.lastrowid
            else:
                db.execute("UPDATE segments SET end_ms = ?, frames = ?, bytes = ?, closed = ? WHERE id = ?",
                           (current.end_ms, current.frames, current.bytes, int(close), current.id))
            db.executemany(
                "INSERT INTO frames (time_ms, segment, offset, length, seq, capture_ms) VALUES (?, ?, ?, ?, ?, ?)",
                [(t, current.id, offset, length, seq, capture) for t, offset, length, seq, capture in rows])
            if extra is not None:
                db.executemany(*extra)
            db.execute("COMMIT")
        except BaseException:
            if db.in_transaction:
                db.execute("ROLLBACK")
            if inserted:
                current.id = None  # the segment's row went with the transaction
            raise
        current.pending = []
        return len(rows)

    def closeSegment(self) -> None:
        """Index what is pending and close the segment being written (the next frame starts a new one)."""
        current = self._open
        if current is None:
            return
        try:
            if current.frames:
                self.commit(close=True)
        finally:
            self._open = None
            current.handle.close()
            if current.id is None:
                removeQuietly(current.path)
        if self.onClosed is not None and current.id is not None:
            self.onClosed(self, current.id)

    # -- motion -----------------------------------------------------------

    def markMotion(self, startMs: int, endMs: int) -> int:
        """Flag the segments overlapping ``startMs..endMs`` as holding motion; returns how many."""
        self.commit()
        cursor = self.db.execute(
            "UPDATE segments SET motion = 1 WHERE start_ms <= ? AND end_ms >= ? AND motion = 0", (endMs, startMs))
        return cursor.rowcount

    def saveEvent(self, event: dict[str, object]) -> int:
        """Insert or update a motion event (a dict with the ``events`` columns; ``id`` to update)."""
        db = self.db
        columns = ("start_ms", "end_ms", "peak_ms", "peak_score", "x0", "y0", "x1", "y1",
                   "pre_roll_ms", "post_roll_ms", "thumbnail")
        values = [event.get(name) for name in columns]
        if event.get("id") is None:
            cursor = db.execute("INSERT INTO events (%s) VALUES (%s)" % (", ".join(columns),
                                                                         ", ".join("?" * len(columns))), values)
            assert cursor.lastrowid is not None
            return cursor.lastrowid
        db.execute("UPDATE events SET %s WHERE id = ?" % ", ".join("%s = ?" % name for name in columns),
                   values + [event["id"]])
        return int(event["id"])  # type: ignore[call-overload]

    # -- retention --------------------------------------------------------

    def oldestSegment(self, motion: bool | None = None) -> tuple[int, int, int] | None:
        """``(id, start_ms, bytes)`` of the oldest closed segment (only plain or motion ones if asked)."""
        query = "SELECT id, start_ms, bytes FROM segments WHERE closed = 1"
        if motion is not None:
            query += " AND motion = %d" % int(motion)
        row = self.db.execute(query + " ORDER BY start_ms LIMIT 1").fetchone()
        return None if row is None else (row[0], row[1], row[2])

    def deleteSegment(self, segmentId: int) -> int:
        """Delete one closed segment: its file first, then its rows; returns the bytes freed.

        A crash between the two leaves rows of a missing file, which the next
        :meth:`open` drops.
        """
        db = self.db
        row = db.execute("SELECT path, bytes FROM segments WHERE id = ? AND closed = 1", (segmentId,)).fetchone()
        if row is None:
            return 0
        relative, size = row
        path = os.path.join(self.directory, relative)
        try:
            os.unlink(path)
        except FileNotFoundError:
            pass
        _dropSegment(db, segmentId)
        self.totalBytes -= size
        try:
            os.rmdir(os.path.dirname(path))
        except OSError:
            pass  # the day folder still holds other segments
        return size

    def segmentsEndingBefore(self, cutoffMs: int, motion: bool | None = None, limit: int = 1000) -> list[int]:
        """Ids of closed segments whose last frame is before ``cutoffMs``, oldest first."""
        query = "SELECT id FROM segments WHERE closed = 1 AND end_ms < ?"
        if motion is not None:
            query += " AND motion = %d" % int(motion)
        return [row[0] for row in self.db.execute(query + " ORDER BY start_ms LIMIT ?", (cutoffMs, limit))]

    def rollIfOnly(self) -> bool:
        """Close the segment being written so that retention may delete it; True if there was one."""
        if self._open is None or not self._open.frames:
            return False
        self.closeSegment()
        return True


def _dropSegment(db: sqlite3.Connection, segmentId: int) -> None:
    db.execute("BEGIN IMMEDIATE")
    try:
        db.execute("DELETE FROM frames WHERE segment = ?", (segmentId,))
        db.execute("DELETE FROM segments WHERE id = ?", (segmentId,))
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise


# -- recovery ---------------------------------------------------------------

def recover(directory: str, db: sqlite3.Connection, indexUnindexed: bool = True) -> RecoveryReport:
    """Make ``directory``'s segments and index agree after a crash (see the module docstring).

    ``indexUnindexed`` False cuts whole frames past the index off (and
    removes unindexed segments) instead of indexing them.
    """
    report = RecoveryReport()
    onDisk: set[str] = set()
    for day in _listing(directory):
        folder = os.path.join(directory, day)
        if not isDayName(day) or not os.path.isdir(folder):
            continue
        for name in _listing(folder):
            path = os.path.join(folder, name)
            if isTemporary(name):
                if removeQuietly(path):
                    report.files_removed += 1
            elif isSegmentName(name):
                onDisk.add(os.path.join(day, name))
    known = db.execute("SELECT id, path, closed FROM segments").fetchall()
    indexed = set()
    for segmentId, relative, closed in known:
        indexed.add(relative)
        report.segments_checked += 1
        if relative not in onDisk:
            count = db.execute("SELECT COUNT(*) FROM frames WHERE segment = ?", (segmentId,)).fetchone()[0]
            _dropSegment(db, segmentId)
            report.rows_dropped += count
            continue
        if not closed:
            _repair(directory, db, segmentId, relative, report, indexUnindexed)
    for relative in sorted(onDisk - indexed):
        if indexUnindexed:
            _indexOrphan(directory, db, relative, report)
        elif removeQuietly(os.path.join(directory, relative)):
            report.files_removed += 1
    return report


def _repair(directory: str, db: sqlite3.Connection, segmentId: int, relative: str, report: RecoveryReport,
            indexUnindexed: bool = True) -> None:
    path = os.path.join(directory, relative)
    rows = db.execute("SELECT offset, length, time_ms FROM frames WHERE segment = ? ORDER BY offset",
                      (segmentId,)).fetchall()
    goodEnd = 0
    lastMs: int | None = None
    keep = 0
    with open(path, "r+b") as handle:
        size = os.fstat(handle.fileno()).st_size
        for offset, length, timeMs in rows:
            if offset != goodEnd or offset + length > size:
                break
            handle.seek(offset)
            if jpegProblem(handle.read(length)) is not None:
                break
            goodEnd = offset + length
            lastMs = timeMs
            keep += 1
        dropped = len(rows) - keep
        found = list(_wholeFramesFrom(handle, goodEnd, size)) if indexUnindexed else []
        newEnd = found[-1][0] + found[-1][1] if found else goodEnd
        if lastMs is None:
            day, name = os.path.split(relative)
            start = segmentStart(day, name)
            lastMs = int(round((start or os.fstat(handle.fileno()).st_mtime) * 1000)) - 1
        times = _spread(lastMs, int(os.fstat(handle.fileno()).st_mtime * 1000), len(found))
        if newEnd < size:
            handle.truncate(newEnd)
            report.bytes_cut += size - newEnd
        handle.flush()
        os.fsync(handle.fileno())
    if keep + len(found) == 0:
        _dropSegment(db, segmentId)
        removeQuietly(path)
        report.rows_dropped += dropped
        report.files_removed += 1
        return
    db.execute("BEGIN IMMEDIATE")
    try:
        if dropped:
            db.execute("DELETE FROM frames WHERE segment = ? AND offset >= ?", (segmentId, goodEnd))
        db.executemany("INSERT INTO frames (time_ms, segment, offset, length) VALUES (?, ?, ?, ?)",
                       [(t, segmentId, offset, length) for t, (offset, length) in zip(times, found, strict=True)])
        db.execute(
            "UPDATE segments SET closed = 1, frames = (SELECT COUNT(*) FROM frames WHERE segment = :id),"
            " bytes = :bytes, start_ms = (SELECT MIN(time_ms) FROM frames WHERE segment = :id),"
            " end_ms = (SELECT MAX(time_ms) FROM frames WHERE segment = :id) WHERE id = :id",
            {"id": segmentId, "bytes": newEnd})
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    report.rows_dropped += dropped
    report.frames_found += len(found)


def _indexOrphan(directory: str, db: sqlite3.Connection, relative: str, report: RecoveryReport) -> None:
    path = os.path.join(directory, relative)
    day, name = os.path.split(relative)
    start = segmentStart(day, name)
    try:
        with open(path, "rb") as handle:
            size = os.fstat(handle.fileno()).st_size
            found = list(_wholeFramesFrom(handle, 0, size))
            mtime = os.fstat(handle.fileno()).st_mtime
    except OSError as error:
        report.problems.append("%s: %s" % (path, error.strerror or error))
        return
    if not found or start is None:
        if removeQuietly(path):
            report.files_removed += 1
        return
    newEnd = found[-1][0] + found[-1][1]
    if newEnd < size:
        os.truncate(path, newEnd)
        report.bytes_cut += size - newEnd
    startMs = int(round(start * 1000))
    times = [startMs] + _spread(startMs, int(mtime * 1000), len(found) - 1)
    db.execute("BEGIN IMMEDIATE")
    try:
        cursor = db.execute(
            "INSERT INTO segments (path, start_ms, end_ms, frames, bytes, closed) VALUES (?, ?, ?, ?, ?, 1)",
            (relative, times[0], times[-1], len(found), newEnd))
        db.executemany("INSERT INTO frames (time_ms, segment, offset, length) VALUES (?, ?, ?, ?)",
                       [(t, cursor.lastrowid, offset, length)
                        for t, (offset, length) in zip(times, found, strict=True)])
        db.execute("COMMIT")
    except BaseException:
        db.execute("ROLLBACK")
        raise
    report.orphans_indexed += 1
    report.frames_found += len(found)


def _spread(afterMs: int, untilMs: int, count: int) -> list[int]:
    """``count`` strictly increasing times after ``afterMs``, evenly up to ``untilMs`` if it is later."""
    if count <= 0:
        return []
    step = max(1.0, (untilMs - afterMs) / count)
    return [afterMs + max(i + 1, int(round(step * (i + 1)))) for i in range(count)]


def _wholeFramesFrom(handle: BinaryIO, offset: int, size: int) -> Iterator[tuple[int, int]]:
    """``(offset, length)`` of the whole JPEGs that follow one another from ``offset``; stops at anything else."""
    position = offset
    while position < size:
        handle.seek(position)
        if handle.read(2) != SOI:
            return
        end = _findEoi(handle, position + 2, min(size, position + MAX_FRAME_BYTES))
        if end is None:
            return
        yield position, end - position
        position = end


def _findEoi(handle: BinaryIO, start: int, limit: int) -> int | None:
    """The offset just past the first EOI marker at or after ``start`` (before ``limit``), or None."""
    position = start
    carry = b""
    handle.seek(start)
    while position < limit:
        chunk = handle.read(min(SCAN_CHUNK, limit - position))
        if not chunk:
            return None
        data = carry + chunk
        found = data.find(EOI)
        if found >= 0:
            return position - len(carry) + found + 2
        carry = data[-1:]
        position += len(chunk)
    return None


def _listing(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError:
        return []
