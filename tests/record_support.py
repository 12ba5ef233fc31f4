"""Helpers for the recorder and live view tests: frames, a scripted camera, waits."""

import io
import os

from twisted.internet import reactor, task
from twisted.internet.defer import inlineCallbacks
from twisted.internet.endpoints import serverFromString
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import formatEvent, globalLogPublisher

from tcpcam.common.atomic import TEMP_SUFFIX
from tcpcam.core.framing import encode_frame, encode_header
from tcpcam.record.config import CameraConfig, RecorderConfig
from tcpcam.record.service import RecorderService


def jpegFrame(number, size=3000):
    """A frame that passes the JPEG check, unique per ``number``, ``size`` bytes long."""
    body = b"%08d" % number
    filler = bytes((number + i) % 251 for i in range(max(0, size - 4 - len(body))))
    return b"\xff\xd8" + body + filler + b"\xff\xd9"


def realJpeg(color=(200, 40, 40), size=(160, 120)):
    """A real JPEG picture of one colour (for the browser)."""
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", size, color).save(out, "JPEG", quality=90)
    return out.getvalue()


class ScriptedCamera(Protocol):
    """A camera that plays one script per connection: frames, then a misdeed.

    It reads nothing back: the request is ignored, as a raw-socket server
    would. Scripts are steps: ``("frames", n)``, ``("stream", interval)``
    (frames forever), ``("midframe",)`` (close in the middle of a frame),
    ``("garbage",)`` (a non-JPEG frame then bytes that decode as an absurd
    length), ``("silence",)`` (stay connected and quiet), ``("close",)``.
    """

    def connectionMade(self):
        self.factory.connections += 1
        self.factory.clients.add(self)
        index = min(self.factory.connections, len(self.factory.scripts)) - 1
        self._steps = list(self.factory.scripts[index])
        self._call = None
        self._next()

    def connectionLost(self, reason):
        self.factory.clients.discard(self)
        if self._call is not None and self._call.active():
            self._call.cancel()

    def _send(self, payload):
        self.factory.sent.append(payload)
        self.transport.write(encode_frame(payload))

    def _next(self):
        if not self._steps:
            return
        step = self._steps.pop(0)
        kind = step[0]
        if kind == "frames":
            for _ in range(step[1]):
                self._send(self.factory.nextFrame())
            self._call = reactor.callLater(0.01, self._next)
        elif kind == "stream":
            self._send(self.factory.nextFrame())
            self._steps.insert(0, step)
            self._call = reactor.callLater(step[1], self._next)
        elif kind == "midframe":
            frame = self.factory.nextFrame()
            self.transport.write(encode_header(len(frame)) + frame[: len(frame) // 2])
            self._call = reactor.callLater(0.01, self.transport.loseConnection)
        elif kind == "garbage":
            self.transport.write(encode_frame(b"this is not a picture"))
            self.transport.write(b"\x7f\xff\xff\xff garbage garbage garbage")
        elif kind == "close":
            self.transport.loseConnection()
        # "silence": do nothing at all


class ScriptedCameraFactory(Factory):
    """Builds ScriptedCamera protocols; connection i plays ``scripts[i]`` (the last repeats)."""

    protocol = ScriptedCamera

    def __init__(self, scripts, frameSize=3000):
        self.scripts = scripts
        self.frameSize = frameSize
        self.connections = 0
        self.clients = set()
        self.sent = []
        self._count = 0

    def nextFrame(self):
        """A fresh unique frame."""
        self._count += 1
        return jpegFrame(self._count, self.frameSize)

    def dropAll(self):
        """Close every connection."""
        for client in list(self.clients):
            client.transport.abortConnection()


@inlineCallbacks
def listenScripted(scripts, frameSize=3000, port=0):
    """Listen on loopback; return ``(factory, listening port, endpoint string)``."""
    factory = ScriptedCameraFactory(scripts, frameSize)
    listening = yield serverFromString(
        reactor, "tcp:%d:interface=127.0.0.1" % port).listen(factory)
    return factory, listening, "tcp:host=127.0.0.1:port=%d" % listening.getHost().port


@inlineCallbacks
def waitFor(predicate, timeout=10.0, what="the condition"):
    """Poll ``predicate`` every 20 ms until true; fail after ``timeout`` seconds."""
    deadline = reactor.seconds() + timeout
    while not predicate():
        if reactor.seconds() > deadline:
            raise AssertionError("timed out after %g s waiting for %s" % (timeout, what))
        yield task.deferLater(reactor, 0.02, lambda: None)


def makeConfig(out, cameras, **settings):
    """A RecorderConfig for tests: tiny backoff, short frame timeout, no web unless asked."""
    defaults = dict(out=str(out), web=None, backoffInitial=0.02, backoffMax=0.2)
    defaults.update(settings)
    cameraConfigs = [
        camera if isinstance(camera, CameraConfig)
        else CameraConfig(name=camera[0], endpoint=camera[1], frameTimeout=0.5)
        for camera in cameras
    ]
    return RecorderConfig(cameras=cameraConfigs, **defaults)


def startRecorder(config):
    """Build and start a RecorderService on the global reactor."""
    recorder = RecorderService(config, reactor)
    recorder.startService()
    return recorder


@inlineCallbacks
def recordScripted(out, scripts, until, what, frameSize=3000, prepare=None, **settings):
    """Record camera ``cam`` from a scripted camera until ``until(camera)``, then stop both.

    ``prepare(recorder)`` runs before the recorder starts. Returns
    ``(factory, recorder)``; everything is stopped by then.
    """
    factory, port, endpoint = yield listenScripted(scripts, frameSize)
    recorder = RecorderService(makeConfig(out, [("cam", endpoint)], **settings), reactor)
    if prepare is not None:
        prepare(recorder)
    recorder.startService()
    camera = recorder.cameras["cam"]
    try:
        yield waitFor(lambda: until(camera), what=what)
    finally:
        yield recorder.stopService()
        yield port.stopListening()
    return factory, recorder


def filesUnder(root, suffix=""):
    """Every file under ``root`` whose name ends with ``suffix``, sorted."""
    found = []
    for folder, _, names in os.walk(root):
        found.extend(os.path.join(folder, name) for name in names if name.endswith(suffix))
    return sorted(found)


def tempFilesUnder(root):
    """Temporary files left under ``root``."""
    return filesUnder(root, TEMP_SUFFIX)


class LogCapture:
    """Collect the formatted text of log events from ``namespace`` (a context manager)."""

    def __init__(self, namespace="tcpcam.record"):
        self.namespace = namespace
        self.lines = []

    def __call__(self, event):
        if event.get("log_namespace", "").startswith(self.namespace):
            self.lines.append(formatEvent(event))

    def __enter__(self):
        globalLogPublisher.addObserver(self)
        return self

    def __exit__(self, *exc):
        globalLogPublisher.removeObserver(self)

    def matching(self, text):
        """Lines containing ``text``."""
        return [line for line in self.lines if text in line]


def indexedFrames(folder, strict=True):
    """Every frame a camera's index lists, checked: ``[(time_ms, bytes)]`` in time order.

    Fails if a row points past its segment's end, at bytes that are not a
    whole JPEG, or if frames of a segment overlap or leave holes; ``strict``
    also fails if a segment file holds bytes past its last indexed frame or
    its size is not the index's (what only recovery can promise after a crash).
    """
    import sqlite3

    from tcpcam.common.jpeg import jpegProblem

    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(folder, "index.sqlite3"), uri=True)
    try:
        frames = []
        for segment, path, size in db.execute("SELECT id, path, bytes FROM segments ORDER BY start_ms"):
            data = open(os.path.join(folder, path), "rb").read()
            if strict:
                assert len(data) == size, "%s holds %d bytes, the index says %d" % (path, len(data), size)
            expected = 0
            for timeMs, offset, length in db.execute(
                    "SELECT time_ms, offset, length FROM frames WHERE segment = ? ORDER BY offset", (segment,)):
                assert offset == expected, "%s: a hole or an overlap at %d" % (path, offset)
                frame = data[offset:offset + length]
                assert len(frame) == length and jpegProblem(frame) is None, "%s: a broken frame at %d" % (path, offset)
                frames.append((timeMs, frame))
                expected = offset + length
            if strict:
                assert expected == len(data), "%s: %d bytes past the last indexed frame" % (
                    path, len(data) - expected)
        frames.sort(key=lambda item: item[0])
        return frames
    finally:
        db.close()


def segmentFiles(folder):
    """The segment files under a camera folder."""
    from tcpcam.record.layout import isSegmentName

    return [path for path in filesUnder(folder, ".mjpeg") if isSegmentName(os.path.basename(path))]
