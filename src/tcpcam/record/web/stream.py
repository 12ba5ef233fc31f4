"""``/NAME/stream.mjpg``: a camera's frames as a multipart/x-mixed-replace MJPEG stream.

The HTTP headers go out at once, before the camera's first frame, so a
browser (or any client) never waits on a camera that is down. Each viewer is
the push producer of its response: a slow viewer skips frames and holds at
most one, and a viewer that takes no frame for :attr:`MjpegViewer.stallTimeout`
seconds after one was offered is dropped. :class:`ViewerLimits` bounds the
viewers of a camera and of an address.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Protocol

from twisted.internet.interfaces import IPushProducer, IReactorTime
from twisted.python.failure import Failure
from twisted.web.resource import Resource
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from tcpcam.record.web.plain import NO_CACHE, plainText
from tcpcam.record.web.stall import StallWatch

if TYPE_CHECKING:
    from tcpcam.record.camera import CameraRecorder

#: The multipart boundary between frames of an MJPEG stream.
BOUNDARY = b"tcpcamframe"
#: The Content-Type of a stream.
STREAM_TYPE = b"multipart/x-mixed-replace; boundary=" + BOUNDARY


def setStreamHeaders(request: Request) -> None:
    """The headers of an MJPEG stream response (live or played back): its type, and no caching."""
    request.setHeader(b"content-type", STREAM_TYPE)
    request.setHeader(b"cache-control", NO_CACHE)


def clientHost(request: Request) -> str:
    """The address a request comes from, as the limits and the throttle count it."""
    address = request.getClientAddress()
    host = getattr(address, "host", None)
    return host if isinstance(host, str) else type(address).__name__


class CountedStream(Protocol):
    """A stream :class:`ViewerLimits` counts: a live viewer, or a player of recorded footage."""

    #: The address it goes to, as :func:`clientHost` gives it.
    address: str

    def close(self) -> None:
        """End the stream (the recorder is stopping)."""


def partHeader(length: int, timestamp: float | None = None) -> bytes:
    """The headers of one part of an MJPEG stream, with the frame's time in ``X-Timestamp`` if given."""
    stamp = b"X-Timestamp: %.3f\r\n" % timestamp if timestamp is not None else b""
    return b"--%s\r\nContent-Type: image/jpeg\r\nContent-Length: %d\r\n%s\r\n" % (BOUNDARY, length, stamp)


@implementer(IPushProducer)
class MjpegViewer:
    """One viewer of a camera's MJPEG stream.

    While the viewer's connection cannot take more (Twisted paused it), new
    frames replace the one waiting instead of piling up, so the camera never
    waits for it. A frame offered while paused starts a deadline of
    :attr:`stallTimeout` seconds; if the viewer has not taken more by then,
    its connection is dropped (the viewer stopped reading).
    """

    #: Seconds a viewer may leave an offered frame untaken before it is dropped.
    stallTimeout = 10.0

    def __init__(self, request: Request, camera: CameraRecorder, clock: IReactorTime, limits: ViewerLimits,
                 address: str) -> None:
        self.request = request
        self.camera = camera
        self.address = address
        self.sent = 0
        self.skipped = 0
        self.stalled = False
        self._clock = clock
        self._limits = limits
        self._paused = False
        self._pending: bytes | None = None
        self._watch = StallWatch(clock, self.stallTimeout, request, self._stall)
        self._done = False

    @property
    def paused(self) -> bool:
        """True while the viewer's connection is full."""
        return self._paused

    def start(self) -> None:
        """Send the headers at once, attach to the camera, and send its newest frame if it has one."""
        self._limits.add(self)
        self.request.registerProducer(self, True)
        self.request.notifyFinish().addBoth(self._finished)
        self.request.write(b"")  # the headers, now: the camera may have no frame for a long time
        self.camera.addViewer(self)
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
            self._watch.arm()
            return
        self._send(frame)

    def _send(self, frame: bytes) -> None:
        self.request.write(partHeader(len(frame)))
        self.request.write(frame)
        self.request.write(b"\r\n")
        self.sent += 1

    def pauseProducing(self) -> None:
        """The connection is full: hold frames back."""
        self._paused = True

    def resumeProducing(self) -> None:
        """The connection has room: send the frame kept back, if any."""
        self._paused = False
        self._watch.cancel()
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

    def _stall(self) -> None:
        if self._done:
            return
        self.stalled = True
        self._limits.stalled += 1
        self._detach()

    def _finished(self, result: None | Failure) -> None:
        self._detach()

    def _detach(self) -> None:
        if self._done:
            return
        self._done = True
        self._pending = None
        self._watch.cancel()
        self.camera.removeViewer(self)
        self._limits.remove(self)


class ViewerLimits:
    """Every stream viewer, counted per address.

    ``perAddress`` bounds one address's viewers of all cameras together (429
    beyond: that address asks too much), so viewers from one address cannot
    lock the others out; :attr:`StreamResource.maxViewers` bounds a camera's.
    The playback streams of recorded footage have limits of their own, of
    the same kind (:mod:`tcpcam.record.web.playback`).
    """

    def __init__(self, perAddress: int) -> None:
        self.perAddress = perAddress
        self.viewers: set[CountedStream] = set()
        self._byAddress: dict[str, int] = {}
        #: Viewers dropped because they took no frame in time.
        self.stalled = 0
        #: Streams refused because an address had its share.
        self.refused = 0

    def ofAddress(self, address: str) -> int:
        """How many streams ``address`` watches now."""
        return self._byAddress.get(address, 0)

    def full(self, address: str) -> bool:
        """True if ``address`` watches as many streams as it may (and count the refusal)."""
        if self.ofAddress(address) < self.perAddress:
            return False
        self.refused += 1
        return True

    def add(self, viewer: CountedStream) -> None:
        """Count ``viewer``."""
        self.viewers.add(viewer)
        self._byAddress[viewer.address] = self.ofAddress(viewer.address) + 1

    def remove(self, viewer: CountedStream) -> None:
        """Forget ``viewer`` (it may already be forgotten)."""
        if viewer not in self.viewers:
            return
        self.viewers.discard(viewer)
        left = self.ofAddress(viewer.address) - 1
        if left > 0:
            self._byAddress[viewer.address] = left
        else:
            self._byAddress.pop(viewer.address, None)

    def closeAll(self) -> None:
        """End every stream (the recorder is stopping)."""
        for viewer in list(self.viewers):
            viewer.close()


class StreamResource(Resource):
    """``/NAME/stream.mjpg``: the camera's frames as they come, one multipart part each."""

    isLeaf = True
    #: Viewers one camera serves at once; more get 503 Service Unavailable.
    maxViewers = 64

    def __init__(self, camera: CameraRecorder, limits: ViewerLimits, clock: IReactorTime) -> None:
        Resource.__init__(self)
        self.camera = camera
        self.limits = limits
        self._clock = clock

    def render_HEAD(self, request: Request) -> bytes:
        """Only the headers: a HEAD request gets no stream."""
        setStreamHeaders(request)
        return b""

    def render_GET(self, request: Request) -> bytes | int:
        """Start streaming to this viewer, unless the camera or the address has its share of viewers."""
        address = clientHost(request)
        if self.camera.viewers >= self.maxViewers:
            return plainText(request, 503, "too many viewers of this camera (at most %d)" % self.maxViewers,
                             retryAfter=5)
        if self.limits.full(address):
            return plainText(request, 429, "too many live streams from your address (at most %d at once)"
                             % self.limits.perAddress, retryAfter=5)
        setStreamHeaders(request)
        request.setHeader(b"pragma", b"no-cache")
        MjpegViewer(request, self.camera, self._clock, self.limits, address).start()
        return NOT_DONE_YET
