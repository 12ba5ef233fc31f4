"""The whole recorder as one Twisted service, built from a RecorderConfig."""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, Any

from twisted.application.service import MultiService
from twisted.internet.endpoints import clientFromString
from twisted.logger import Logger

from tcpcam.record.camera import CameraRecorder, FactoryMaker, defaultFactoryMaker
from tcpcam.record.endpoints import LaterEndpoint
from tcpcam.record.eventlog import EventLog
from tcpcam.record.retention import RetentionService
from tcpcam.record.simulated import SimulatedCamera
from tcpcam.record.storage import makeStore

if TYPE_CHECKING:
    from tcpcam.record.config import RecorderConfig
    from tcpcam.record.web import WebService

log = Logger(namespace="tcpcam.record")


class RecorderService(MultiService):
    """Every camera, retention and the live view, started and stopped together.

    ``cameras`` maps each camera's name to its
    :class:`~tcpcam.record.camera.CameraRecorder`, in configuration order.
    Stopping stops the cameras first (each finishes the frame it is writing
    and closes its file), then the simulated camera and the live view.
    """

    def __init__(self, config: RecorderConfig, reactor: Any, factoryMaker: FactoryMaker = defaultFactoryMaker) -> None:
        MultiService.__init__(self)
        self.config = config
        self.cameras: dict[str, CameraRecorder] = {}
        self.simulated: SimulatedCamera | None = None
        self.web: WebService | None = None
        self._reactor = reactor
        if config.web is not None:
            from tcpcam.record.web import WebService

            self.web = WebService(config.web, self, reactor)
            self.web.setServiceParent(self)
        for camera in config.cameras:
            if camera.simulated:
                endpoint = LaterEndpoint("the built-in simulated camera")
                self.simulated = SimulatedCamera(reactor, camera.pin, endpoint)
                self.simulated.setServiceParent(self)
            else:
                endpoint = clientFromString(reactor, camera.endpoint)
            directory = os.path.join(config.out, camera.name)
            recorder = CameraRecorder(
                camera, endpoint, makeStore(config.format, directory),
                EventLog(os.path.join(directory, "events.jsonl")), reactor,
                backoffInitial=config.backoffInitial, backoffMax=config.backoffMax,
                factoryMaker=factoryMaker,
            )
            recorder.setServiceParent(self)
            self.cameras[camera.name] = recorder
        self.retention = RetentionService(
            config.out, config.keepDays, config.maxBytes, self.openPaths, reactor)
        self.retention.setServiceParent(self)

    def openPaths(self) -> list[str]:
        """Files being written right now (kept safe from retention)."""
        return [path for camera in self.cameras.values() for path in camera.store.openPaths]

    def describe(self) -> str:
        """One line saying what is recorded where: the recorder's first log line."""
        config = self.config
        where = "%s (%s)" % (os.path.abspath(config.out), config.format)
        if self.simulated is not None:
            return ("recording from the built-in simulated camera (no --camera given) into %s;"
                    " add --camera NAME=ENDPOINT to record a real camera" % where)
        names = ", ".join("%s=%s" % (c.name, c.endpoint) for c in config.cameras)
        return "recording %d camera%s (%s) into %s" % (
            len(config.cameras), "" if len(config.cameras) == 1 else "s", names, where)

    def status(self) -> dict[str, Any]:
        """The recorder's state as a JSON-ready dict (the live view's /status.json)."""
        return {
            "recording": {
                "out": os.path.abspath(self.config.out),
                "format": self.config.format,
                "keep_days": self.config.keepDays,
                "max_bytes": self.config.maxBytes,
            },
            "cameras": {name: camera.status() for name, camera in self.cameras.items()},
        }
