"""Record one camera: reconnect forever, check every frame, hand it to the disk writer, log the gaps.

The camera never writes to the disk itself: frames, ``events.jsonl`` lines
and motion events go to its :class:`~tcpcam.record.writer.CameraSink`, whose
thread does the writing. When the writer's queue is full, frames are dropped,
counted (``queue_dropped_frames``) and logged once per run of drops.

A camera with a device key is recorded over protocol 2 when it speaks it
(:mod:`tcpcam.record.camera2`): its configured settings are applied on every
connect, each frame's sequence number and capture time go to the index,
frames lost on the way are counted from the sequence numbers
(:mod:`tcpcam.record.gaps`), and its health figures are kept for
``/status.json`` and ``/metrics`` (:mod:`tcpcam.record.health`).
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
from tcpcam.core.client_role2 import ProtocolMemory
from tcpcam.core.errors import LegacyServer, ServerClosed, WrongKey
from tcpcam.core.text import plural
from tcpcam.record.camera2 import CameraLinkFactory
from tcpcam.record.endpoints import WatchedEndpoint
from tcpcam.record.gaps import FrameLosses, LossRun
from tcpcam.record.health import cleanHealth, printable

if TYPE_CHECKING:
    from tcpcam.client import FetchSummary, TCPCamClientFactory
    from tcpcam.client.camera import Camera2Protocol, CameraFrame
    from tcpcam.record.config import CameraConfig
    from tcpcam.record.motion import MotionEvent, MotionStats, MotionWorker
    from tcpcam.record.writer import CameraSink, Store

log = Logger(namespace="tcpcam.record")

#: Seconds of frames kept beyond the pre-roll (mode motion), for the motion worker's delay.
RING_SLACK_SECONDS = 2.0
#: Bytes of frames the pre-roll ring holds at most (mode motion).
RING_BYTES = 32 * 1024 * 1024
#: Reasons a protocol 2 camera gives for refusing the key (a throttle follows wrong keys): one state in the log.
KEY_REASONS = ("wrong-key", "throttled")
#: Device facts of the hello kept (each cut to :data:`~tcpcam.record.health.MAX_TEXT_CHARS` characters).
DEVICE_FACTS = ("name", "firmware", "sensor")
#: Characters of a disconnection's reason kept (a protocol 2 camera gives its own words).
MAX_REASON_CHARS = 300


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
                 factoryMaker: FactoryMaker = defaultFactoryMaker, motion: MotionWorker | None = None,
                 memory: ProtocolMemory | None = None) -> None:
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
        self._ring: deque[tuple[float, bytes, int, tuple[int | None, int | None]]] = deque()
        self._ringBytes = 0
        if self._motion is not None:
            self.motionStats = self._motion.addCamera(camera.name, camera.motionThreshold, camera.motionMask,
                                                      camera.preRoll, camera.postRoll, self._motionReport)
        self._client: _StateChangesOnly | None = None
        #: Called as ``onMotion(kind, event)`` with each motion report (``start``, ``peak``, ``end``).
        self.onMotion: Callable[[str, MotionEvent], object] | None = None
        #: Which endpoints speak only the legacy protocol (shared by the recorder's cameras).
        self.memory = ProtocolMemory() if memory is None else memory
        #: The protocol of the connection up or last up: 1 (legacy), 2, or None before any.
        self.protocol: int | None = None
        #: What the camera says (protocol 2): its device facts, settings and last health figures.
        self.device: dict[str, Any] = {}
        self.cameraSettings: dict[str, Any] = {}
        self.health: dict[str, Any] = {}
        self.healthTime: float | None = None
        #: Why the camera refused the configured settings on the last connect, or None.
        self.settingsError: str | None = None
        #: Frames lost on the way, counted from the sequence numbers (protocol 2).
        self.losses = FrameLosses()
        self._connecting = 1
        self._lastReasonKind: str | None = None
        self._reconnectAtOnce = False
        self._quietConnect = False
        self._legacySaid = False
        self._legacyConfirmed = False
        self._protocol2Said = False
        self._settingsSaid: tuple[str, str | None] | None = None

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
    def lostFrames(self) -> int:
        """Frames the camera captured and this recorder never received (protocol 2: from sequence numbers)."""
        return self.losses.total

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
            "protocol": self.protocol,
            "lost_frames": self.losses.total,
            "losing_frames": self.losses.run is not None,
            "device": dict(self.device),
            "camera_settings": dict(self.cameraSettings),
            "settings_error": self.settingsError,
            "health": dict(self.health),
            "health_age": None if self.healthTime is None else round(max(0.0, now - self.healthTime), 3),
        }

    def startService(self) -> None:
        """Start connecting."""
        Service.startService(self)
        self.state = "connecting"
        factory = self._factoryMaker(
            self.camera.pin, self._frameReceived,
            self.camera.maxFrameBytes, self.camera.frameTimeout, self._reactor,
        )
        if self.camera.key is not None:
            factory = CameraLinkFactory(
                self.camera.key, self.camera.endpoint, self.memory, self._reactor, factory, self,
                self.camera.settings, self.camera.maxFrameBytes, self.camera.frameTimeout)
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
        if self._reconnectAtOnce:
            # The camera turned out to speak only the legacy protocol: ask it that way now.
            self._reconnectAtOnce = False
            return 0.0
        # Sessions that ended before any frame count as failed attempts too,
        # so a camera that accepts and hangs up at once is backed off as well.
        return self._policy(attempt + self._fruitlessSessions)

    def _connectionMade(self, protocol: IProtocol) -> None:
        self.state = "connected"
        self.connects += 1
        self._sessionStart = self.frames
        self._sessionBad = 0
        self.losses.connected()
        if self._connecting == 1:
            self.protocol = 1
        if not self._fruitlessSessions and not self._quietConnect:
            log.info("camera {name}: connected to {endpoint}",
                     name=self.name, endpoint=self.endpointText)
        self._quietConnect = False
        self._event("connect", endpoint=self.endpointText)
        cast(Any, protocol).finished.addBoth(self._connectionEnded)

    def _connectionEnded(self, result: FetchSummary | None | Failure) -> None:
        frames = self.frames - self._sessionStart
        run = self.losses.close()
        if run is not None:
            self._lossRunEnded(run)
        if not self.running:
            reason = "the recorder stopped"
        elif isinstance(result, Failure):
            reason = printable(result.getErrorMessage() or result.type.__name__, MAX_REASON_CHARS)
        else:
            reason = "the camera closed the stream"
        kind = reason
        if isinstance(result, Failure):
            if result.check(WrongKey) or (result.check(ServerClosed) and result.value.reason in KEY_REASONS):
                kind = "key"
            elif result.check(ServerClosed):
                kind = "closed: " + result.value.reason
        if self.running and isinstance(result, Failure) and result.check(LegacyServer):
            # Not a fault: legacyFound() said it once, and the legacy request follows at once.
            self.state = "disconnected"
            self.lastReason = reason
            self._event("disconnect", reason=reason, frames=frames, bad_frames=self._sessionBad)
            return
        if self._connecting == 1 and self.camera.key is not None:
            self._checkLegacy(frames)
        # A camera that keeps hanging up before any frame (a wrong PIN or key,
        # a full server) is one state change, logged once, not one per retry.
        repeated = frames == 0 and self._fruitlessSessions > 0 and kind == self._lastReasonKind
        self._fruitlessSessions = self._fruitlessSessions + 1 if frames == 0 else 0
        self.lastReason = reason
        self._lastReasonKind = kind
        if self.running:
            self.state = "disconnected"
            if not repeated:
                hint = " (check the camera's key or key_file)" if kind == "key" else ""
                log.warn("camera {name}: disconnected after {count}: {reason}{hint};"
                         " reconnecting with backoff", name=self.name, count=plural(frames, "frame"),
                         frames=frames, reason=reason, hint=hint)
        else:
            log.info("camera {name}: stopped after {count}", name=self.name, count=plural(frames, "frame"),
                     frames=frames)
        self._event("disconnect", reason=reason, frames=frames, bad_frames=self._sessionBad)

    # What the protocol 2 connections tell (see tcpcam.record.camera2.Link2Listener).

    def connecting(self, version: int) -> None:
        """The next connection opens with protocol ``version``."""
        self._connecting = version

    def sessionReady(self, connection: Camera2Protocol) -> None:
        """The camera proved the key: keep what it says of itself."""
        self.protocol = 2
        self._legacyConfirmed = False
        device = connection.hello.get("device")
        device = device if isinstance(device, dict) else {}
        self.device = {fact: printable(str(device[fact])) for fact in DEVICE_FACTS if fact in device}
        self.cameraSettings = cleanHealth(connection.settings)
        if connection.health:
            self.healthReceived(connection.health)
        if not self._protocol2Said:
            self._protocol2Said = True
            log.info("camera {name}: speaks protocol 2 ({device}); frames carry their sequence numbers and"
                     " capture times", name=self.name,
                     device=", ".join("%s %s" % (fact, value) for fact, value in self.device.items()) or "no facts")
        self._event("protocol", protocol=2, **self.device)

    def settingsOutcome(self, settings: dict[str, Any], error: str | None) -> None:
        """The camera applied the configured settings, or refused them (logged when the outcome changes)."""
        self.settingsError = error
        shown = ", ".join("%s=%s" % item for item in sorted(settings.items()))
        outcome = (shown, error)
        if outcome == self._settingsSaid:
            return
        self._settingsSaid = outcome
        if error is None:
            log.info("camera {name}: settings applied: {settings}", name=self.name, settings=shown)
            self._event("settings", applied=settings)
        else:
            log.warn("camera {name}: settings {settings} not applied: {error}; recording with the camera's own"
                     " settings", name=self.name, settings=shown, error=error)
            self._event("settings_refused", settings=settings, reason=error)

    def frame2Received(self, frame: CameraFrame) -> None:
        """A protocol 2 frame: count the frames lost before it, then take it with its facts."""
        now = self._reactor.seconds()
        lost, ended, started, report = self.losses.frame(frame.seq, frame.missed, now)
        if ended is not None:
            self._lossRunEnded(ended)
        if started is not None:
            log.warn("camera {name}: {count} lost before frame {seq} (the camera skipped them: the network"
                     " or this recorder was too slow); more losses are counted until none for {quiet:g} s",
                     name=self.name, count=plural(lost, "frame"), lost=lost, seq=frame.seq,
                     quiet=self.losses.quietSeconds)
        if report is not None:
            self._reportLosses(report, now, ongoing=True)
        self._frameReceived(frame.payload, frame.seq, frame.capture_ms)

    def healthReceived(self, facts: dict[str, Any]) -> None:
        """Keep the camera's last health figures."""
        self.health = cleanHealth(facts)
        self.healthTime = self._reactor.seconds()

    def settingsReceived(self, settings: dict[str, Any]) -> None:
        """The camera's settings changed (a client changed them)."""
        self.cameraSettings = cleanHealth(settings)

    def closingTold(self, reason: str, text: str) -> None:
        """The camera says why it closes; the reason reaches :meth:`_connectionEnded` with the connection's end."""

    def legacyFound(self) -> None:
        """The camera speaks only the legacy protocol: say it once, and reconnect at once with the legacy request."""
        self._reconnectAtOnce = True
        self._quietConnect = True
        if self.camera.settings:
            self.settingsError = "the camera speaks only the legacy protocol"
        hours = self.memory.recheck_ms / 3600000
        self._event("protocol", protocol=1, recheck_hours=hours)
        if self._legacySaid:
            return
        self._legacySaid = True
        unapplied = ""
        if self.camera.settings:
            unapplied = "; its settings (%s) need protocol 2 and are not applied" % ", ".join(
                "%s=%s" % item for item in sorted(self.camera.settings.items()))
        log.info("camera {name}: {endpoint} speaks only the legacy protocol: recording with the legacy request"
                 " and the PIN{unapplied}; protocol 2 is tried there again every {hours:g} h", name=self.name,
                 endpoint=self.endpointText, hours=hours, unapplied=unapplied)

    def _checkLegacy(self, frames: int) -> None:
        """A legacy session of a camera with a key ended: does it confirm that the camera speaks only that?

        A protocol 2 camera that closed the opening for another reason (it was
        rebooting, say) is not a legacy camera: if the legacy request brings
        no frame either before any legacy session did, protocol 2 is tried
        again at the next connect rather than in a day.
        """
        if frames:
            self._legacyConfirmed = True
        elif not self._legacyConfirmed:
            self.memory.found_protocol2(self.camera.endpoint)

    def _lossRunEnded(self, run: LossRun) -> None:
        now = self._reactor.seconds()
        if run.unreported:
            self._reportLosses(run, now, ongoing=False)
        log.info("camera {name}: {count} lost in {seconds:.1f} s ({gaps}, frames {first} to {last})",
                 name=self.name, count=plural(run.frames, "frame"), frames=run.frames,
                 seconds=run.last - run.start, gaps=plural(run.gaps, "gap"),
                 first=run.firstSeq, last=run.lastSeq)

    def _reportLosses(self, run: LossRun, now: float, ongoing: bool) -> None:
        self._event("frames_lost", frames=run.unreported, run_frames=run.frames, first_seq=run.firstSeq,
                    last_seq=run.lastSeq, since=round(run.start, 3), ongoing=ongoing)
        self.losses.reported(run, now)

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

    def _frameReceived(self, view: memoryview, cameraSeq: int | None = None, captureMs: int | None = None) -> None:
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
        if self._motion is not None:
            self._motion.submit(self.camera.name, frame, int(round(now * 1000)))
        facts = (cameraSeq, captureMs)
        if self.camera.mode == "motion" and self.motionEvent is None:
            self._keep(frame, now, seq, facts)
        else:
            self._store(frame, now, seq, facts)
        for viewer in list(self._viewers):
            viewer.frameAvailable(frame)

    def _store(self, frame: bytes, now: float, seq: int, facts: tuple[int | None, int | None] = (None, None)) -> None:
        if self.sink.write(frame, now, seq, *facts):
            if self._dropRun:
                log.warn("camera {name}: the disk writer caught up; {dropped} dropped while it was behind",
                         name=self.name, dropped=plural(self._dropRun, "frame"))
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

    def _keep(self, frame: bytes, now: float, seq: int, facts: tuple[int | None, int | None]) -> None:
        """Mode motion, no event: hold the frame in the pre-roll ring (bounded in time and bytes)."""
        ring = self._ring
        ring.append((now, frame, seq, facts))
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
                for when, frame, seq, facts in self._ring:
                    if when >= first:
                        self._store(frame, when, seq, facts)
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
