"""Record one camera: reconnect forever, check every frame, hand it to the disk writer, log the gaps.

The camera never writes to the disk itself: frames, ``events.jsonl`` lines
and motion events go to its :class:`~tcpcam.record.writer.CameraSink`, whose
thread does the writing. When the writer's queue is full, frames are dropped,
counted (``queue_dropped_frames``) and logged once per run of drops.
"""

from __future__ import annotations

import random
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Protocol, cast

from twisted.application.internet import ClientService, backoffPolicy
from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IReactorTime, IStreamClientEndpoint
from twisted.logger import ILogObserver, LogEvent, Logger, LogLevel, globalLogPublisher
from twisted.python.failure import Failure
from zope.interface import implementer

from tcpcam.common.jpeg import jpegProblem
from tcpcam.record.endpoints import WatchedEndpoint

if TYPE_CHECKING:
    from tcpcam.client import FetchSummary, TCPCamClientFactory, TCPCamClientProtocol
    from tcpcam.record.config import CameraConfig
    from tcpcam.record.motion import MotionEvent, MotionStats, MotionWorker
    from tcpcam.record.writer import CameraSink, Store

log = Logger(namespace="tcpcam.record")

#: Seconds of frames kept beyond the pre-roll (mode motion), for the motion worker's delay.
RING_SLACK_SECONDS = 2.0
#: Bytes of frames the pre-roll ring holds at most (mode motion).
RING_BYTES = 32 * 1024 * 1024


@implementer(ILogObserver)
class _WarningsAndWorse:
    """Pass on only warnings and errors to the global log."""

    def __call__(self, event: LogEvent) -> None:
        if event.get("log_level") in (LogLevel.warn, LogLevel.error, LogLevel.critical):
            globalLogPublisher(event)


class _StateChangesOnly(ClientService):
    """ClientService minus its line per retry: the camera logs state changes itself."""

    _log = Logger(namespace="tcpcam.record.clientservice",
                  observer=cast(ILogObserver, _WarningsAndWorse()))


def defaultFactoryMaker(pin: str, frameReceived: Callable[[memoryview], object], maxFrameBytes: int,
                        frameTimeout: float, clock: IReactorTime) -> TCPCamClientFactory:
    """Return the tcpcam client factory asking for an endless stream."""
    from tcpcam.client import TCPCamClientFactory

    return TCPCamClientFactory(
        pin, 0, frameReceived, maxFrameBytes=maxFrameBytes, frameTimeout=frameTimeout,
        clock=clock,
    )


#: ``(pin, frameReceived, maxFrameBytes, frameTimeout, clock)`` -> the factory of each connection.
FactoryMaker = Callable[[str, Callable[[memoryview], object], int, float, IReactorTime], IProtocolFactory]


class Viewer(Protocol):
    """A live viewer of a camera, such as :class:`~tcpcam.record.web.MjpegViewer`."""

    def frameAvailable(self, frame: bytes) -> None:
        """Take one good frame."""


class CameraRecorder(Service):
    """Keep one camera's stream recorded, whatever the network does.

    A ClientService with a capped, jittered backoff keeps the connection up;
    every frame is checked as a JPEG, queued for the disk writer, and handed
    to the live viewers. Connects, disconnects (with their reason), bad frames
    and disk errors go to the camera's event log, and each state change is
    logged once.
    """

    #: Seconds of frame times that the frame rate is computed over.
    fpsWindow = 5.0
    #: Bytes of frames the pre-roll ring holds at most (mode motion).
    ringBytes = RING_BYTES

    def __init__(self, camera: CameraConfig, endpoint: IStreamClientEndpoint,
                 sink: CameraSink, reactor: IReactorTime,
                 backoffInitial: float = 1.0, backoffMax: float = 60.0,
                 factoryMaker: FactoryMaker = defaultFactoryMaker, motion: MotionWorker | None = None) -> None:
        self.camera = camera
        self.setName(camera.name)
        self.endpoint = endpoint
        self.sink = sink
        if sink is not None:
            sink.onDiskState = self._diskStateChanged
            sink.onEventLogState = self._eventLogStateChanged
        self._reactor = reactor
        self._factoryMaker = factoryMaker
        self._backoffMax = backoffMax
        self._policy = backoffPolicy(
            initialDelay=backoffInitial, maxDelay=backoffMax,
            jitter=lambda: random.random() * min(1.0, backoffInitial),
        )
        self.state = "stopped"
        self.frames = 0
        self.badFrames = 0
        self.bytes = 0
        self.connects = 0
        self.connectFailures = 0
        self.queueDropped = 0
        self.latest: bytes | None = None
        self.lastFrameTime: float | None = None
        self.lastReason: str | None = None
        self._times: deque[float] = deque(maxlen=256)
        self._viewers: set[Viewer] = set()
        self._fruitlessSessions = 0
        self._sessionStart = 0
        self._sessionBad = 0
        self._dropRun = 0
        self._motion = motion if camera.motion else None
        self.motionStats: MotionStats | None = None
        self.motionEvent: MotionEvent | None = None
        self._ring: deque[tuple[float, bytes, int]] = deque()
        self._ringBytes = 0
        if self._motion is not None:
            self.motionStats = self._motion.addCamera(camera.name, camera.motionThreshold, camera.motionMask,
                                                      camera.preRoll, camera.postRoll, self._motionReport)
        self._client: _StateChangesOnly | None = None
        #: Called as ``onMotion(kind, event)`` with each motion report (``start``, ``peak``, ``end``).
        self.onMotion: Callable[[str, MotionEvent], object] | None = None

    @property
    def store(self) -> Any:
        """The store the disk writer writes this camera's frames to."""
        return self.sink.store

    @property
    def droppedFrames(self) -> int:
        """Good frames not stored: the disk failed, or the writer's queue was full."""
        return self.sink.stats.diskDropped + self.queueDropped

    @property
    def diskErrors(self) -> int:
        """Failed writes."""
        return self.sink.stats.diskErrors

    @property
    def reconnects(self) -> int:
        """Connections made after the first one."""
        return max(0, self.connects - 1)

    @property
    def connected(self) -> bool:
        """True while a connection to the camera is up."""
        return self.state == "connected"

    def addViewer(self, viewer: Viewer) -> None:
        """Call ``viewer.frameAvailable(frame)`` with each good frame from now on."""
        self._viewers.add(viewer)

    def removeViewer(self, viewer: Viewer) -> None:
        """Stop handing frames to ``viewer``."""
        self._viewers.discard(viewer)

    @property
    def viewers(self) -> int:
        """How many live viewers are attached."""
        return len(self._viewers)

    def fps(self) -> float:
        """Frames per second over the last :attr:`fpsWindow` seconds."""
        now = self._reactor.seconds()
        recent = [t for t in list(self._times) if t > now - self.fpsWindow]
        if len(recent) < 2:
            return 0.0
        return (len(recent) - 1) / max(recent[-1] - recent[0], 1e-6)

    def status(self) -> dict[str, Any]:
        """The camera's state as a JSON-ready dict."""
        now = self._reactor.seconds()
        return {
            "state": self.state,
            "connected": self.connected,
            "simulated": self.camera.simulated,
            "endpoint": repr(self.endpoint),
            "fps": round(self.fps(), 2),
            "last_frame_age": None if self.lastFrameTime is None
            else round(max(0.0, now - self.lastFrameTime), 3),
            "frames": self.frames,
            "bytes": self.bytes,
            "bad_frames": self.badFrames,
            "dropped_frames": self.droppedFrames,
            "disk_dropped_frames": self.sink.stats.diskDropped,
            "queue_dropped_frames": self.queueDropped,
            "written_frames": self.sink.stats.written,
            "written_bytes": self.sink.stats.writtenBytes,
            "disk_errors": self.diskErrors,
            "connects": self.connects,
            "reconnects": self.reconnects,
            "connect_failures": self.connectFailures,
            "last_reason": self.lastReason,
            "viewers": self.viewers,
            "mode": self.camera.mode,
            "motion": self._motion is not None,
            "motion_active": None if self.motionStats is None else self.motionStats.active,
            "motion_score": None if self.motionStats is None else round(self.motionStats.score, 4),
            "motion_analysed": None if self.motionStats is None else self.motionStats.analysed,
            "motion_skipped": None if self.motionStats is None else self.motionStats.skipped,
            "motion_events": None if self.motionStats is None else self.motionStats.events,
            "preroll_frames": len(self._ring),
        }

    def startService(self) -> None:
        """Start connecting."""
        Service.startService(self)
        self.state = "connecting"
        factory = self._factoryMaker(
            self.camera.pin, self._frameReceived,
            self.camera.maxFrameBytes, self.camera.frameTimeout, self._reactor,
        )
        self._client = _StateChangesOnly(
            WatchedEndpoint(self.endpoint, self._connectFailed), factory,
            retryPolicy=self._retryDelay, clock=self._reactor,
            prepareConnection=self._connectionMade,
        )
        self._client.startService()

    def stopService(self) -> Deferred[None] | None:
        """Disconnect; the Deferred fires once disconnected (the disk writer then closes the store)."""
        Service.stopService(self)
        if self._client is None:
            return None
        stopping = self._client.stopService()

        def stopped(result: None | Failure) -> None | Failure:
            self.state = "stopped"
            return result

        return stopping.addBoth(stopped)

    def _retryDelay(self, attempt: int) -> float:
        # Sessions that ended before any frame count as failed attempts too,
        # so a camera that accepts and hangs up at once is backed off as well.
        return self._policy(attempt + self._fruitlessSessions)

    def _connectionMade(self, protocol: IProtocol) -> None:
        self.state = "connected"
        self.connects += 1
        self._sessionStart = self.frames
        self._sessionBad = 0
        if not self._fruitlessSessions:
            log.info("camera {name}: connected to {endpoint}",
                     name=self.name, endpoint=self.endpoint)
        self._event("connect", endpoint=repr(self.endpoint))
        cast("TCPCamClientProtocol", protocol).finished.addBoth(self._connectionEnded)

    def _connectionEnded(self, result: FetchSummary | Failure) -> None:
        frames = self.frames - self._sessionStart
        if not self.running:
            reason = "the recorder stopped"
        elif isinstance(result, Failure):
            reason = result.getErrorMessage() or result.type.__name__
        else:
            reason = "the camera closed the stream"
        # A camera that keeps hanging up before any frame (a wrong PIN, a full
        # server) is one state change, logged once, not one per retry.
        repeated = frames == 0 and self._fruitlessSessions > 0 and reason == self.lastReason
        self._fruitlessSessions = self._fruitlessSessions + 1 if frames == 0 else 0
        self.lastReason = reason
        if self.running:
            self.state = "disconnected"
            if not repeated:
                log.warn("camera {name}: disconnected after {frames} frames: {reason};"
                         " reconnecting with backoff", name=self.name, frames=frames, reason=reason)
        else:
            log.info("camera {name}: stopped after {frames} frames", name=self.name, frames=frames)
        self._event("disconnect", reason=reason, frames=frames, bad_frames=self._sessionBad)

    def _connectFailed(self, failure: Failure) -> None:
        self.connectFailures += 1
        reason = failure.getErrorMessage() or failure.type.__name__
        if self.state != "unreachable" or reason != self.lastReason:
            log.warn("camera {name}: cannot connect to {endpoint}: {reason};"
                     " retrying with backoff (at most {cap:g} s apart)",
                     name=self.name, endpoint=self.endpoint, reason=reason,
                     cap=self._backoffMax)
            self._event("connect_failed", reason=reason)
        self.state = "unreachable"
        self.lastReason = reason

    def _frameReceived(self, view: memoryview) -> None:
        frame = bytes(view)
        problem = jpegProblem(frame)
        if problem is not None:
            self.badFrames += 1
            self._sessionBad += 1
            if self._sessionBad == 1:
                log.warn("camera {name}: bad frame of {size} bytes ({problem}): not stored;"
                         " more on this connection are only counted and put in events.jsonl",
                         name=self.name, size=len(view), problem=problem)
            self._event("bad_frame", reason=problem, bytes=len(view))
            return
        if self.frames == self._sessionStart and self._fruitlessSessions:
            log.info("camera {name}: connected to {endpoint}, frames coming in after {count}"
                     " connections that ended before any", name=self.name,
                     endpoint=self.endpoint, count=self._fruitlessSessions)
        now = self._reactor.seconds()
        seq = self.frames
        self.frames += 1
        self.bytes += len(frame)
        self.latest = frame
        self.lastFrameTime = now
        self._times.append(now)
        if self._motion is not None:
            self._motion.submit(self.camera.name, frame, int(round(now * 1000)))
        if self.camera.mode == "motion" and self.motionEvent is None:
            self._keep(frame, now, seq)
        else:
            self._store(frame, now, seq)
        for viewer in list(self._viewers):
            viewer.frameAvailable(frame)

    def _store(self, frame: bytes, now: float, seq: int) -> None:
        if self.sink.write(frame, now, seq):
            if self._dropRun:
                log.warn("camera {name}: the disk writer caught up; {count} frames were dropped while it was behind",
                         name=self.name, count=self._dropRun)
                self._event("queue_ok", dropped_frames=self._dropRun)
                self._dropRun = 0
            return
        self.queueDropped += 1
        self._dropRun += 1
        if self._dropRun == 1:
            writer = self.sink.writer
            log.warn("camera {name}: the disk writer is behind (its queue holds {items} items, {mb:.1f} MB):"
                     " dropping frames until it catches up", name=self.name, items=writer.queuedItems,
                     mb=writer.queuedBytes / 1e6)

    def _keep(self, frame: bytes, now: float, seq: int) -> None:
        """Mode motion, no event: hold the frame in the pre-roll ring (bounded in time and bytes)."""
        ring = self._ring
        ring.append((now, frame, seq))
        self._ringBytes += len(frame)
        oldest = now - self.camera.preRoll - RING_SLACK_SECONDS
        while ring and (ring[0][0] < oldest or self._ringBytes > self.ringBytes):
            self._ringBytes -= len(ring.popleft()[1])

    def _motionReport(self, kind: str, event: MotionEvent) -> None:
        self._reportMotion(kind, event)
        if self.onMotion is not None:
            self.onMotion(kind, event)

    def _reportMotion(self, kind: str, event: MotionEvent) -> None:
        if kind == "start":
            self.motionEvent = event
            log.info("camera {name}: motion (score {score:.3f})", name=self.name, score=event.peakScore)
            if self._ring:
                first = event.startMs / 1000.0 - self.camera.preRoll
                for when, frame, seq in self._ring:
                    if when >= first:
                        self._store(frame, when, seq)
                self._ring.clear()
                self._ringBytes = 0
            self.sink.call(lambda store: self.saveEvent(store, event))
        elif kind == "end":
            if self.motionEvent is event:
                self.motionEvent = None
            log.info("camera {name}: motion ended after {seconds:.1f} s (peak score {score:.3f})",
                     name=self.name, seconds=(event.lastMotionMs - event.startMs) / 1000.0, score=event.peakScore)
            self.sink.call(lambda store: self.saveEvent(store, event))

    def saveEvent(self, store: Store, event: MotionEvent) -> None:
        """In the disk writer: insert or update the event; at its end, flag its segments as motion."""
        if store.format != "segments":
            if event.endMs is not None:
                self.sink.events.appendAt(event.endMs / 1000.0, "motion", start=event.startMs / 1000.0,
                                          end=event.endMs / 1000.0, peak_score=round(event.peakScore, 4),
                                          region=list(event.region) if event.region else None)
            return
        from tcpcam.record.segments import SegmentStore

        segments = cast(SegmentStore, store)
        row = event.columns()
        row["id"] = segments.saveEvent(row)
        if event.endMs is not None:
            segments.markMotion(event.startMs - event.preRollMs, event.endMs + event.postRollMs)

    def _diskStateChanged(self, failing: bool, reason: str, dropped: int) -> None:
        if failing:
            log.error("camera {name}: cannot write frames under {path}: {error};"
                      " dropping frames and retrying every {retry:g} s",
                      name=self.name, path=self.sink.directory, error=reason,
                      retry=self.sink.writer.diskRetrySeconds)
            self._event("disk_error", reason=reason)
        else:
            log.info("camera {name}: writing frames again ({dropped} dropped so far)",
                     name=self.name, dropped=dropped)
            self._event("disk_ok", dropped_frames=dropped)

    def _eventLogStateChanged(self, failing: bool, reason: str) -> None:
        if failing:
            log.error("camera {name}: cannot write {path}: {error}",
                      name=self.name, path=self.sink.events.path, error=reason)
        else:
            log.info("camera {name}: writing {path} again", name=self.name, path=self.sink.events.path)

    def _event(self, event: str, **fields: object) -> None:
        if self.sink is not None:
            self.sink.event(event, **fields)
