"""``/NAME/play.mjpg?from=T&speed=S``: recorded footage as an MJPEG stream, paced by the recorded times.

Why a stream: playing means a frame every few tens of milliseconds for as
long as the user watches. One HTTP request per frame would cost an index
look-up, a file open and a request for each; the stream reads the index a
page at a time and the segments in order, :data:`READ_AHEAD_FRAMES` frames
per read in a worker thread (:mod:`tcpcam.record.web.reads`), and the page
shows each part as it comes, its recorded time in the part's
``X-Timestamp`` header. The stream is also plain MJPEG for ffplay or VLC.
Stepping frame by frame and showing one moment use ``frame.jpg``
(:mod:`tcpcam.record.web.timeline`).

Pacing: the first frame goes out at once; each next one when its recorded
interval from the previous one, divided by ``speed``, has passed. A pause
in the recording longer than :data:`GAP_SECONDS` is shown as that long. About
:data:`MAX_PLAY_FPS` parts a second go out at most: at high speeds one frame
per ``speed / MAX_PLAY_FPS`` seconds of recording is taken, the frames in
between skipped in the index, before they are read. A frame more
than :data:`LATE_SECONDS` late (the viewer or the disk fell behind) starts
the clock again rather than sending a burst.

Bounds: each stream is the push producer of its response and holds at most
:data:`READ_AHEAD_FRAMES` frames (the first read takes :data:`FIRST_READ_FRAMES`,
so a seek shows its frame as soon as it is read) (and about :data:`READ_AHEAD_BYTES`); one
read at a time; a viewer that takes nothing for
:attr:`PlaybackStream.stallTimeout` seconds is dropped. One address plays at
most :data:`PLAYERS_PER_ADDRESS` streams at once (429 beyond), the recorder
:attr:`PlayResource.maxPlayers` (503 beyond), counted by a
:class:`~tcpcam.record.web.stream.ViewerLimits` of their own. A stream plays at
most :data:`MAX_PLAY_SECONDS` of recording, then ends; it also ends where
the recording ends.

Query: ``from`` (Unix seconds, required), ``speed`` (:data:`MIN_SPEED` to
:data:`MAX_SPEED`, default 1), ``to`` (Unix seconds, optional).
"""

from __future__ import annotations

from collections import deque

from twisted.internet.interfaces import IDelayedCall, IPushProducer, IReactorTime
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from tcpcam.record.footage import Footage
from tcpcam.record.web import query
from tcpcam.record.web.plain import plainText
from tcpcam.record.web.query import BadQuery
from tcpcam.record.web.reads import RETRY_SECONDS, FootageReads, ReadsBusy
from tcpcam.record.web.stall import StallWatch
from tcpcam.record.web.stream import ViewerLimits, clientHost, partHeader, setStreamHeaders
from tcpcam.record.web.timeline import hasFootage

log = Logger(namespace="tcpcam.record")

#: Slowest and fastest playback.
MIN_SPEED = 0.25
MAX_SPEED = 8.0
#: Most parts a second a stream sends; faster footage (or speed) skips frames before reading them.
MAX_PLAY_FPS = 25.0
#: Frames read ahead at a time, and the bytes that stop a read early.
READ_AHEAD_FRAMES = 12
READ_AHEAD_BYTES = 4 * 1024 * 1024
#: Frames of the first read: the first frame goes out as soon as it is read, the read-ahead follows.
FIRST_READ_FRAMES = 1
#: A pause in the recording longer than this many seconds is shown as this long.
GAP_SECONDS = 1.0
#: A frame this many seconds late starts the clock again (no burst to catch up).
LATE_SECONDS = 0.5
#: Most seconds of recording one stream plays.
MAX_PLAY_SECONDS = 86400.0
#: Playback streams at once, all addresses together.
MAX_PLAYERS = 32
#: Playback streams one address plays at once (all cameras together).
PLAYERS_PER_ADDRESS = 4


def readBatch(footage: Footage, camera: str, start: float, end: float, every: float,
              count: int = READ_AHEAD_FRAMES) -> list[tuple[float, bytes]]:
    """The next ``count`` frames of a stream (in a worker thread); [] at the end of the recording."""
    if not hasFootage(footage, camera):
        return []
    return footage.batch(camera, start, end, count, READ_AHEAD_BYTES, every=every)


@implementer(IPushProducer)
class PlaybackStream:
    """One viewer of recorded footage (see the module docstring)."""

    #: Seconds a viewer may take nothing while a frame waits for it before it is dropped.
    stallTimeout = 10.0

    def __init__(self, request: Request, reads: FootageReads, camera: str, start: float, end: float,
                 speed: float, clock: IReactorTime, limits: ViewerLimits, address: str) -> None:
        self.request = request
        self.reads = reads
        self.camera = camera
        self.end = end
        self.speed = speed
        self.address = address
        #: Seconds of recording between two frames sent (at least): frames in between are skipped.
        self.every = speed / MAX_PLAY_FPS
        self.sent = 0
        self.stalled = False
        self._clock = clock
        self._limits = limits
        self._next = start
        self._queue: deque[tuple[float, bytes]] = deque()
        self._reading = False
        self._exhausted = False
        self._paused = False
        self._done = False
        self._timer: IDelayedCall | None = None
        self._watch = StallWatch(clock, self.stallTimeout, request, self._stall)
        self._lastTime: float | None = None
        self._lastDue = 0.0
        self._due = 0.0

    def start(self) -> None:
        """Send the headers, count the stream and read its first frames."""
        self._limits.add(self)
        self.request.registerProducer(self, True)
        self.request.notifyFinish().addBoth(self._finished)
        self.request.write(b"")
        self._fetch()

    # -- reading --------------------------------------------------------

    def _fetch(self) -> None:
        if self._done or self._reading or self._exhausted:
            return
        self._reading = True
        count = READ_AHEAD_FRAMES if self.sent or self._queue else FIRST_READ_FRAMES
        reading = self.reads.run(self.address, readBatch, self.camera, self._next, self.end, self.every, count)
        reading.addCallbacks(self._read, self._readFailed)

    def _read(self, batch: list[tuple[float, bytes]]) -> None:
        self._reading = False
        if self._done:
            return
        if not batch:
            self._exhausted = True
        else:
            self._queue.extend(batch)
            self._next = batch[-1][0] + self.every
        self._schedule()

    def _readFailed(self, failure: Failure) -> None:
        self._reading = False
        if self._done:
            return
        if failure.check(ReadsBusy):
            self._clock.callLater(RETRY_SECONDS, self._fetch)
            return
        log.failure("web interface: reading footage to play failed", failure)
        self._finish()

    # -- pacing ---------------------------------------------------------

    def _schedule(self) -> None:
        if self._done or self._paused or self._timer is not None:
            return
        if not self._queue:
            if self._exhausted:
                self._finish()
            return
        when = self._queue[0][0]
        now = self._clock.seconds()
        if self._lastTime is None:
            due = now
        else:
            due = self._lastDue + min(max(0.0, when - self._lastTime), GAP_SECONDS) / self.speed
            if due < now - LATE_SECONDS:
                due = now
        self._due = due
        self._timer = self._clock.callLater(max(0.0, due - now), self._sendNext)

    def _sendNext(self) -> None:
        self._timer = None
        if self._done or self._paused or not self._queue:
            return
        when, frame = self._queue.popleft()
        self.request.write(partHeader(len(frame), when))
        self.request.write(frame)
        self.request.write(b"\r\n")
        self.sent += 1
        self._lastTime, self._lastDue = when, self._due
        if len(self._queue) <= READ_AHEAD_FRAMES // 2:
            self._fetch()
        self._schedule()

    # -- the connection -------------------------------------------------

    def pauseProducing(self) -> None:
        """The connection is full: send nothing more for now."""
        self._paused = True
        self._cancel("_timer")
        if not self._done:
            self._watch.arm()

    def resumeProducing(self) -> None:
        """The connection has room: go on."""
        self._paused = False
        self._watch.cancel()
        self._schedule()

    def stopProducing(self) -> None:
        """The connection is going away."""
        self._detach()

    def close(self) -> None:
        """End the stream (the recorder is stopping)."""
        self._finish()

    def _stall(self) -> None:
        if self._done:
            return
        self.stalled = True
        self._detach()

    def _finish(self) -> None:
        if self._done:
            return
        self._detach()
        self.request.unregisterProducer()
        self.request.finish()

    def _finished(self, result: None | Failure) -> None:
        self._detach()

    def _cancel(self, name: str) -> None:
        call = getattr(self, name)
        if call is not None:
            if call.active():
                call.cancel()
            setattr(self, name, None)

    def _detach(self) -> None:
        if self._done:
            return
        self._done = True
        self._queue.clear()
        self._cancel("_timer")
        self._watch.cancel()
        self._limits.remove(self)


class PlayResource(Resource):
    """``/NAME/play.mjpg``: start a :class:`PlaybackStream`, within the limits."""

    isLeaf = True
    #: Playback streams at once, all addresses together; more get 503.
    maxPlayers = MAX_PLAYERS

    def __init__(self, reads: FootageReads, camera: str, limits: ViewerLimits, clock: IReactorTime) -> None:
        Resource.__init__(self)
        self.reads = reads
        self.camera = camera
        self.limits = limits
        self._clock = clock

    def render_HEAD(self, request: Request) -> bytes:
        """Only the headers: a HEAD request gets no stream."""
        setStreamHeaders(request)
        return b""

    def render_GET(self, request: Request) -> bytes | int:
        """Check the query and the limits, then stream."""
        try:
            start = query.moment(request, "from")
            speed = query.number(request, "speed", MIN_SPEED, MAX_SPEED, 1.0)
            end = start + MAX_PLAY_SECONDS
            if query.argument(request, "to") is not None:
                end = query.moment(request, "to")
                if not end > start:
                    raise BadQuery("to must be after from")
                if end - start > MAX_PLAY_SECONDS:
                    raise BadQuery("a stream plays at most %s" % query.describeSeconds(MAX_PLAY_SECONDS))
        except BadQuery as error:
            return plainText(request, 400, str(error))
        address = clientHost(request)
        if len(self.limits.viewers) >= self.maxPlayers:
            return plainText(request, 503, "too many playback streams (at most %d)" % self.maxPlayers, retryAfter=5)
        if self.limits.full(address):
            return plainText(request, 429, "too many playback streams from your address (at most %d at once)"
                             % self.limits.perAddress, retryAfter=5)
        setStreamHeaders(request)
        PlaybackStream(request, self.reads, self.camera, start, end, speed, self._clock, self.limits,
                       address).start()
        return NOT_DONE_YET
