"""The fleet member: a recorder whose cameras come from the fleet's registry and leases.

:class:`FleetService` wraps a :class:`~tcpcam.record.service.RecorderService`
started with no camera. Its loop (on Twisted's asyncio reactor, every
:attr:`FleetService.tickSeconds`):

1. stops recording, at once, every camera whose lease deadline has come
   (:mod:`tcpcam.fleet.leases`): renewals failed for too long;
2. renews the leases that are due, each in its own task, so a NATS that
   does not answer never delays step 1;
3. when connected, computes the balancer's plan (:mod:`tcpcam.fleet.balancer`)
   from the registry, the leases and the live recorders, takes the free
   cameras that fall to it (lease first, then the camera starts) and lets
   go of the extra ones (the camera stops first, then the lease is deleted,
   so the next holder starts only after this one stopped).

A presence key (the recorder's cameras and their state, for the web pages of
other members) is written every renewal period. Finished segments go to the
spool and the uploader (:mod:`tcpcam.fleet.spool`, :mod:`tcpcam.fleet.uploader`);
events to the stream (:mod:`tcpcam.fleet.events`). ``recording=False`` makes a
member with no cameras (``tcpcam web``): it only watches and serves the pages.
"""

from __future__ import annotations

import asyncio
import dataclasses
import json
import os
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, cast

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred
from twisted.logger import Logger

from tcpcam.core.text import plural
from tcpcam.fleet.aio import asDeferred, wait
from tcpcam.fleet.balancer import plan
from tcpcam.fleet.events import EventPublisher
from tcpcam.fleet.leases import Lease, LeaseKeeper, LeaseTerms, parseLease
from tcpcam.fleet.live import LiveResponder
from tcpcam.fleet.mirror import KvMirror
from tcpcam.fleet.natslink import (
    LEASE_BUCKET,
    LEASE_VALUE_BYTES,
    PRESENCE_BUCKET,
    PRESENCE_VALUE_BYTES,
    REGISTRY_BUCKET,
    REGISTRY_VALUE_BYTES,
    NatsLink,
    describe,
)
from tcpcam.fleet.registry import CameraEntry
from tcpcam.record.config import ConfigError
from tcpcam.record.segments import SPAN_GAP_SECONDS

if TYPE_CHECKING:
    from tcpcam.fleet.config import FleetConfig
    from tcpcam.fleet.spool import Spool
    from tcpcam.fleet.uploader import Uploader
    from tcpcam.record.camera import CameraRecorder
    from tcpcam.record.config import CameraConfig, RecorderConfig
    from tcpcam.record.motion import MotionEvent
    from tcpcam.record.service import RecorderService
    from tcpcam.record.web import WebService
    from tcpcam.record.writer import Store

log = Logger(namespace="tcpcam.fleet")

#: Seconds beyond the lease time after which an unrenewed lease seen in the watch counts as expired.
EXPIRY_SLACK = 0.3
#: Cameras one recorder takes per tick at most (spreads the connects of a big move).
TAKES_PER_TICK = 25
#: Seconds a camera whose config cannot be used (its PIN reference fails) is left alone.
UNUSABLE_SECONDS = 30.0
#: Seconds a stopping member waits for the spool to empty (while the object store answers).
DRAIN_SECONDS = 10.0
#: What a member's presence key tells the pages of the others of each camera it records (protocol 2's health too).
PRESENCE_FIELDS = ("state", "connected", "fps", "last_frame_age", "frames", "bytes", "bad_frames", "reconnects",
                   "viewers", "protocol", "lost_frames", "health")


class GapWatch:
    """A viewer of a held camera that reports frames stopping for longer than ``gapSeconds`` as a ``gap`` event."""

    def __init__(self, report: Callable[[float, float], object], gapSeconds: float = SPAN_GAP_SECONDS,
                 clock: Callable[[], float] = time.time) -> None:
        self.report = report
        self.gapSeconds = gapSeconds
        self.clock = clock
        self.last: float | None = None

    def frameAvailable(self, frame: bytes) -> None:
        """One good frame came in."""
        now = self.clock()
        if self.last is not None and now - self.last > self.gapSeconds:
            self.report(self.last, now)
        self.last = now


class FleetService(MultiService):
    """One member of the fleet (see the module docstring)."""

    def __init__(self, fleet: FleetConfig, config: RecorderConfig, reactor: Any, defaults: dict[str, Any],
                 recording: bool = True, clock: Callable[[], float] = time.monotonic) -> None:
        MultiService.__init__(self)
        from tcpcam.record.service import RecorderService

        self.fleet = fleet
        self.config = config
        self.defaults = defaults
        self.recorderId = fleet.recorderId
        self._reactor = reactor
        self.clock = clock
        self.started = time.time()
        self.recording = recording
        self.recorder: RecorderService | None = None
        if recording:
            self.recorder = RecorderService(dataclasses.replace(config, cameras=[], web=None), reactor)
            self.recorder.onStore = self._storeMade
            self.recorder.setServiceParent(self)
        self.link = NatsLink(fleet.urls, self.recorderId, self._connectionChanged)
        self.terms = LeaseTerms(fleet.leaseSeconds)
        self.tickSeconds = min(0.25, self.terms.renewEvery / 4)
        self.leases: dict[str, Lease] = {}
        self._busy: set[str] = set()
        self._heldEntries: dict[str, bytes] = {}
        self._unusable: dict[str, tuple[float, bytes]] = {}
        self.keeper: LeaseKeeper | None = None
        self.registry: KvMirror | None = None
        self.leaseTable: KvMirror | None = None
        self.presence: KvMirror | None = None
        self.events = EventPublisher(self.link, self.recorderId)
        self.live = LiveResponder(self.link)
        self.spool: Spool | None = None
        self.uploader: Uploader | None = None
        self.s3client: Any = None
        self._footageClient: Any = None
        self.moves = 0
        self.expired = 0
        self.released = 0
        self.taken = 0
        self._tasks: list[asyncio.Future[Any]] = []
        self._running = False
        self._spoolFull = False
        self._joinedAt = 0.0
        self._stoppedLoop: Deferred[None] | None = None
        self._setUpStorage()
        from tcpcam.fleet.view import FleetView

        self.view = FleetView(self)
        self.web: WebService | None = None
        if config.web is not None:
            from tcpcam.record.web import WebService

            self.web = WebService(config.web, cast("RecorderService", self.view), reactor)
            self.web.setServiceParent(self)

    # -- storage ---------------------------------------------------------------

    def _setUpStorage(self) -> None:
        s3 = self.fleet.s3
        if s3 is None:
            return
        from tcpcam.fleet.uploader import makeS3Client

        self.s3client = makeS3Client(s3)
        self._footageClient = makeS3Client(s3)  # the pages' reads never wait behind the uploads
        if self.recording:
            from tcpcam.fleet.spool import Spool
            from tcpcam.fleet.uploader import Uploader

            self.spool = Spool(self.fleet.spoolDir, s3.prefix, self.recorderId, self.fleet.spoolBytes)
            self.uploader = Uploader(self.spool, self.s3client, s3.bucket, self._fromThread)

    def openFootage(self) -> Any:
        """A new reader of the fleet's footage: the object store's, or this member's ``--out`` without one."""
        s3 = self.fleet.s3
        if s3 is None:
            from tcpcam.record.footage import Footage

            return Footage(self.config.out)
        from tcpcam.fleet.s3footage import S3Footage

        return S3Footage(self._footageClient, s3.bucket, s3.prefix)

    def _fromThread(self, method: Callable[..., object], format: str, **fields: object) -> None:
        self._reactor.callFromThread(method, format, **fields)

    def _storeMade(self, camera: CameraConfig, store: Store) -> None:
        spool = self.spool
        if spool is None or store.format != "segments":
            return
        from tcpcam.record.segments import SegmentStore

        name = camera.name
        cast(SegmentStore, store).onClosed = lambda segments, segmentId: spool.catchUp(name, segments)

    # -- life cycle --------------------------------------------------------------

    def startService(self) -> None:
        """Start the recorder and the pages, the uploader, then join the fleet."""
        if self.spool is not None:
            waiting = self.spool.open()
            if waiting:
                log.info("fleet: {count} uploads left in the spool by the last run", count=waiting)
        MultiService.startService(self)
        if self.uploader is not None:
            self.uploader.start()
        self._running = True
        self._stoppedLoop = asDeferred(self._run())
        self._stoppedLoop.addErrback(lambda failure: log.failure("fleet: the fleet loop stopped", failure))

    def stopService(self) -> Deferred[None]:
        """Let every camera go (each stops before its lease is deleted), then stop everything."""
        self._running = False
        return asDeferred(self._stop())

    async def _stop(self) -> None:
        for mirror in (self.registry, self.leaseTable, self.presence):
            if mirror is not None:
                mirror.stop()
        await asyncio.gather(*(self._release(name, "stopping") for name in list(self.leases)),
                             return_exceptions=True)
        if self.link.connected:
            await self.events.flush(2.0)
            try:
                if self.presence is not None:
                    await asyncio.wait_for(self.presence.kv.delete(self.recorderId), self.terms.requestSeconds)
            except Exception:
                pass
        self.events.stop()
        for task in self._tasks:
            task.cancel()
        await wait(MultiService.stopService(self))
        if self.uploader is not None and self.spool is not None:
            deadline = time.monotonic() + DRAIN_SECONDS
            while self.spool.waiting and not self.uploader.failing and time.monotonic() < deadline:
                await asyncio.sleep(0.05)
            await asyncio.get_event_loop().run_in_executor(None, self.uploader.stop)
        await self.link.close()

    def _connectionChanged(self, connected: bool) -> None:
        if connected:
            for mirror in (self.registry, self.leaseTable, self.presence):
                if mirror is not None:
                    mirror.restart()

    def handOverLocal(self) -> int:
        """Hand the spool every finished segment left in ``--out`` by an earlier run (before any camera is taken)."""
        from tcpcam.record.footage import Footage
        from tcpcam.record.index import IndexProblem
        from tcpcam.record.segments import SegmentStore

        spool = self.spool
        if spool is None or self.config.format != "segments":
            return 0
        handed = 0
        for name in Footage(self.config.out).cameras():
            store = SegmentStore(os.path.join(self.config.out, name))
            try:
                store.open()
                handed += spool.catchUp(name, store)
            except (OSError, IndexProblem) as error:
                self._fromThread(log.warn, "fleet: camera {name}: cannot hand its local segments over: {error}",
                                 name=name, error=error)
            finally:
                store.close()
        return handed

    async def _run(self) -> None:
        if self.spool is not None:
            handed = await asyncio.get_event_loop().run_in_executor(None, self.handOverLocal)
            if handed:
                log.info("fleet: {count} segments of an earlier run handed to the uploader", count=handed)
        await self.link.connect()
        if not self._running:
            return
        registryKv = await self.link.bucket(REGISTRY_BUCKET, history=1, maxValueBytes=REGISTRY_VALUE_BYTES)
        leaseKv = await self.link.bucket(LEASE_BUCKET, ttl=self.fleet.leaseSeconds, maxValueBytes=LEASE_VALUE_BYTES)
        ttl = await self.link.bucketTtl(leaseKv)
        if ttl and abs(ttl - self.terms.ttl) > 0.01:
            log.info("fleet: the fleet's lease time is {ttl:g} s (set when its bucket was made), not {mine:g} s",
                     ttl=ttl, mine=self.terms.ttl)
            self.terms = LeaseTerms(ttl)
            self.tickSeconds = min(0.25, self.terms.renewEvery / 4)
        presenceKv = await self.link.bucket(PRESENCE_BUCKET, ttl=self.terms.ttl, maxValueBytes=PRESENCE_VALUE_BYTES)
        await self.link.eventStream()
        self.keeper = LeaseKeeper(leaseKv, self.recorderId, self.terms, self.clock)
        self.registry = KvMirror(registryKv, self.clock)
        self.leaseTable = KvMirror(leaseKv, self.clock)
        self.presence = KvMirror(presenceKv, self.clock)
        for coroutine in (self.registry.run(), self.leaseTable.run(), self.presence.run(), self.events.run(),
                          self._heartbeat()):
            self._tasks.append(asyncio.ensure_future(coroutine))
        self._joinedAt = self.clock()
        log.info("fleet: {id} joined the fleet at {urls} (lease time {ttl:g} s){recording}", id=self.recorderId,
                 urls=", ".join(self.fleet.urls), ttl=self.terms.ttl,
                 recording="" if self.recording else "; recording nothing, serving the pages")
        while self._running:
            try:
                await self.tick()
            except Exception as error:
                log.error("fleet: a balancing step failed: {error}", error=describe(error))
            await asyncio.sleep(self.tickSeconds)

    # -- the loop ----------------------------------------------------------------

    async def tick(self) -> None:
        """One step of the loop (see the module docstring)."""
        now = self.clock()
        self._watchSpool()
        for name, lease in list(self.leases.items()):
            if not lease.valid(now):
                self.expired += 1
                log.warn("fleet: camera {name}: its lease could not be renewed in time; stopped recording it",
                         name=name)
                self._drop(name, "lease_lost")
        if self.keeper is None:
            return
        for name, lease in list(self.leases.items()):
            if name not in self._busy and now - lease.sentAt >= self.terms.renewEvery:
                self._spawn(name, self._renew(name, lease))
        if not (self.recording and self.link.connected and self.registry and self.registry.synced
                and self.leaseTable and self.leaseTable.synced and self.presence and self.presence.synced):
            return
        if now < self._joinedAt + self.terms.renewEvery:
            return  # one heartbeat period first, so recorders started together see each other before taking
        cameras = self.cameraEntries()
        result = plan(self.recorderId, {name: entry.recorder for name, entry in cameras.items()},
                      self.holders(), self.liveRecorders())
        for name in result.release:
            if name in self.leases and name not in self._busy:
                self._spawn(name, self._release(name, "balance"))
        for name, used in list(self._heldEntries.items()):
            entry = cameras.get(name)
            if entry is not None and entry.toJson() != used and name in self.leases and name not in self._busy:
                self._spawn(name, self._release(name, "changed"))  # taken again, with its new settings
        taken = 0
        for name in result.take:
            if taken >= TAKES_PER_TICK:
                break
            unusable = self._unusable.get(name)
            if name in self._busy or name in self.leases or (
                    unusable is not None and unusable[0] > now and unusable[1] == cameras[name].toJson()):
                continue
            taken += 1
            self._spawn(name, self._take(name, cameras[name]))

    def _watchSpool(self) -> None:
        spool = self.spool
        if spool is None:
            return
        behind = bool(spool.behind)
        if behind != self._spoolFull:
            self._spoolFull = behind
            if behind:
                log.warn("fleet: the spool holds its {limit}: finished segments wait in the recording folder"
                         " and follow in order once uploads make room", limit=plural(spool.maxBytes, "byte"))
            else:
                log.info("fleet: the spool has room again")

    def _spawn(self, name: str, coroutine: Any) -> None:
        self._busy.add(name)
        task = asyncio.ensure_future(coroutine)
        task.add_done_callback(lambda _: self._busy.discard(name))

    def cameraEntries(self) -> dict[str, CameraEntry]:
        """The registered cameras (entries that do not parse are left out)."""
        found: dict[str, CameraEntry] = {}
        if self.registry is None:
            return found
        for name, entry in list(self.registry.entries.items()):
            try:
                found[name] = CameraEntry.fromJson(entry.value)
            except ConfigError:
                continue
        return found

    def holders(self) -> dict[str, str]:
        """Camera -> holder of its live lease; a lease of this recorder's name that it does not hold is stale."""
        found = {}
        if self.leaseTable is not None:
            for name, entry in self.leaseTable.fresh(self.terms.ttl + EXPIRY_SLACK).items():
                parsed = parseLease(entry.value)
                if parsed is None:
                    continue
                mine = self.leases.get(name)
                if parsed[0] == self.recorderId and (mine is None or mine.token != parsed[1]):
                    found[name] = "(stale) " + parsed[0]
                else:
                    found[name] = parsed[0]
        for name in self.leases:
            found[name] = self.recorderId
        return found

    def liveRecorders(self) -> set[str]:
        """Recorders whose presence was written in the last half lease time (this one included)."""
        live = {self.recorderId} if self.recording else set()
        if self.presence is not None:
            for name, entry in self.presence.fresh(self.terms.ttl / 2).items():
                try:
                    if json.loads(entry.value).get("recording", True):
                        live.add(name)
                except ValueError:
                    continue
        return live

    async def _take(self, name: str, entry: CameraEntry) -> None:
        assert self.keeper is not None and self.recorder is not None
        try:
            camera = entry.cameraConfig(self.defaults)
        except ConfigError as error:
            log.error("fleet: camera {name} cannot be recorded here: {error}", name=name, error=error)
            self._unusable[name] = (self.clock() + UNUSABLE_SECONDS, entry.toJson())  # until it changes
            return
        lease = await self.keeper.acquire(name)
        if lease is None:
            return
        if not self._running or not lease.valid(self.clock()):
            await self.keeper.release(lease)
            return
        self.leases[name] = lease
        self._heldEntries[name] = entry.toJson()
        if self.leaseTable is not None:
            self.leaseTable.note(name, _leaseBytes(self.recorderId, lease.token), lease.revision)
        recorder = self.recorder.addCamera(camera)
        recorder.sink.onEvent = lambda kind, fields: self.events.publish(name, kind, **_jsonable(fields))
        recorder.onMotion = lambda kind, event: self._motion(name, recorder, kind, event)
        recorder.addViewer(GapWatch(lambda start, end: self.events.publish(
            name, "gap", start=round(start, 3), end=round(end, 3), seconds=round(end - start, 3))))
        self.taken += 1
        self.events.publish(name, "lease_taken", revision=lease.revision)
        log.info("fleet: recording camera {name} (lease revision {revision})", name=name, revision=lease.revision)
        await self.live.serve(name, recorder)

    async def _renew(self, name: str, lease: Lease) -> None:
        assert self.keeper is not None
        result = await self.keeper.renew(lease)
        if result == "lost" and self.leases.get(name) is lease:
            log.warn("fleet: camera {name}: another recorder holds its lease now; stopped recording it", name=name)
            self._drop(name, "lease_lost")

    def _drop(self, name: str, why: str) -> None:
        """Stop recording ``name`` now (its lease is gone or going)."""
        self.leases.pop(name, None)
        self._heldEntries.pop(name, None)
        if self.recorder is not None and name in self.recorder.cameras:
            self.recorder.removeCamera(name)
        asyncio.ensure_future(self.live.stopServing(name))
        self.events.publish(name, why)

    async def _release(self, name: str, why: str) -> None:
        lease = self.leases.pop(name, None)
        self._heldEntries.pop(name, None)
        if lease is None:
            return
        await self.live.stopServing(name)
        if self.recorder is not None and name in self.recorder.cameras:
            await wait(self.recorder.removeCamera(name))
        if self.keeper is not None and lease.valid(self.clock()):
            await self.keeper.release(lease)
        self.released += 1
        if why == "balance":
            self.moves += 1
        self.events.publish(name, "lease_released", reason=why)

    def _motion(self, name: str, recorder: CameraRecorder, kind: str, event: MotionEvent) -> None:
        if kind == "start":
            self.events.publish(name, "motion_start", start=event.startMs / 1000.0, score=round(event.peakScore, 4))
        elif kind == "end":
            self.events.publish(name, "motion_end", start=event.startMs / 1000.0,
                                end=(event.endMs or event.lastMotionMs) / 1000.0, peak_score=round(event.peakScore, 4))
            spool = self.spool
            if spool is not None:
                def hand(store: Store) -> None:
                    row = {key: value for key, value in event.row.items() if key != "thumbnail"}
                    if row.get("id") is not None:
                        spool.addEvent(name, row, event.thumbnail)

                recorder.sink.call(hand)

    async def _heartbeat(self) -> None:
        while self._running:
            if self.presence is not None and self.link.connected:
                body = json.dumps(self.presenceBody()).encode()
                try:
                    revision = await asyncio.wait_for(self.presence.kv.put(self.recorderId, body),
                                                      self.terms.requestSeconds)
                    self.presence.note(self.recorderId, body, revision)
                except Exception:
                    pass
            await asyncio.sleep(self.terms.renewEvery)

    def presenceBody(self) -> dict[str, Any]:
        """This recorder's presence value: its cameras' state, for the pages of the others."""
        cameras = {}
        if self.recorder is not None:
            for name, camera in list(self.recorder.cameras.items()):
                status = camera.status()
                cameras[name] = {key: status[key] for key in PRESENCE_FIELDS}
        return {"recorder": self.recorderId, "recording": self.recording, "started": round(self.started, 3),
                "host": os.uname().nodename, "cameras": cameras,
                "web": self.web.url if self.web is not None else None}


def _leaseBytes(recorder: str, token: str) -> bytes:
    from tcpcam.fleet.leases import leaseValue

    return leaseValue(recorder, token)


def _jsonable(fields: dict[str, object]) -> dict[str, object]:
    return {key: value if isinstance(value, (str, int, float, bool, type(None))) else str(value)
            for key, value in fields.items()}

