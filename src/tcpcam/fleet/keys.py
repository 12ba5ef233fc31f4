"""The object store's key layout: listing a camera's day gives its segments in time order.

::

    PREFIX CAMERA/YYYY-MM-DD/START_END_RECORDER_ID.mjpeg   a segment, as recorded (concatenated JPEGs)
    PREFIX CAMERA/YYYY-MM-DD/START_END_RECORDER_ID.json    its index: every frame's time, offset, length
    PREFIX CAMERA/events/YYYY-MM-DD/START_RECORDER_ID.json a motion event (with its thumbnail), once ended

``YYYY-MM-DD`` is the UTC day of the segment's first frame; ``START`` and
``END`` are its first and last frame in Unix milliseconds, 13 digits, so keys
sort by time; ``RECORDER`` and ``ID`` (the segment's row in that recorder's
index) make a key unique to one segment. Keys are written once (``If-None-Match: *``),
so an upload repeated after a crash finds its own object and writes nothing twice.
A segment counts as stored once its ``.json`` index exists (written after the segment).
"""

from __future__ import annotations

import re
import time

_SEGMENT = re.compile(r"^(\d{13})_(\d{13})_([A-Za-z0-9_-]+)_(\d+)\.(mjpeg|json)$")
_EVENT = re.compile(r"^(\d{13})_([A-Za-z0-9_-]+)_(\d+)\.json$")
#: The folder of a camera's events.
EVENTS_FOLDER = "events"


def utcDay(ms: int) -> str:
    """The UTC day of a moment in Unix milliseconds: ``2026-12-01``."""
    return time.strftime("%Y-%m-%d", time.gmtime(ms / 1000.0))


def dayPrefix(prefix: str, camera: str, day: str) -> str:
    """Where a camera's segments of one UTC day are listed."""
    return "%s%s/%s/" % (prefix, camera, day)


def segmentKey(prefix: str, camera: str, startMs: int, endMs: int, recorder: str, segmentId: int,
               suffix: str = "mjpeg") -> str:
    """The key of a segment (``suffix`` ``json``: of its index)."""
    return "%s%013d_%013d_%s_%d.%s" % (dayPrefix(prefix, camera, utcDay(startMs)), startMs, endMs, recorder,
                                       segmentId, suffix)


def eventKey(prefix: str, camera: str, startMs: int, recorder: str, eventId: int) -> str:
    """The key of a motion event."""
    return "%s%s/%s/%s/%013d_%s_%d.json" % (prefix, camera, EVENTS_FOLDER, utcDay(startMs), startMs, recorder,
                                           eventId)


def parseSegmentName(name: str) -> tuple[int, int, str, int, str] | None:
    """``(start ms, end ms, recorder, segment id, suffix)`` of a segment key's last part, or None."""
    match = _SEGMENT.match(name)
    if match is None:
        return None
    return int(match.group(1)), int(match.group(2)), match.group(3), int(match.group(4)), match.group(5)


def parseEventName(name: str) -> tuple[int, str, int] | None:
    """``(start ms, recorder, event id)`` of an event key's last part, or None."""
    match = _EVENT.match(name)
    if match is None:
        return None
    return int(match.group(1)), match.group(2), int(match.group(3))


def utcDaysBetween(startMs: int, endMs: int) -> list[str]:
    """The UTC days from ``startMs`` to ``endMs``, both included."""
    days = []
    day = startMs - startMs % 86_400_000
    while day <= endMs:
        days.append(utcDay(day))
        day += 86_400_000
    return days
