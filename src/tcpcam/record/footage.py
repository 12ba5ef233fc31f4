"""Reading recorded footage: the read API of the segment store, for the web pages, export and replay.

::

    from tcpcam.record.footage import Footage

    footage = Footage("recordings")               # the recorder's --out folder
    footage.cameras()                             # ['door', 'yard']: folders with an index
    footage.days("door")                          # ['2026-05-01', ...]: local days with footage
    footage.spans("door", start, end)             # [(start, end), ...]: recorded stretches, Unix seconds
    footage.events("door", start, end)            # [Event, ...]: motion events overlapping the range
    footage.event("door", 7)                      # one Event, or None
    footage.thumbnail("door", 7)                  # its small JPEG, or None
    footage.frameAt("door", when)                 # (time, jpeg) of the frame shown at ``when``, or None
    footage.frameAfter("door", when)              # (time, jpeg) of the first frame after ``when``, or None
    footage.frameBefore("door", when)             # (time, jpeg) of the last frame before ``when``, or None
    footage.frames("door", start, end)            # iterator of (time, jpeg) in time order, bounded memory
    footage.frames("door", start, end, every=10)  # one frame per 10 s (rows skipped before any read)
    footage.batch("door", start, end, 10, 2**21)  # the first 10 frames (at most 2 MiB) of frames(), as a list
    footage.count("door", start, end)             # how many frames
    footage.latestFrames("door", 5)               # the 5 newest [(time, jpeg)], oldest first
    footage.exportJob("door", start, end, "out.mp4", every=None)   # an ExportJob (tcpcam.record.export)

Times are Unix seconds (floats, millisecond precision); ranges are half
open, ``start <= time < end``. A camera name that is not a camera folder
raises ValueError. Every method may be called from any thread: each thread
gets its own read-only SQLite connection per camera (readers never write nor
checkpoint, so the recorder's one writer is safe). Frames whose segment was
deleted meanwhile by retention are skipped, never an error; a frame whose
bytes are not a whole JPEG is skipped too.
"""

from __future__ import annotations

import os
import re
import sqlite3
import threading
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, BinaryIO

from tcpcam.common.jpeg import jpegProblem
from tcpcam.record.index import connectReader, indexPath
from tcpcam.record.segments import SPAN_GAP_SECONDS

if TYPE_CHECKING:
    from tcpcam.record.export import ExportJob

#: Index rows read at a time by :meth:`Footage.frames`.
PAGE_ROWS = 500
#: Most events one call of :meth:`Footage.events` returns.
MAX_EVENTS = 10_000
#: Most spans one call of :meth:`Footage.spans` returns.
MAX_SPANS = 100_000
#: Most frames :meth:`Footage.latestFrames` returns.
MAX_LATEST = 100

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")


@dataclass(frozen=True)
class Event:
    """A motion event: times in Unix seconds, ``end`` None while it goes on."""

    id: int
    camera: str
    start: float
    end: float | None
    peak: float
    peakScore: float
    #: ``(x0, y0, x1, y1)`` in picture pixels at the peak, or None.
    region: tuple[int, int, int, int] | None
    preRoll: float
    postRoll: float
    hasThumbnail: bool

    @property
    def clipStart(self) -> float:
        """Where a clip of the event begins: the start minus the pre-roll."""
        return self.start - self.preRoll

    @property
    def clipEnd(self) -> float:
        """Where a clip of the event ends: the end (or the peak, while it goes on) plus the post-roll."""
        return (self.end if self.end is not None else self.peak) + self.postRoll

    def asDict(self) -> dict[str, object]:
        """The event as a JSON-ready dict."""
        return {"id": self.id, "camera": self.camera, "start": self.start, "end": self.end, "peak": self.peak,
                "peak_score": self.peakScore, "region": list(self.region) if self.region else None,
                "pre_roll": self.preRoll, "post_roll": self.postRoll, "thumbnail": self.hasThumbnail}


def _ms(when: float) -> int:
    return int(round(when * 1000))


def firstFrames(frames: Generator[tuple[float, bytes], None, None], count: int,
                maxBytes: int) -> list[tuple[float, bytes]]:
    """The first ``count`` frames of ``frames`` (fewer once ``maxBytes`` are taken); closes the generator."""
    found: list[tuple[float, bytes]] = []
    size = 0
    try:
        for when, data in frames:
            found.append((when, data))
            size += len(data)
            if len(found) >= count or size >= maxBytes:
                break
    finally:
        frames.close()
    return found


class Footage:
    """Read-only access to the segment store under ``root`` (see the module docstring)."""

    def __init__(self, root: str) -> None:
        self.root = root
        self._local = threading.local()
        self._all: list[sqlite3.Connection] = []
        self._allLock = threading.Lock()

    # -- connections --------------------------------------------------------

    def folder(self, camera: str) -> str:
        """The folder of ``camera``; ValueError if that is no camera of this root."""
        if not isinstance(camera, str) or not _NAME.match(camera):
            raise ValueError("no such camera: %r" % (camera,))
        folder = os.path.join(self.root, camera)
        if not os.path.exists(indexPath(folder)):
            raise ValueError("no such camera: %r (no index in %s)" % (camera, folder))
        return folder

    def _db(self, camera: str) -> sqlite3.Connection:
        connections = getattr(self._local, "connections", None)
        if connections is None:
            connections = self._local.connections = {}
        db = connections.get(camera)
        if db is None:
            db = connectReader(self.folder(camera))
            if db is None:
                raise ValueError("no such camera: %r" % (camera,))
            connections[camera] = db
            with self._allLock:
                self._all.append(db)
        return db

    def close(self) -> None:
        """Close every connection of every thread."""
        with self._allLock:
            connections, self._all = self._all, []
        for db in connections:
            try:
                db.close()
            except sqlite3.ProgrammingError:
                pass  # made in another thread that is gone: the garbage collector closes it
        self._local = threading.local()

    # -- what there is -------------------------------------------------------

    def cameras(self) -> list[str]:
        """Names of the camera folders that have an index, sorted."""
        try:
            names = sorted(os.listdir(self.root))
        except OSError:
            return []
        return [name for name in names
                if _NAME.match(name) and os.path.exists(indexPath(os.path.join(self.root, name)))]

    def days(self, camera: str) -> list[str]:
        """The local days (``YYYY-MM-DD``) with footage, oldest first."""
        rows = self._db(camera).execute("SELECT DISTINCT substr(path, 1, 10) FROM segments ORDER BY 1")
        return [row[0] for row in rows]

    def spans(self, camera: str, start: float, end: float, gap: float = SPAN_GAP_SECONDS) -> list[tuple[float, float]]:
        """Recorded stretches overlapping ``start..end``: segments less than ``gap`` seconds apart merge."""
        rows = self._db(camera).execute(
            "SELECT start_ms, end_ms FROM segments WHERE end_ms >= ? AND start_ms < ? ORDER BY start_ms",
            (_ms(start), _ms(end)))
        spans: list[list[int]] = []
        gapMs = _ms(gap)
        for first, last in rows:
            if spans and first - spans[-1][1] <= gapMs:
                spans[-1][1] = max(spans[-1][1], last)
            else:
                if len(spans) >= MAX_SPANS:
                    break
                spans.append([first, last])
        return [(first / 1000.0, last / 1000.0) for first, last in spans]

    def count(self, camera: str, start: float, end: float) -> int:
        """How many frames ``start <= time < end``."""
        return self._db(camera).execute("SELECT COUNT(*) FROM frames WHERE time_ms >= ? AND time_ms < ?",
                                        (_ms(start), _ms(end))).fetchone()[0]

    # -- events --------------------------------------------------------------

    _EVENT_COLUMNS = ("id, start_ms, end_ms, peak_ms, peak_score, x0, y0, x1, y1, pre_roll_ms, post_roll_ms,"
                      " thumbnail IS NOT NULL")

    def _event(self, camera: str, row: tuple) -> Event:
        eventId, startMs, endMs, peakMs, score, x0, y0, x1, y1, pre, post, thumb = row
        region = None if x0 is None else (x0, y0, x1, y1)
        return Event(eventId, camera, startMs / 1000.0, None if endMs is None else endMs / 1000.0, peakMs / 1000.0,
                     score, region, pre / 1000.0, post / 1000.0, bool(thumb))

    def events(self, camera: str, start: float, end: float) -> list[Event]:
        """Motion events overlapping ``start..end``, oldest first (at most :data:`MAX_EVENTS`)."""
        rows = self._db(camera).execute(
            "SELECT %s FROM events WHERE start_ms < ? AND COALESCE(end_ms, peak_ms) >= ? ORDER BY start_ms LIMIT ?"
            % self._EVENT_COLUMNS, (_ms(end), _ms(start), MAX_EVENTS))
        return [self._event(camera, row) for row in rows]

    def event(self, camera: str, eventId: int) -> Event | None:
        """One event by id, or None."""
        row = self._db(camera).execute("SELECT %s FROM events WHERE id = ?" % self._EVENT_COLUMNS,
                                       (int(eventId),)).fetchone()
        return None if row is None else self._event(camera, row)

    def thumbnail(self, camera: str, eventId: int) -> bytes | None:
        """The small JPEG of an event's peak, or None."""
        row = self._db(camera).execute("SELECT thumbnail FROM events WHERE id = ?", (int(eventId),)).fetchone()
        return None if row is None or row[0] is None else bytes(row[0])

    # -- frames --------------------------------------------------------------

    def frameAt(self, camera: str, when: float) -> tuple[float, bytes] | None:
        """The frame shown at ``when``: the last one at or before it, else the first after; or None."""
        return self._first(camera, "<=", _ms(when)) or self._first(camera, ">", _ms(when))

    def frameAfter(self, camera: str, when: float) -> tuple[float, bytes] | None:
        """The first frame later than ``when`` (the next one when stepping), or None."""
        return self._first(camera, ">", _ms(when))

    def frameBefore(self, camera: str, when: float) -> tuple[float, bytes] | None:
        """The last frame earlier than ``when`` (the previous one when stepping), or None."""
        return self._first(camera, "<", _ms(when))

    def _first(self, camera: str, comparison: str, whenMs: int) -> tuple[float, bytes] | None:
        """The nearest readable frame whose time is ``comparison`` ``whenMs``, searching away from it."""
        order = "DESC" if comparison.startswith("<") else "ASC"
        query = ("SELECT f.time_ms, f.offset, f.length, s.path FROM frames f JOIN segments s ON s.id = f.segment"
                 " WHERE f.time_ms %s ? ORDER BY f.time_ms %s LIMIT %d" % (comparison, order, 8))
        for timeMs, offset, length, path in self._db(camera).execute(query, (whenMs,)):
            data = self._read(camera, path, offset, length)
            if data is not None:
                return timeMs / 1000.0, data
        return None

    def latestFrames(self, camera: str, count: int) -> list[tuple[float, bytes]]:
        """The ``count`` newest frames (at most :data:`MAX_LATEST`), oldest first."""
        rows = self._db(camera).execute(
            "SELECT f.time_ms, f.offset, f.length, s.path FROM frames f JOIN segments s ON s.id = f.segment"
            " ORDER BY f.time_ms DESC LIMIT ?", (max(0, min(count, MAX_LATEST)),)).fetchall()
        found = []
        for timeMs, offset, length, path in reversed(rows):
            data = self._read(camera, path, offset, length)
            if data is not None:
                found.append((timeMs / 1000.0, data))
        return found

    def frames(self, camera: str, start: float, end: float,
               every: float | None = None) -> Generator[tuple[float, bytes], None, None]:
        """``(time, jpeg)`` of the frames ``start <= time < end`` in time order.

        With ``every`` (seconds), only the first frame of each ``every``
        seconds is read. Memory holds one page of :data:`PAGE_ROWS` index rows
        and one frame; the segment being read stays open between frames.
        """
        db = self._db(camera)
        folder = self.folder(camera)
        cursor = (_ms(start) - 1, -1, -1)
        endMs = _ms(end)
        wanted = _ms(start)
        stepMs = _ms(every) if every else 0
        handle: BinaryIO | None = None
        handlePath: str | None = None
        try:
            while True:
                rows = db.execute(
                    "SELECT f.time_ms, f.segment, f.offset, f.length, s.path FROM frames f"
                    " JOIN segments s ON s.id = f.segment"
                    " WHERE (f.time_ms, f.segment, f.offset) > (?, ?, ?) AND f.time_ms < ?"
                    " ORDER BY f.time_ms, f.segment, f.offset LIMIT ?", cursor + (endMs, PAGE_ROWS)).fetchall()
                if not rows:
                    return
                for timeMs, _, offset, length, path in rows:
                    if stepMs and timeMs < wanted:
                        continue
                    if path != handlePath:
                        if handle is not None:
                            handle.close()
                        handle, handlePath = _openQuietly(os.path.join(folder, path)), path
                    if handle is None:
                        continue
                    handle.seek(offset)
                    data = handle.read(length)
                    if len(data) != length or jpegProblem(data) is not None:
                        continue
                    if stepMs:
                        wanted = timeMs - (timeMs - wanted) % stepMs + stepMs  # the next slot of the grid
                    yield timeMs / 1000.0, data
                last = rows[-1]
                cursor = (last[0], last[1], last[2])
        finally:
            if handle is not None:
                handle.close()

    def batch(self, camera: str, start: float, end: float, count: int, maxBytes: int,
              every: float | None = None) -> list[tuple[float, bytes]]:
        """The first frames of :meth:`frames` as a list: at most ``count``, and no more once ``maxBytes`` are read.

        The segment file read is closed before it returns (for callers that
        read a little at a time, each time in any thread).
        """
        return firstFrames(self.frames(camera, start, end, every=every), count, maxBytes)

    def _read(self, camera: str, path: str, offset: int, length: int) -> bytes | None:
        handle = _openQuietly(os.path.join(self.folder(camera), path))
        if handle is None:
            return None
        with handle:
            handle.seek(offset)
            data = handle.read(length)
        return data if len(data) == length and jpegProblem(data) is None else None

    # -- export --------------------------------------------------------------

    def exportJob(self, camera: str, start: float, end: float, path: str, every: float | None = None,
                  fps: float | None = None) -> ExportJob:
        """An export of ``start..end`` to the MP4 file ``path`` (a time-lapse with ``every``), not started.

        See :class:`tcpcam.record.export.ExportJob`: ``job.start()`` runs it in
        a thread and returns a Deferred; ``job.progress`` and ``job.cancel()``.
        """
        from tcpcam.record.export import TIMELAPSE_FPS, ExportJob

        self.folder(camera)
        return ExportJob(self.root, camera, start, end, path, every=every, fps=fps or TIMELAPSE_FPS)


def _openQuietly(path: str) -> BinaryIO | None:
    try:
        return open(path, "rb")
    except OSError:
        return None
