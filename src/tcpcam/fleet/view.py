"""Every camera of the fleet as the web pages want a recorder to be: ``cameras``, ``status()``, ``config``, ``footage``.

Cameras this member records are its own
:class:`~tcpcam.record.camera.CameraRecorder`; every other registered camera is
a :class:`~tcpcam.fleet.live.RemoteCamera` whose frames come from its lease
holder and whose state comes from the holder's presence key. Footage comes
from the object store (:class:`~tcpcam.fleet.s3footage.S3Footage`) when the
fleet has one.
"""

from __future__ import annotations

import functools
import json
import os
from typing import TYPE_CHECKING, Any

from tcpcam.fleet.live import RemoteCamera
from tcpcam.record.retention import Retention, RetentionPolicy

if TYPE_CHECKING:
    from tcpcam.fleet.service import FleetService

#: The state shown for a registered camera nobody records (between holders).
UNASSIGNED = {"state": "connecting", "connected": False, "fps": 0.0, "last_frame_age": None, "frames": 0,
              "bytes": 0, "bad_frames": 0, "reconnects": 0, "viewers": 0}


class FleetView:
    """The fleet for :class:`~tcpcam.record.web.WebService` (see the module docstring)."""

    def __init__(self, service: FleetService) -> None:
        self.service = service
        self.config = service.config
        self._remote: dict[str, RemoteCamera] = {}
        self._retention: Retention | None = None
        from tcpcam.fleet.metrics import FleetCollector

        self.extraCollectors = [FleetCollector(service)]

    def openFootage(self) -> Any:
        """A new reader of the footage the pages show (the object store's when the fleet has one)."""
        return self.service.openFootage()

    @property
    def footageFormat(self) -> str:
        """The format of that footage: segments in the object store, else this member's ``--format``."""
        return "segments" if self.service.fleet.s3 is not None else self.config.format

    @property
    def retention(self) -> Retention:
        """The free-space check of the pages' exports: the recorder's, or one of ``--out`` for ``tcpcam web``."""
        if self.service.recorder is not None:
            return self.service.recorder.retention
        if self._retention is None:
            self._retention = Retention(self.config.out, RetentionPolicy(
                minFreeBytes=self.config.minFree, minFreePercent=self.config.minFreePercent), {})
        return self._retention

    @property
    def cameras(self) -> dict[str, Any]:
        """Every registered camera, by name: this member's own, or a remote view of the holder's."""
        service = self.service
        local = dict(service.recorder.cameras) if service.recorder is not None else {}
        found: dict[str, Any] = {}
        for name in sorted(service.cameraEntries()):
            if name in local:
                found[name] = local[name]
                continue
            remote = self._remote.get(name)
            if remote is None:
                remote = RemoteCamera(name, service.link, functools.partial(self.remoteStatus, name))
                self._remote[name] = remote
            found[name] = remote
        return found

    def remoteStatus(self, name: str) -> dict[str, Any]:
        """The state of a camera another member records, from its presence key."""
        service = self.service
        holder = service.holders().get(name)
        status: dict[str, Any] = dict(UNASSIGNED)
        if holder and service.presence is not None:
            entry = service.presence.entries.get(holder)
            if entry is not None:
                try:
                    reported = json.loads(entry.value).get("cameras", {}).get(name)
                except ValueError:
                    reported = None
                if reported:
                    status.update(reported)
                    if status.get("last_frame_age") is not None:
                        status["last_frame_age"] = round(status["last_frame_age"] + service.clock() - entry.seenAt, 3)
        remote = self._remote.get(name)
        status.update({"recorder": holder, "simulated": False,
                       "endpoint": "(recorded by %s)" % (holder or "nobody yet"),
                       "viewers": remote.viewers if remote is not None else 0})
        return status

    def status(self) -> dict[str, Any]:
        """The fleet's state as a JSON-ready dict (``/status.json``)."""
        service = self.service
        cameras = {}
        for name, camera in self.cameras.items():
            status = camera.status()
            status.setdefault("recorder", service.recorderId)
            cameras[name] = status
        s3 = service.fleet.s3
        out = "s3://%s/%s" % (s3.bucket, s3.prefix) if s3 is not None else os.path.abspath(self.config.out)
        recording: dict[str, Any] = {"out": out, "format": "segments"}
        if service.recorder is not None:
            recording.update(service.recorder.status()["recording"])
            recording["out"] = out
        return {"recording": recording, "cameras": cameras, "fleet": self.fleetStatus()}

    def fleetStatus(self) -> dict[str, Any]:
        """This member's fleet counters."""
        service = self.service
        spool, uploader = service.spool, service.uploader
        return {
            "recorder": service.recorderId, "connected": service.link.connected, "lease_seconds": service.terms.ttl,
            "leases": sorted(service.leases), "live_recorders": sorted(service.liveRecorders()),
            "taken": service.taken, "released": service.released, "expired": service.expired,
            "events_queued": service.events.queued, "events_published": service.events.published,
            "events_dropped": service.events.dropped,
            "spool_bytes": spool.bytes if spool else 0, "spool_limit_bytes": spool.maxBytes if spool else 0,
            "spool_waiting": spool.waiting if spool else 0, "spool_refused": spool.refused if spool else 0,
            "uploaded_segments": uploader.uploadedSegments if uploader else 0,
            "uploaded_bytes": uploader.uploadedBytes if uploader else 0,
            "upload_busy_seconds": round(uploader.busySeconds, 3) if uploader else 0.0,
            "upload_failing": uploader.failing if uploader else False,
        }
