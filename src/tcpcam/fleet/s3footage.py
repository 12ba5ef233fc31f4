"""Recorded footage read from the object store: :class:`S3Footage` has the interface of
:class:`tcpcam.record.footage.Footage`, so the web pages, export and replay work on the fleet's footage unchanged.

It lists the key layout of :mod:`tcpcam.fleet.keys` (one LIST per UTC day of
a camera, cached :attr:`S3Footage.cacheSeconds`), reads segment indexes
(cached, at most :attr:`S3Footage.maxIndexes`), and reads frames with ranged
GETs, or one streamed GET per segment for :meth:`S3Footage.frames`, so
memory holds one frame at a time. Times are Unix seconds, ranges half open,
as in Footage. Event ids are the events' start in milliseconds (unique per
camera across recorders). Any thread may call it.
"""

from __future__ import annotations

import base64
import json
import threading
import time
from collections import OrderedDict
from collections.abc import Generator, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tcpcam.common.jpeg import jpegProblem
from tcpcam.fleet.keys import EVENTS_FOLDER, parseEventName, parseSegmentName, utcDay, utcDaysBetween
from tcpcam.record.config import checkName
from tcpcam.record.footage import MAX_EVENTS, MAX_LATEST, MAX_SPANS, Event, firstFrames
from tcpcam.record.layout import dayName
from tcpcam.record.segments import SPAN_GAP_SECONDS

if TYPE_CHECKING:
    from tcpcam.record.export import ExportJob

#: Longest a segment can run (the recorder's --segment-seconds bound), in ms: how far back a range looks.
LONGEST_SEGMENT_MS = 3600 * 1000
#: Unreadable frames a nearest-frame search skips before it gives up (as Footage does).
NEAREST_TRIES = 8


@dataclass(frozen=True)
class StoredSegment:
    """One segment in the object store."""

    startMs: int
    endMs: int
    recorder: str
    segmentId: int
    key: str
    indexKey: str


def _ms(when: float) -> int:
    return int(round(when * 1000))


class S3Footage:
    """Read-only access to the fleet's footage in ``bucket`` under ``prefix`` (see the module docstring)."""

    #: Seconds a listing is reused.
    cacheSeconds = 5.0
    #: Segment indexes kept in memory.
    maxIndexes = 256

    def __init__(self, client: Any, bucket: str, prefix: str = "") -> None:
        self.client = client
        self.bucket = bucket
        self.prefix = prefix
        self.root = "s3://%s/%s" % (bucket, prefix)
        self._lock = threading.Lock()
        self._listings: dict[str, tuple[float, list[str], list[str]]] = {}
        self._indexes: OrderedDict[str, list[list[int]]] = OrderedDict()
        self.gets = 0
        self.lists = 0

    # -- listing -------------------------------------------------------------

    def _list(self, prefix: str, delimiter: str = "") -> tuple[list[str], list[str]]:
        now = time.monotonic()
        cacheKey = prefix + "\0" + delimiter
        with self._lock:
            cached = self._listings.get(cacheKey)
            if cached is not None and now - cached[0] < self.cacheSeconds:
                return cached[1], cached[2]
        keys: list[str] = []
        folders: list[str] = []
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": prefix}
        if delimiter:
            kwargs["Delimiter"] = delimiter
        for page in self.client.get_paginator("list_objects_v2").paginate(**kwargs):
            self.lists += 1
            keys.extend(item["Key"] for item in page.get("Contents", ()))
            folders.extend(item["Prefix"] for item in page.get("CommonPrefixes", ()))
        with self._lock:
            if len(self._listings) > 1024:
                self._listings.clear()
            self._listings[cacheKey] = (now, keys, folders)
        return keys, folders

    def cameras(self) -> list[str]:
        """Names of the cameras with footage, sorted."""
        _, folders = self._list(self.prefix, "/")
        return sorted(folder[len(self.prefix):].rstrip("/") for folder in folders)

    def folder(self, camera: str) -> str:
        """Where ``camera``'s footage is; ValueError if it has none."""
        try:
            checkName(camera)
        except ValueError:
            raise ValueError("no such camera: %r" % (camera,)) from None
        if camera not in self.cameras():
            raise ValueError("no such camera: %r (nothing under %s)" % (camera, self.root))
        return "%s%s/" % (self.root, camera)

    def _utcDays(self, camera: str) -> list[str]:
        _, folders = self._list("%s%s/" % (self.prefix, camera), "/")
        names = [folder.rstrip("/").rsplit("/", 1)[-1] for folder in folders]
        return sorted(name for name in names if name != EVENTS_FOLDER)

    def _segmentsOfDay(self, camera: str, day: str) -> list[StoredSegment]:
        keys, _ = self._list("%s%s/%s/" % (self.prefix, camera, day))
        indexed = set(keys)
        found = []
        for key in keys:
            parsed = parseSegmentName(key.rsplit("/", 1)[-1])
            if parsed is None or parsed[4] != "mjpeg":
                continue
            indexKey = key[:-len("mjpeg")] + "json"
            if indexKey in indexed:  # a segment counts once its index is stored
                found.append(StoredSegment(parsed[0], parsed[1], parsed[2], parsed[3], key, indexKey))
        return found

    def _segments(self, camera: str, startMs: int, endMs: int) -> list[StoredSegment]:
        self.folder(camera)
        found: list[StoredSegment] = []
        for day in utcDaysBetween(startMs - LONGEST_SEGMENT_MS, endMs):
            found.extend(segment for segment in self._segmentsOfDay(camera, day)
                         if segment.endMs >= startMs and segment.startMs < endMs)
        return sorted(found, key=lambda segment: (segment.startMs, segment.recorder, segment.segmentId))

    def days(self, camera: str) -> list[str]:
        """The local days (``YYYY-MM-DD``) with footage, oldest first."""
        self.folder(camera)
        local: set[str] = set()
        for day in self._utcDays(camera):
            local.update(dayName(segment.startMs / 1000.0) for segment in self._segmentsOfDay(camera, day))
        return sorted(local)

    def spans(self, camera: str, start: float, end: float, gap: float = SPAN_GAP_SECONDS) -> list[tuple[float, float]]:
        """Recorded stretches overlapping ``start..end``: segments less than ``gap`` seconds apart merge."""
        spans: list[list[int]] = []
        gapMs = _ms(gap)
        for segment in self._segments(camera, _ms(start), _ms(end)):
            if spans and segment.startMs - spans[-1][1] <= gapMs:
                spans[-1][1] = max(spans[-1][1], segment.endMs)
            elif len(spans) < MAX_SPANS:
                spans.append([segment.startMs, segment.endMs])
        return [(first / 1000.0, last / 1000.0) for first, last in spans]

    # -- indexes and frames ----------------------------------------------------

    def _index(self, segment: StoredSegment) -> list[list[int]]:
        with self._lock:
            cached = self._indexes.get(segment.indexKey)
            if cached is not None:
                self._indexes.move_to_end(segment.indexKey)
                return cached
        body = self.client.get_object(Bucket=self.bucket, Key=segment.indexKey)["Body"].read()
        self.gets += 1
        frames = [row[:3] for row in json.loads(body)["frames"]]
        with self._lock:
            self._indexes[segment.indexKey] = frames
            while len(self._indexes) > self.maxIndexes:
                self._indexes.popitem(last=False)
        return frames

    def count(self, camera: str, start: float, end: float) -> int:
        """How many frames ``start <= time < end``."""
        startMs, endMs = _ms(start), _ms(end)
        return sum(1 for segment in self._segments(camera, startMs, endMs)
                   for timeMs, _, _ in self._index(segment) if startMs <= timeMs < endMs)

    def _read(self, segment: StoredSegment, offset: int, length: int) -> bytes | None:
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=segment.key,
                                          Range="bytes=%d-%d" % (offset, offset + length - 1))["Body"].read()
        except Exception:
            return None
        self.gets += 1
        return body if len(body) == length and jpegProblem(body) is None else None

    def frameAt(self, camera: str, when: float) -> tuple[float, bytes] | None:
        """The frame shown at ``when``: the last one at or before it, else the first after; or None."""
        whenMs = _ms(when)
        return self._nearest(camera, whenMs + 1, later=False) or self._nearest(camera, whenMs, later=True)

    def frameAfter(self, camera: str, when: float) -> tuple[float, bytes] | None:
        """The first frame later than ``when`` (the next one when stepping), or None."""
        return self._nearest(camera, _ms(when), later=True)

    def frameBefore(self, camera: str, when: float) -> tuple[float, bytes] | None:
        """The last frame earlier than ``when`` (the previous one when stepping), or None."""
        return self._nearest(camera, _ms(when), later=False)

    def _nearest(self, camera: str, whenMs: int, later: bool) -> tuple[float, bytes] | None:
        """The readable frame nearest ``whenMs``, after it (``later``) or before it, however far.

        Gives up after :data:`NEAREST_TRIES` unreadable frames, as Footage does.
        """
        self.folder(camera)
        for tries, (segment, timeMs, offset, length) in enumerate(self._rowsAway(camera, whenMs, later)):
            if tries >= NEAREST_TRIES:
                break
            data = self._read(segment, offset, length)
            if data is not None:
                return timeMs / 1000.0, data
        return None

    def _rowsAway(self, camera: str, whenMs: int, later: bool) -> Iterator[tuple[StoredSegment, int, int, int]]:
        """``(segment, time, offset, length)`` of the frames after (``later``) or before ``whenMs``, nearest first."""
        days = self._utcDays(camera)
        if later:
            first = utcDay(whenMs - LONGEST_SEGMENT_MS)  # a segment is listed under the day it starts
            days = [day for day in days if day >= first]
        else:
            last = utcDay(whenMs)
            days = [day for day in reversed(days) if day <= last]
        for day in days:
            for segment in sorted(self._segmentsOfDay(camera, day), key=lambda s: s.startMs, reverse=not later):
                if (segment.endMs < whenMs) if later else (segment.startMs >= whenMs):
                    continue
                rows = self._index(segment)
                for timeMs, offset, length in (rows if later else reversed(rows)):
                    if (timeMs > whenMs) if later else (timeMs < whenMs):
                        yield segment, timeMs, offset, length

    def latestFrames(self, camera: str, count: int) -> list[tuple[float, bytes]]:
        """The ``count`` newest frames (at most :data:`MAX_LATEST`), oldest first."""
        count = max(0, min(count, MAX_LATEST))
        found: list[tuple[float, bytes]] = []
        for day in reversed(self._utcDays(camera)):
            for segment in sorted(self._segmentsOfDay(camera, day), key=lambda s: s.startMs, reverse=True):
                for timeMs, offset, length in reversed(self._index(segment)):
                    if len(found) >= count:
                        return list(reversed(found))
                    data = self._read(segment, offset, length)
                    if data is not None:
                        found.append((timeMs / 1000.0, data))
            if len(found) >= count:
                break
        return list(reversed(found))

    def frames(self, camera: str, start: float, end: float,
               every: float | None = None) -> Generator[tuple[float, bytes], None, None]:
        """``(time, jpeg)`` of the frames ``start <= time < end`` in time order (one per ``every`` s if given)."""
        startMs, endMs = _ms(start), _ms(end)
        wanted = startMs
        stepMs = _ms(every) if every else 0
        lastMs = -1
        for segment in self._segments(camera, startMs, endMs):
            rows = [row for row in self._index(segment) if startMs <= row[0] < endMs]
            if stepMs:
                chosen = []
                for row in rows:
                    if row[0] >= wanted:
                        chosen.append(row)
                        wanted = row[0] - (row[0] - wanted) % stepMs + stepMs
                rows = chosen
            if not rows:
                continue
            first, last = rows[0][1], rows[-1][1] + rows[-1][2]
            body = self.client.get_object(Bucket=self.bucket, Key=segment.key,
                                          Range="bytes=%d-%d" % (first, last - 1))["Body"]
            self.gets += 1
            position = first
            try:
                for timeMs, offset, length in rows:
                    if offset > position:
                        body.read(offset - position)
                    data = body.read(length)
                    position = offset + len(data)
                    if len(data) == length and jpegProblem(data) is None and timeMs > lastMs - 1:
                        lastMs = timeMs
                        yield timeMs / 1000.0, data
            finally:
                body.close()

    def batch(self, camera: str, start: float, end: float, count: int, maxBytes: int,
              every: float | None = None) -> list[tuple[float, bytes]]:
        """The first frames of :meth:`frames` as a list: at most ``count``, and no more once ``maxBytes`` are read."""
        return firstFrames(self.frames(camera, start, end, every=every), count, maxBytes)

    # -- events ----------------------------------------------------------------

    def _eventsOfDay(self, camera: str, day: str) -> list[dict[str, Any]]:
        keys, _ = self._list("%s%s/%s/%s/" % (self.prefix, camera, EVENTS_FOLDER, day))
        found = []
        for key in sorted(keys):
            if parseEventName(key.rsplit("/", 1)[-1]) is None:
                continue
            try:
                found.append(self._eventBody(key))
            except Exception:
                continue
        return found

    def _eventBody(self, key: str) -> dict[str, Any]:
        with self._lock:
            cached = self._indexes.get(key)
        if cached is not None:
            return cached  # type: ignore[return-value]
        body = json.loads(self.client.get_object(Bucket=self.bucket, Key=key)["Body"].read())
        self.gets += 1
        with self._lock:
            self._indexes[key] = body
        return dict(body)

    def _toEvent(self, camera: str, body: dict[str, Any]) -> Event:
        event = body["event"]
        region = None if event.get("x0") is None else (event["x0"], event["y0"], event["x1"], event["y1"])
        endMs = event.get("end_ms")
        return Event(int(event["start_ms"]), camera, event["start_ms"] / 1000.0,
                     None if endMs is None else endMs / 1000.0, event["peak_ms"] / 1000.0, event["peak_score"],
                     region, event["pre_roll_ms"] / 1000.0, event["post_roll_ms"] / 1000.0,
                     bool(body.get("thumbnail")))

    def events(self, camera: str, start: float, end: float) -> list[Event]:
        """Motion events overlapping ``start..end``, oldest first (at most :data:`MAX_EVENTS`)."""
        self.folder(camera)
        startMs, endMs = _ms(start), _ms(end)
        found = []
        for day in utcDaysBetween(startMs - 86_400_000, endMs):
            for body in self._eventsOfDay(camera, day):
                event = self._toEvent(camera, body)
                if event.start < end and (event.end if event.end is not None else event.peak) >= start:
                    found.append(event)
        return sorted(found, key=lambda event: event.start)[:MAX_EVENTS]

    def _eventBodyById(self, camera: str, eventId: int) -> dict[str, Any] | None:
        for body in self._eventsOfDay(camera, utcDay(int(eventId))):
            if int(body["event"]["start_ms"]) == int(eventId):
                return body
        return None

    def event(self, camera: str, eventId: int) -> Event | None:
        """One event by id (its start in ms), or None."""
        self.folder(camera)
        body = self._eventBodyById(camera, eventId)
        return None if body is None else self._toEvent(camera, body)

    def thumbnail(self, camera: str, eventId: int) -> bytes | None:
        """The small JPEG of an event's peak, or None."""
        self.folder(camera)
        body = self._eventBodyById(camera, eventId)
        if body is None or not body.get("thumbnail"):
            return None
        return base64.b64decode(body["thumbnail"])

    # -- export ------------------------------------------------------------------

    def exportJob(self, camera: str, start: float, end: float, path: str, every: float | None = None,
                  fps: float | None = None) -> ExportJob:
        """An export of ``start..end`` to the MP4 file ``path``, read from the object store, not started."""
        from tcpcam.record.export import TIMELAPSE_FPS, ExportJob

        self.folder(camera)
        return ExportJob(self.root, camera, start, end, path, every=every, fps=fps or TIMELAPSE_FPS,
                         opener=lambda: S3Footage(self.client, self.bucket, self.prefix))

    def close(self) -> None:
        """Forget the caches."""
        with self._lock:
            self._listings.clear()
            self._indexes.clear()
