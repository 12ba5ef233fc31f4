"""The live view: twisted.web pages for watching the cameras in a browser.

``/`` shows every camera with its state; ``/NAME/stream.mjpg`` is a
multipart/x-mixed-replace MJPEG stream (browsers, VLC, ffmpeg, go2rtc, Home
Assistant); ``/NAME/latest.jpg`` the newest frame; ``/status.json`` the state
of every camera; ``/metrics`` the Prometheus metrics.
"""

from __future__ import annotations

import html
import json
from typing import TYPE_CHECKING, Any

from twisted.application.service import Service
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import serverFromString
from twisted.internet.interfaces import IListeningPort, IPushProducer
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.web import pages
from twisted.web.iweb import IRequest
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request, Site
from zope.interface import implementer

from tcpcam.record.metrics import metricsResource

if TYPE_CHECKING:
    from tcpcam.record.camera import CameraRecorder
    from tcpcam.record.service import RecorderService

log = Logger(namespace="tcpcam.record")

#: The multipart boundary between frames of an MJPEG stream.
BOUNDARY = b"tcpcamframe"
_NO_CACHE = b"no-cache, no-store, must-revalidate"


@implementer(IPushProducer)
class MjpegViewer:
    """One viewer of a camera's MJPEG stream.

    It is the push producer of its HTTP response: while the viewer's
    connection cannot take more (Twisted paused it), new frames replace the
    one waiting instead of piling up, so a slow viewer skips frames and holds
    at most one frame, and the camera never waits for it.
    """

    def __init__(self, request: Request, camera: CameraRecorder) -> None:
        self.request = request
        self.camera = camera
        self.sent = 0
        self.skipped = 0
        self._paused = False
        self._pending: bytes | None = None
        self._done = False

    def start(self) -> None:
        """Attach to the camera and send its newest frame at once."""
        self.request.registerProducer(self, True)
        self.camera.addViewer(self)
        self.request.notifyFinish().addBoth(self._finished)
        if self.camera.latest is not None:
            self.frameAvailable(self.camera.latest)

    def frameAvailable(self, frame: bytes) -> None:
        """Send ``frame``, or keep it as the one to send when the viewer catches up."""
        if self._done:
            return
        if self._paused:
            if self._pending is not None:
                self.skipped += 1
            self._pending = frame
            return
        self._send(frame)

    def _send(self, frame: bytes) -> None:
        self.request.write(
            b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n\r\n" % (BOUNDARY, len(frame)))
        self.request.write(frame)
        self.request.write(b"\r\n")
        self.sent += 1

    def pauseProducing(self) -> None:
        """The connection is full: hold frames back."""
        self._paused = True

    def resumeProducing(self) -> None:
        """The connection has room: send the frame kept back, if any."""
        self._paused = False
        frame, self._pending = self._pending, None
        if frame is not None and not self._done:
            self._send(frame)

    def stopProducing(self) -> None:
        """The connection is going away."""
        self._detach()

    def close(self) -> None:
        """End the stream (the recorder is stopping)."""
        if not self._done:
            self._detach()
            self.request.unregisterProducer()
            self.request.finish()

    def _finished(self, result: None | Failure) -> None:
        self._detach()

    def _detach(self) -> None:
        self._done = True
        self._pending = None
        self.camera.removeViewer(self)


class StreamResource(Resource):
    """``/NAME/stream.mjpg``: the camera's frames as they come, one multipart part each."""

    isLeaf = True
    #: Viewers one camera serves at once; more get 503 Service Unavailable.
    maxViewers = 64

    def __init__(self, camera: CameraRecorder, streams: set[MjpegViewer]) -> None:
        Resource.__init__(self)
        self.camera = camera
        self._streams = streams

    def render_HEAD(self, request: Request) -> bytes:
        """Only the headers: a HEAD request gets no stream."""
        request.setHeader(b"content-type", b"multipart/x-mixed-replace; boundary=" + BOUNDARY)
        request.setHeader(b"cache-control", _NO_CACHE)
        return b""

    def render_GET(self, request: Request) -> bytes | int:
        """Start streaming to this viewer."""
        if self.camera.viewers >= self.maxViewers:
            request.setResponseCode(503)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            return b"too many viewers of this camera (at most %d)\n" % self.maxViewers
        request.setHeader(b"content-type", b"multipart/x-mixed-replace; boundary=" + BOUNDARY)
        request.setHeader(b"cache-control", _NO_CACHE)
        request.setHeader(b"pragma", b"no-cache")
        viewer = MjpegViewer(request, self.camera)
        self._streams.add(viewer)
        request.notifyFinish().addBoth(lambda _: self._streams.discard(viewer))
        viewer.start()
        return NOT_DONE_YET


class LatestResource(Resource):
    """``/NAME/latest.jpg``: the camera's newest frame (503 before the first one)."""

    isLeaf = True

    def __init__(self, camera: CameraRecorder) -> None:
        Resource.__init__(self)
        self.camera = camera

    def render_GET(self, request: Request) -> bytes:
        """Return the newest frame."""
        request.setHeader(b"cache-control", _NO_CACHE)
        frame = self.camera.latest
        if frame is None:
            request.setResponseCode(503)
            request.setHeader(b"content-type", b"text/plain; charset=utf-8")
            request.setHeader(b"retry-after", b"1")
            return b"no frame from this camera yet\n"
        request.setHeader(b"content-type", b"image/jpeg")
        return frame


class StatusResource(Resource):
    """``/status.json``: the recorder's and every camera's state."""

    isLeaf = True

    def __init__(self, recorder: RecorderService) -> None:
        Resource.__init__(self)
        self.recorder = recorder

    def render_GET(self, request: Request) -> bytes:
        """Return the state as JSON."""
        request.setHeader(b"content-type", b"application/json")
        request.setHeader(b"cache-control", _NO_CACHE)
        return json.dumps(self.recorder.status(), indent=1).encode() + b"\n"


class IndexPage(Resource):
    """``/``: every camera's live picture and its state, refreshed every second."""

    isLeaf = True

    def __init__(self, recorder: RecorderService) -> None:
        Resource.__init__(self)
        self.recorder = recorder

    def render_GET(self, request: Request) -> bytes:
        """Return the page."""
        request.setHeader(b"content-type", b"text/html; charset=utf-8")
        cards = "".join(
            _CARD.format(name=html.escape(name)) for name in self.recorder.cameras)
        return _PAGE.format(cards=cards).encode("utf-8")


class _Folder(Resource):
    """A resource whose unknown children are a plain 404 page."""

    def getChild(self, path: bytes, request: IRequest) -> IResource:
        """Any child not put here does not exist."""
        return pages.notFound()


class LiveView(_Folder):
    """The root resource of the live view."""

    def __init__(self, recorder: RecorderService, streams: set[MjpegViewer]) -> None:
        _Folder.__init__(self)
        self.putChild(b"", IndexPage(recorder))
        self.putChild(b"status.json", StatusResource(recorder))
        self.putChild(b"metrics", metricsResource(recorder))
        for name, camera in recorder.cameras.items():
            folder = _Folder()
            folder.putChild(b"stream.mjpg", StreamResource(camera, streams))
            folder.putChild(b"latest.jpg", LatestResource(camera))
            self.putChild(name.encode(), folder)


class WebService(Service):
    """Serve the live view on a server endpoint string such as ``tcp:8080``."""

    def __init__(self, description: str, recorder: RecorderService, reactor: Any) -> None:
        self.description = description
        self.recorder = recorder
        self._reactor = reactor
        self.streams: set[MjpegViewer] = set()
        self.port: IListeningPort | None = None
        self.url: str | None = None

    def startService(self) -> None:
        """Start listening; logs the address to open in a browser."""
        Service.startService(self)
        site = Site(LiveView(self.recorder, self.streams))
        site.displayTracebacks = False
        listening = serverFromString(self._reactor, self.description).listen(site)
        listening.addCallbacks(self._listened, self._failed)

    def _listened(self, port: IListeningPort) -> None:
        self.port = port
        address = port.getHost()
        host = getattr(address, "host", None)
        if host in (None, "0.0.0.0", "::", ""):
            host = "127.0.0.1"
        if ":" in host:
            host = "[%s]" % host
        self.url = "http://%s:%d/" % (host, getattr(address, "port", 0))
        log.info("live view on {url}", url=self.url)

    def _failed(self, failure: Failure) -> None:
        log.error("live view: cannot listen on {description}: {error}; recording goes on without it",
                  description=self.description, error=failure.getErrorMessage())

    def stopService(self) -> Deferred[None] | None:
        """End every stream and stop listening."""
        Service.stopService(self)
        for viewer in list(self.streams):
            viewer.close()
        if self.port is None:
            return None
        port, self.port = self.port, None
        return port.stopListening()


_CARD = """
<figure class="camera" id="cam-{name}">
 <img src="{name}/stream.mjpg" alt="live picture of {name}">
 <figcaption><b>{name}</b> <span class="state">...</span></figcaption>
</figure>"""

_PAGE = """<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>tcpcam live view</title>
<style>
body {{ font-family: sans-serif; margin: 1em; background: #222; color: #eee; }}
main {{ display: flex; flex-wrap: wrap; gap: 1em; }}
figure {{ margin: 0; background: #333; padding: .5em; border-radius: 4px; }}
img {{ display: block; width: 480px; max-width: 90vw; min-height: 120px; background: #000; }}
.state {{ font-size: .9em; color: #bbb; }}
.down {{ color: #f88; }}
a {{ color: #8cf; }}
</style>
</head>
<body>
<h1>tcpcam live view</h1>
<main>{cards}
</main>
<p><a href="status.json">status.json</a> &middot; <a href="metrics">metrics</a></p>
<script>
function describe(c) {{
  var age = c.last_frame_age === null ? "no frame yet" : "last frame " + c.last_frame_age.toFixed(1) + " s ago";
  return c.state + " &middot; " + c.fps.toFixed(1) + " fps &middot; " + age +
    " &middot; " + c.reconnects + " reconnects &middot; " + c.frames + " frames";
}}
function refresh() {{
  fetch("status.json", {{cache: "no-store"}}).then(function (r) {{ return r.json(); }}).then(function (s) {{
    for (var name in s.cameras) {{
      var card = document.getElementById("cam-" + name);
      if (!card) continue;
      var span = card.querySelector(".state");
      span.innerHTML = describe(s.cameras[name]);
      span.className = "state" + (s.cameras[name].connected ? "" : " down");
    }}
  }}).catch(function () {{}});
}}
refresh();
setInterval(refresh, 1000);
</script>
</body>
</html>
"""
