"""The whole recorder as one Twisted service, built from a RecorderConfig."""

from __future__ import annotations

import dataclasses
import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.application.service import MultiService
from twisted.internet.defer import Deferred, maybeDeferred
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from tcpcam.core.client_role2 import ProtocolMemory
from tcpcam.core.mac import KEY_BYTES
from tcpcam.record.camera import CameraRecorder, FactoryMaker, defaultFactoryMaker
from tcpcam.record.endpoints import LaterEndpoint
from tcpcam.record.eventlog import EventLog
from tcpcam.record.footage import Footage
from tcpcam.record.motion import MotionWorker
from tcpcam.record.retention import Retention, RetentionPolicy
from tcpcam.record.simulated import SimulatedCamera
from tcpcam.record.storage import makeStore
from tcpcam.record.writer import DiskWriter

if TYPE_CHECKING:
    from tcpcam.record.config import CameraConfig, RecorderConfig
    from tcpcam.record.web import WebService
    from tcpcam.record.writer import Store

log = Logger(namespace="tcpcam.record")


class RecorderService(MultiService):
    """Every camera, the disk writer (with retention) and the live view, started and stopped together.

    ``cameras`` maps each camera's name to its
    :class:`~tcpcam.record.camera.CameraRecorder`, in configuration order.
    The disk writer starts first; stopping stops the cameras, the simulated
    camera and the live view, then lets the writer write what is queued and
    close every store.

    ``memory`` remembers which endpoints speak only the legacy protocol, for
    every camera of the recorder (a new one by default). The built-in
    simulated camera gets a random device key, made here and kept in memory
    only, so the default recorder speaks protocol 2 with it.
    """

    def __init__(self, config: RecorderConfig, reactor: Any, factoryMaker: FactoryMaker = defaultFactoryMaker,
                 memory: ProtocolMemory | None = None) -> None:
        MultiService.__init__(self)
        self.config = config
        self.memory = ProtocolMemory() if memory is None else memory
        self.cameras: dict[str, CameraRecorder] = {}
        self.simulated: SimulatedCamera | None = None
        self.web: WebService | None = None
        self._reactor = reactor
        self.policy = RetentionPolicy(keepDays=config.keepDays, keepMotionDays=config.keepMotionDays,
                                      maxBytes=config.maxBytes, minFreeBytes=config.minFree,
                                      minFreePercent=config.minFreePercent)
        os.makedirs(config.out, exist_ok=True)
        self.writer = DiskWriter(config.out, self.policy, reactor)
        self.motion = MotionWorker(reactor)
        if config.web is not None:
            from tcpcam.record.web import WebService

            self.web = WebService(config.web, self, reactor)
            self.web.setServiceParent(self)
        self._factoryMaker = factoryMaker
        #: Called with each new camera's store before its recorder starts (the fleet's uploader hooks in here).
        self.onStore: Callable[[CameraConfig, Store], object] | None = None
        for camera in config.cameras:
            self.addCamera(camera)

    def addCamera(self, camera: CameraConfig) -> CameraRecorder:
        """Record one more camera (also while running: the fleet adds the cameras it holds a lease on)."""
        config = self.config
        if camera.name in self.cameras:
            raise ValueError("camera %s is recorded already" % camera.name)
        endpoint: IStreamClientEndpoint
        if camera.simulated:
            later = LaterEndpoint("the built-in simulated camera")
            camera = dataclasses.replace(camera, key=os.urandom(KEY_BYTES))
            self.simulated = SimulatedCamera(self._reactor, camera.pin, later, camera.key)
            self.simulated.setServiceParent(self)
            endpoint = later
        else:
            endpoint = clientFromString(self._reactor, camera.endpoint)
        directory = os.path.join(config.out, camera.name)
        store = makeStore(config.format, directory, config.segmentSeconds, config.segmentBytes)
        if self.onStore is not None:
            self.onStore(camera, store)
        sink = self.writer.addCamera(camera.name, store, EventLog(os.path.join(directory, "events.jsonl")))
        recorder = CameraRecorder(
            camera, endpoint, sink, self._reactor,
            backoffInitial=config.backoffInitial, backoffMax=config.backoffMax,
            factoryMaker=self._factoryMaker, motion=self.motion, memory=self.memory,
        )
        self.cameras[camera.name] = recorder
        recorder.setServiceParent(self)
        return recorder

    def removeCamera(self, name: str) -> Deferred[None]:
        """Stop recording one camera: disconnect it, then close its store; fires once both are done."""
        recorder = self.cameras.pop(name)
        stopping = recorder.disownServiceParent()
        ended = self.motion.removeCamera(name)
        if ended is not None:
            recorder.sink.call(functools.partial(recorder.saveEvent, event=ended))

        def closeStore(result: object) -> Deferred[None]:
            if isinstance(result, Failure):
                log.failure("stopping camera {name}", result, name=name)
            return self.writer.removeCamera(recorder.sink)

        return maybeDeferred(lambda: stopping).addBoth(closeStore)

    def openFootage(self) -> Footage:
        """A new reader of this recorder's footage, for the web pages and their exports (a fleet's reads S3)."""
        return Footage(self.config.out)

    @property
    def footageFormat(self) -> str:
        """The format of the footage :meth:`openFootage` reads (the timeline needs ``segments``)."""
        return self.config.format

    @property
    def retention(self) -> Retention:
        """The retention the disk writer applies."""
        return self.writer.retention

    def startService(self) -> None:
        """Start the disk writer and the motion worker, then everything else."""
        self.writer.start()
        self.motion.start()
        MultiService.startService(self)

    def stopService(self) -> Deferred[None]:
        """Stop the cameras and the live view, then the disk writer; fires once all is written."""
        stopping: Deferred[None] = Deferred()
        first = MultiService.stopService(self)

        def stopWriter(result: object) -> None:
            for name, event in self.motion.stop():
                camera = self.cameras[name]
                camera.sink.call(functools.partial(camera.saveEvent, event=event))
            self.writer.stop().addBoth(lambda _: stopping.callback(None))
            if isinstance(result, Failure):
                log.failure("stopping the recorder", result)

        if first is None:
            stopWriter(None)
        else:
            first.addBoth(stopWriter)
        return stopping

    def openPaths(self) -> list[str]:
        """Files being written right now (kept safe from retention)."""
        return [path for camera in self.cameras.values() for path in camera.store.openPaths]

    def describe(self) -> str:
        """One line saying what is recorded where: the recorder's first log line."""
        config = self.config
        where = "%s (%s; retention: %s)" % (os.path.abspath(config.out), config.format, self.describeRetention())
        if self.simulated is not None:
            return ("recording from the built-in simulated camera (no --camera given) into %s;"
                    " add --camera NAME=ENDPOINT to record a real camera" % where)
        names = ", ".join("%s=%s" % (c.name, c.endpoint) for c in config.cameras)
        return "recording %d camera%s (%s) into %s" % (
            len(config.cameras), "" if len(config.cameras) == 1 else "s", names, where)

    def describeRetention(self) -> str:
        """The retention in use, with the free-space floor worked out for the recording folder's disk."""
        text = self.policy.describe()
        floor = self.retention.floorBytes()
        if floor:
            text += " = %.1f GiB here" % (floor / 1024 ** 3) if floor >= 1024 ** 3 / 10 else \
                " = %.1f MiB here" % (floor / 1024 ** 2)
        return text

    def status(self) -> dict[str, Any]:
        """The recorder's state as a JSON-ready dict (the live view's /status.json)."""
        return {
            "recording": {
                "out": os.path.abspath(self.config.out),
                "format": self.config.format,
                "keep_days": self.config.keepDays,
                "keep_motion_days": self.config.keepMotionDays,
                "max_bytes": self.config.maxBytes,
                "min_free_bytes": self.retention.floorBytes(),
                "free_bytes": self.retention.freeBytes(),
                "recorded_bytes": self.retention.totalBytes(),
                "queued_bytes": self.writer.queuedBytes,
                "queue_limit_bytes": self.writer.maxQueueBytes,
                "retention_passes": self.retention.passes,
                "retention_deleted": self.retention.deleted,
            },
            "cameras": {name: camera.status() for name, camera in self.cameras.items()},
        }
