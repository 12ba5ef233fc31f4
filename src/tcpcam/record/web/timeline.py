"""The timeline's JSON endpoints: a camera's days, recorded spans, motion events, thumbnails and frames.

Under ``/NAME/``, behind the login, each read in the worker threads of
:class:`~tcpcam.record.web.reads.FootageReads` and bounded:

- ``days.json``: the local days with footage (the newest :data:`MAX_DAYS_LISTED`);
- ``spans.json?day=YYYY-MM-DD`` (or ``from=&to=``, Unix seconds, at most
  :data:`MAX_QUERY_SECONDS` apart): the recorded stretches, at most
  :data:`MAX_SPANS_LISTED`;
- ``events.json?day=...`` (or ``from=&to=``): the motion events, at most
  :data:`MAX_EVENTS_LISTED`;
- ``event/ID/thumbnail.jpg``: an event's thumbnail;
- ``frame.jpg?t=T`` : the frame shown at ``T``; ``&step=next`` the first
  one after it, ``&step=prev`` the last one before it. The frame's recorded
  time is in the ``X-Timestamp`` header (Unix seconds).

Lists that hit their cap say ``"truncated": true``. A bad parameter is one
line of text with 400; a camera that has no index yet has no days, spans or
events (and its frames are 404).
"""

from __future__ import annotations

import sqlite3
from collections.abc import Callable
from typing import Any

from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from tcpcam.record.footage import Footage
from tcpcam.record.web import query
from tcpcam.record.web.plain import PlainError, plainText
from tcpcam.record.web.query import BadQuery
from tcpcam.record.web.reads import Answer, FootageReads, answerLater
from tcpcam.record.web.stream import clientHost

#: Longest range one spans.json or events.json request covers, in seconds.
MAX_QUERY_SECONDS = 7 * 86400
#: Most days days.json lists (the newest).
MAX_DAYS_LISTED = 3660
#: Most spans one spans.json answer lists.
MAX_SPANS_LISTED = 20_000
#: Most events one events.json answer lists.
MAX_EVENTS_LISTED = 1000
#: Seconds a browser may keep a thumbnail without asking again.
THUMBNAIL_MAX_AGE = 3600
#: The largest event id accepted.
MAX_EVENT_ID = 2 ** 62


def hasFootage(footage: Footage, camera: str) -> bool:
    """True if ``camera`` has an index to read (the recorder makes it when it starts)."""
    try:
        footage.count(camera, 0, 0)
    except ValueError:
        return False
    except sqlite3.OperationalError as error:
        if "no such table" in str(error):  # the recorder is making the index right now
            return False
        raise
    return True


def frameAnswer(found: tuple[float, bytes] | None, missing: str) -> Answer:
    """A frame as a JPEG answer with its time in ``X-Timestamp``, or 404 with ``missing``."""
    if found is None:
        return Answer.text(404, missing)
    when, data = found
    return Answer(200, data, b"image/jpeg", {b"x-timestamp": b"%.3f" % when})


def readDays(footage: Footage, camera: str) -> Answer:
    """``{"camera", "days", "truncated"}``."""
    days = footage.days(camera) if hasFootage(footage, camera) else []
    return Answer.json({"camera": camera, "days": days[-MAX_DAYS_LISTED:], "truncated": len(days) > MAX_DAYS_LISTED})


def readSpans(footage: Footage, camera: str, start: float, end: float, day: str | None) -> Answer:
    """``{"camera", "day", "from", "to", "spans": [[start, end], ...], "truncated"}``."""
    spans = footage.spans(camera, start, end) if hasFootage(footage, camera) else []
    return Answer.json({"camera": camera, "day": day, "from": start, "to": end,
                        "spans": [list(span) for span in spans[:MAX_SPANS_LISTED]],
                        "truncated": len(spans) > MAX_SPANS_LISTED})


def readEvents(footage: Footage, camera: str, start: float, end: float, day: str | None) -> Answer:
    """``{"camera", "day", "from", "to", "events": [...], "truncated"}``; each event with its clip and thumbnail."""
    events = footage.events(camera, start, end) if hasFootage(footage, camera) else []
    listed = []
    for event in events[:MAX_EVENTS_LISTED]:
        item = event.asDict()
        item["clip_start"], item["clip_end"] = event.clipStart, event.clipEnd
        item["thumbnail"] = "event/%d/thumbnail.jpg" % event.id if event.hasThumbnail else None
        listed.append(item)
    return Answer.json({"camera": camera, "day": day, "from": start, "to": end, "events": listed,
                        "truncated": len(events) > MAX_EVENTS_LISTED})


def readThumbnail(footage: Footage, camera: str, eventId: int) -> Answer:
    """The event's thumbnail JPEG, or 404."""
    data = footage.thumbnail(camera, eventId) if hasFootage(footage, camera) else None
    if data is None:
        return Answer.text(404, "no thumbnail of event %d" % eventId)
    return Answer(200, data, b"image/jpeg", {b"cache-control": b"private, max-age=%d" % THUMBNAIL_MAX_AGE})


def readFrame(footage: Footage, camera: str, when: float, step: str) -> Answer:
    """The frame at ``when`` (``step`` "": shown then, "next": after, "prev": before)."""
    if not hasFootage(footage, camera):
        return Answer.text(404, "no recorded frame of %s yet" % camera)
    if step == "next":
        return frameAnswer(footage.frameAfter(camera, when), "no recorded frame after that time")
    if step == "prev":
        return frameAnswer(footage.frameBefore(camera, when), "no recorded frame before that time")
    return frameAnswer(footage.frameAt(camera, when), "no recorded frame of %s" % camera)


class FootageEndpoint(Resource):
    """A GET endpoint: ``parse(request)`` checks the query, then ``work(footage, camera, *parsed)`` runs in a thread."""

    isLeaf = True

    def __init__(self, reads: FootageReads, camera: str, parse: Callable[[Request], tuple[Any, ...]],
                 work: Callable[..., Answer]) -> None:
        Resource.__init__(self)
        self.reads = reads
        self.camera = camera
        self.parse = parse
        self.work = work

    def render_GET(self, request: Request) -> bytes | int:
        """Answer from the worker thread; 400 for a bad query."""
        try:
            parsed = self.parse(request)
        except BadQuery as error:
            return plainText(request, 400, str(error))
        return answerLater(request, self.reads, clientHost(request), self.work, self.camera, *parsed)

    render_HEAD = render_GET


def _noQuery(request: Request) -> tuple[()]:
    return ()


def _range(request: Request) -> tuple[float, float, str | None]:
    return query.timeRange(request, MAX_QUERY_SECONDS)


def _frameQuery(request: Request) -> tuple[float, str]:
    return query.moment(request, "t"), query.choice(request, "step", ("next", "prev"), "")


class EventFolder(Resource):
    """``event/ID/thumbnail.jpg``."""

    def __init__(self, reads: FootageReads, camera: str) -> None:
        Resource.__init__(self)
        self.reads = reads
        self.camera = camera

    def getChild(self, path: bytes, request: Request) -> IResource:
        """``ID`` (a whole number) then ``thumbnail.jpg``; anything else is 404."""
        if not path.isdigit() or len(path) > 19 or not 0 < int(path) <= MAX_EVENT_ID:
            return PlainError(404, "no such event")
        if request.postpath != [b"thumbnail.jpg"]:
            return PlainError(404, "no such page")
        eventId = int(path)
        return FootageEndpoint(self.reads, self.camera, lambda _: (eventId,), readThumbnail)

    def render(self, request: Request) -> bytes:
        """The folder itself is not a page."""
        return plainText(request, 404, "no such page")


def timelineChildren(reads: FootageReads, camera: str) -> dict[bytes, IResource]:
    """The timeline's endpoints of one camera, by name (see the module docstring)."""
    return {
        b"days.json": FootageEndpoint(reads, camera, _noQuery, readDays),
        b"spans.json": FootageEndpoint(reads, camera, _range, readSpans),
        b"events.json": FootageEndpoint(reads, camera, _range, readEvents),
        b"event": EventFolder(reads, camera),
        b"frame.jpg": FootageEndpoint(reads, camera, _frameQuery, readFrame),
    }
