"""Record one camera: reconnect forever, check and store every frame, log the gaps."""

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
from tcpcam.core.text import plural
from tcpcam.record.endpoints import WatchedEndpoint

if TYPE_CHECKING:
    from tcpcam.client import FetchSummary, TCPCamClientFactory, TCPCamClientProtocol
    from tcpcam.record.config import CameraConfig
    from tcpcam.record.eventlog import EventLog
    from tcpcam.record.storage import JpegTreeStore, MjpegHourlyStore

log = Logger(namespace="tcpcam.record")


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
    every frame is checked as a JPEG, stored, and handed to the live viewers.
    Connects, disconnects (with their reason), bad frames and disk errors go
    to the camera's event log, and each state change is logged once.
    """

    #: Seconds between write attempts while the disk fails; frames in between are dropped.
    diskRetrySeconds = 5.0
    #: Seconds of frame times that the frame rate is computed over.
    fpsWindow = 5.0

    def __init__(self, camera: CameraConfig, endpoint: IStreamClientEndpoint,
                 store: JpegTreeStore | MjpegHourlyStore, events: EventLog, reactor: IReactorTime,
                 backoffInitial: float = 1.0, backoffMax: float = 60.0,
                 factoryMaker: FactoryMaker = defaultFactoryMaker) -> None:
        self.camera = camera
        self.setName(camera.name)
        self.endpoint = endpoint
        self.store = store
        self.events = events
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
        self.droppedFrames = 0
        self.diskErrors = 0
        self.latest: bytes | None = None
        self.lastFrameTime: float | None = None
        self.lastReason: str | None = None
        self._times: deque[float] = deque(maxlen=256)
        self._viewers: set[Viewer] = set()
        self._fruitlessSessions = 0
        self._sessionStart = 0
        self._sessionBad = 0
        self._diskFailing = False
        self._nextDiskAttempt = 0.0
        self._eventsFailing = False
        self._client: _StateChangesOnly | None = None

    @property
    def reconnects(self) -> int:
        """Connections made after the first one."""
        return max(0, self.connects - 1)

    @property
    def endpointText(self) -> str:
        """The camera's endpoint for logs and status: the string the user gave.

        The built-in simulated camera has none; its endpoint says where it listens.
        """
        if self.camera.simulated:
            return repr(self.endpoint)
        return self.camera.endpoint

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
            "endpoint": self.endpointText,
            "fps": round(self.fps(), 2),
            "last_frame_age": None if self.lastFrameTime is None
            else round(max(0.0, now - self.lastFrameTime), 3),
            "frames": self.frames,
            "bytes": self.bytes,
            "bad_frames": self.badFrames,
            "dropped_frames": self.droppedFrames,
            "disk_errors": self.diskErrors,
            "connects": self.connects,
            "reconnects": self.reconnects,
            "connect_failures": self.connectFailures,
            "last_reason": self.lastReason,
            "viewers": self.viewers,
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
        """Disconnect, then close the store; the Deferred fires when both are done."""
        Service.stopService(self)
        if self._client is None:
            self.store.close()
            return None
        stopping = self._client.stopService()

        def closeStore(result: None | Failure) -> None | Failure:
            self.state = "stopped"
            try:
                self.store.close()
            except OSError as error:
                log.error("camera {name}: cannot close its file: {error}",
                          name=self.name, error=error)
            return result

        return stopping.addBoth(closeStore)

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
                     name=self.name, endpoint=self.endpointText)
        self._event("connect", endpoint=self.endpointText)
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
                log.warn("camera {name}: disconnected after {count}: {reason};"
                         " reconnecting with backoff", name=self.name, count=plural(frames, "frame"),
                         frames=frames, reason=reason)
        else:
            log.info("camera {name}: stopped after {count}", name=self.name, count=plural(frames, "frame"),
                     frames=frames)
        self._event("disconnect", reason=reason, frames=frames, bad_frames=self._sessionBad)

    def _connectFailed(self, failure: Failure) -> None:
        self.connectFailures += 1
        reason = failure.getErrorMessage() or failure.type.__name__
        if self.state != "unreachable" or reason != self.lastReason:
            log.warn("camera {name}: cannot connect to {endpoint}: {reason};"
                     " retrying with backoff (at most {cap:g} s apart)",
                     name=self.name, endpoint=self.endpointText, reason=reason,
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
                log.warn("camera {name}: bad frame of {size} ({problem}): not stored;"
                         " more on this connection are only counted and put in events.jsonl",
                         name=self.name, size=plural(len(view), "byte"), problem=problem)
            self._event("bad_frame", reason=problem, bytes=len(view))
            return
        if self.frames == self._sessionStart and self._fruitlessSessions:
            log.info("camera {name}: connected to {endpoint}, frames coming in after {count}"
                     " connections that ended before any", name=self.name,
                     endpoint=self.endpointText, count=self._fruitlessSessions)
        now = self._reactor.seconds()
        seq = self.frames
        self.frames += 1
        self.bytes += len(frame)
        self.latest = frame
        self.lastFrameTime = now
        self._times.append(now)
        self._store(frame, now, seq)
        for viewer in list(self._viewers):
            viewer.frameAvailable(frame)

    def _store(self, frame: bytes, now: float, seq: int) -> None:
        if self._diskFailing and now < self._nextDiskAttempt:
            self.droppedFrames += 1
            return
        try:
            self.store.write(frame, now, seq)
        except OSError as error:
            self.droppedFrames += 1
            self.diskErrors += 1
            self._nextDiskAttempt = now + self.diskRetrySeconds
            if not self._diskFailing:
                self._diskFailing = True
                log.error("camera {name}: cannot write frames under {path}: {error};"
                          " dropping frames and retrying every {retry:g} s",
                          name=self.name, path=self.store.directory, error=_describe(error),
                          retry=self.diskRetrySeconds)
                self._event("disk_error", reason=_describe(error))
            return
        if self._diskFailing:
            self._diskFailing = False
            log.info("camera {name}: writing frames again ({dropped} dropped so far)",
                     name=self.name, dropped=self.droppedFrames)
            self._event("disk_ok", dropped_frames=self.droppedFrames)

    def _event(self, event: str, **fields: object) -> None:
        try:
            self.events.append(event, **fields)
        except OSError as error:
            if not self._eventsFailing:
                self._eventsFailing = True
                log.error("camera {name}: cannot write {path}: {error}",
                          name=self.name, path=self.events.path, error=_describe(error))
            return
        if self._eventsFailing:
            self._eventsFailing = False
            log.info("camera {name}: writing {path} again", name=self.name, path=self.events.path)


def _describe(error: OSError) -> str:
    if error.strerror:
        return "%s (%s)" % (error.strerror, error.filename) if error.filename else error.strerror
    return str(error)
