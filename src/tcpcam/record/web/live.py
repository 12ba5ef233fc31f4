"""The live view: the grid of cameras, one camera full size, its newest frame, a snapshot, the state.

- ``/``: the grid (``static/live.html``); each tile shows the camera's newest
  frame, refreshed by the page, or its state when it has none to show;
- ``/NAME/``: one camera full size (``static/camera.html``), on its stream;
- ``/NAME/stream.mjpg``: the MJPEG stream (:mod:`tcpcam.record.web.stream`);
- ``/NAME/latest.jpg``: the newest frame (503 before the first one), with an
  ETag so the page can ask "anything newer?" and get 304;
- ``/NAME/snapshot.jpg``: the same frame as a download named after the camera
  and the frame's time, such as ``door_2026-05-06_07-08-09.123.jpg``;
- ``/status.json``: the recorder's and every camera's state, and the web
  interface's own counters.

The pages are plain files; their script reads ``/status.json``, so they never
wait on a camera: a picture is asked for only once the camera has one.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.internet.interfaces import IReactorTime
from twisted.web.resource import IResource, Resource
from twisted.web.server import Request

from tcpcam.record.web.plain import NO_CACHE, PlainError, plainText, seeOther
from tcpcam.record.web.stream import StreamResource, ViewerLimits

if TYPE_CHECKING:
    from tcpcam.record.camera import CameraRecorder
    from tcpcam.record.service import RecorderService


def snapshotName(camera: str, when: float) -> str:
    """The file name of a snapshot: ``NAME_YYYY-MM-DD_HH-MM-SS.mmm.jpg`` in local time."""
    return "%s_%s.%03d.jpg" % (camera, time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(when)),
                               int(when * 1000) % 1000)


class LatestResource(Resource):
    """``/NAME/latest.jpg``: the camera's newest frame; ``snapshot.jpg`` when ``download`` is set."""

    isLeaf = True

    def __init__(self, camera: CameraRecorder, download: bool = False) -> None:
        Resource.__init__(self)
        self.camera = camera
        self.download = download

    def render_GET(self, request: Request) -> bytes:
        """Return the newest frame (304 if the ETag says the browser has it)."""
        frame = self.camera.latest
        if frame is None:
            return plainText(request, 503, "no frame from this camera yet", retryAfter=1)
        etag = b'"%d"' % self.camera.frames
        request.setHeader(b"cache-control", NO_CACHE)
        request.setHeader(b"etag", etag)
        if self.download:
            name = snapshotName(self.camera.name or "camera", self.camera.lastFrameTime or 0.0)
            request.setHeader(b"content-disposition", b'attachment; filename="%s"' % name.encode("ascii"))
        elif request.getHeader(b"if-none-match") == etag:
            request.setResponseCode(304)
            return b""
        request.setHeader(b"content-type", b"image/jpeg")
        return frame


class StatusResource(Resource):
    """``/status.json``: the recorder's and every camera's state, and the web interface's counters."""

    isLeaf = True

    def __init__(self, recorder: RecorderService, webStatus: Callable[[], dict[str, Any]]) -> None:
        Resource.__init__(self)
        self.recorder = recorder
        self.webStatus = webStatus

    def render_GET(self, request: Request) -> bytes:
        """Return the state as JSON."""
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", NO_CACHE)
        status = self.recorder.status()
        status["web"] = self.webStatus()
        return json.dumps(status, indent=1).encode() + b"\n"


class Folder(Resource):
    """A resource whose unknown children are a plain 404."""

    def getChild(self, path: bytes, request: Request) -> IResource:
        """Any child not put here does not exist."""
        return PlainError(404, "no such page")


class CameraFolder(Folder):
    """``/NAME/``: one camera's page, stream, newest frame and snapshot."""

    def __init__(self, camera: CameraRecorder, page: IResource, limits: ViewerLimits, clock: IReactorTime) -> None:
        Folder.__init__(self)
        self.putChild(b"", page)
        self.putChild(b"stream.mjpg", StreamResource(camera, limits, clock))
        self.putChild(b"latest.jpg", LatestResource(camera))
        self.putChild(b"snapshot.jpg", LatestResource(camera, download=True))

    def render(self, request: Request) -> bytes:
        """``/NAME`` without the slash: go to ``/NAME/``."""
        return seeOther(request, request.path + b"/")


class LiveTree(Folder):
    """Everything behind the login: the grid, each camera's folder, ``status.json`` and ``metrics``."""

    def __init__(self, recorder: RecorderService, pages: dict[str, IResource], limits: ViewerLimits,
                 clock: IReactorTime, webStatus: Callable[[], dict[str, Any]], metrics: IResource,
                 cameraChildren: Callable[[str], dict[bytes, IResource]] | None = None) -> None:
        Folder.__init__(self)
        self.recorder = recorder
        self._pages = pages
        self._limits = limits
        self._clock = clock
        #: More pages of each camera's folder, by name (the timeline, playback and exports).
        self._cameraChildren = cameraChildren
        #: Camera name -> (the camera, its folder): at most one per camera the recorder has.
        self._folders: dict[str, tuple[object, CameraFolder]] = {}
        self.putChild(b"", pages["live.html"])
        self.putChild(b"status.json", StatusResource(recorder, webStatus))
        self.putChild(b"metrics", metrics)

    def getChild(self, path: bytes, request: Request) -> IResource:
        """``/NAME/``: the camera's folder, looked up now (in a fleet, cameras come and go while it runs)."""
        cameras = self.recorder.cameras
        name = path.decode("ascii", "replace")
        camera = cameras.get(name)
        if camera is None:
            return PlainError(404, "no such page")
        made = self._folders.get(name)
        if made is not None and made[0] is camera:
            return made[1]
        folder = CameraFolder(camera, self._pages["camera.html"], self._limits, self._clock)
        if self._cameraChildren is not None:
            for child, resource in self._cameraChildren(name).items():
                folder.putChild(child, resource)
        for gone in [known for known in self._folders if known not in cameras]:
            del self._folders[gone]
        self._folders[name] = (camera, folder)
        return folder
