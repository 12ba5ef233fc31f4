"""The live view over real HTTP: the page, status.json, latest.jpg, stream.mjpg, metrics."""

import json
import socket

import pytest
import pytest_twisted
from record_support import LogCapture, listenScripted, makeConfig, startRecorder, waitFor
from twisted.internet import defer, reactor
from twisted.internet.protocol import Protocol
from twisted.web.client import Agent, readBody

from tcpcam.record.eventlog import readEvents
from tcpcam.record.web import BOUNDARY, StreamResource

# Twisted's own HTTP client warns about its own transport in readBody.
pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")


class PartReader(Protocol):
    """Read a multipart/x-mixed-replace body until ``wanted`` parts arrived."""

    def __init__(self, wanted):
        self.wanted = wanted
        self.parts = []
        self.done = defer.Deferred()
        self._buffer = b""

    def dataReceived(self, data):
        self._buffer += data
        while len(self.parts) < self.wanted:
            start = self._buffer.find(b"--" + BOUNDARY + b"\r\n")
            end = self._buffer.find(b"\r\n\r\n", start)
            if start < 0 or end < 0:
                return
            headers = dict(
                line.split(b": ", 1) for line in self._buffer[start:end].split(b"\r\n")[1:])
            length = int(headers[b"Content-Length"])
            if len(self._buffer) < end + 4 + length + 2:
                return
            assert headers[b"Content-Type"] == b"image/jpeg"
            self.parts.append(self._buffer[end + 4:end + 4 + length])
            self._buffer = self._buffer[end + 4 + length + 2:]
        if not self.done.called:
            self.transport.stopProducing()
            self.done.callback(self.parts)

    def connectionLost(self, reason):
        if not self.done.called:
            self.done.errback(reason)


@defer.inlineCallbacks
def get(url):
    response = yield Agent(reactor).request(b"GET", url.encode())
    body = yield readBody(response)
    return response, body


@defer.inlineCallbacks
def streamParts(url, wanted):
    response = yield Agent(reactor).request(b"GET", url.encode())
    assert response.code == 200
    contentType = response.headers.getRawHeaders(b"content-type")[0]
    assert contentType == b"multipart/x-mixed-replace; boundary=" + BOUNDARY
    reader = PartReader(wanted)
    response.deliverBody(reader)
    parts = yield reader.done.addTimeout(10, reactor)
    return parts


@defer.inlineCallbacks
def recording(tmp_path, scripts=None, frameSize=3000, cameras=("cam",)):
    servers = []
    for _ in cameras:
        servers.append((yield listenScripted(scripts or [[("stream", 0.01)]], frameSize)))
    recorder = startRecorder(makeConfig(
        tmp_path, [(name, server[2]) for name, server in zip(cameras, servers, strict=True)],
        web="tcp:0:interface=127.0.0.1"))
    yield waitFor(lambda: recorder.web.url is not None, what="the live view to listen")
    return recorder, servers


@defer.inlineCallbacks
def stop(recorder, servers):
    yield recorder.stopService()
    for _, port, _ in servers:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_page_status_latest_and_metrics(tmp_path):
    recorder, servers = yield recording(tmp_path, cameras=("front", "back"))
    url = recorder.web.url
    try:
        yield waitFor(lambda: all(c.frames >= 3 for c in recorder.cameras.values()),
                      what="frames")
        response, page = yield get(url)
        assert response.code == 200 and b"front/stream.mjpg" in page and b"back/stream.mjpg" in page
        response, body = yield get(url + "status.json")
        status = json.loads(body)
        assert set(status["cameras"]) == {"front", "back"}
        front = status["cameras"]["front"]
        assert front["connected"] and front["frames"] >= 3 and front["reconnects"] == 0
        assert front["last_frame_age"] is not None and front["fps"] > 0
        response, body = yield get(url + "front/latest.jpg")
        assert response.code == 200
        assert response.headers.getRawHeaders(b"content-type") == [b"image/jpeg"]
        assert body in servers[0][0].sent
        response, body = yield get(url + "metrics")
        assert response.code == 200
        assert b'tcpcam_frames_total{camera="front"}' in body
        assert b'tcpcam_connected{camera="back"} 1.0' in body
        for missing in ("nosuchcamera/latest.jpg", "front/", "front/other.jpg"):
            response, _ = yield get(url + missing)
            assert response.code == 404
    finally:
        yield stop(recorder, servers)


def _unusedPort():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


@pytest_twisted.inlineCallbacks
def test_endpoints_show_as_the_strings_given(tmp_path):
    server = yield listenScripted([[("stream", 0.01)]])
    down = "tcp:host=127.0.0.1:port=%d" % _unusedPort()
    with LogCapture() as logs:
        recorder = startRecorder(makeConfig(tmp_path, [("up", server[2]), ("down", down)],
                                            web="tcp:0:interface=127.0.0.1"))
        try:
            yield waitFor(lambda: recorder.web.url is not None and recorder.cameras["up"].frames >= 1
                          and recorder.cameras["down"].connectFailures >= 1, what="a frame and a refusal")
            _, body = yield get(recorder.web.url + "status.json")
        finally:
            yield stop(recorder, [server])
    cameras = json.loads(body)["cameras"]
    assert (cameras["up"]["endpoint"], cameras["down"]["endpoint"]) == (server[2], down)
    assert logs.matching("camera up: connected to %s" % server[2])
    assert logs.matching("camera down: cannot connect to %s:" % down)
    assert not logs.matching("object at")
    connects = [event for event in readEvents(tmp_path / "up" / "events.jsonl") if event["event"] == "connect"]
    assert connects and all(event["endpoint"] == server[2] for event in connects)


@pytest_twisted.inlineCallbacks
def test_latest_before_any_frame_is_503(tmp_path):
    recorder, servers = yield recording(tmp_path, scripts=[[("silence",)]])
    try:
        response, body = yield get(recorder.web.url + "cam/latest.jpg")
        assert response.code == 503 and b"no frame" in body
    finally:
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_several_viewers_read_parts_of_the_stream(tmp_path):
    recorder, servers = yield recording(tmp_path)
    sent = servers[0][0].sent
    try:
        yield waitFor(lambda: recorder.cameras["cam"].frames >= 1, what="a frame")
        results = yield defer.gatherResults(
            [streamParts(recorder.web.url + "cam/stream.mjpg", 2) for _ in range(4)])
        for parts in results:
            assert len(parts) == 2 and all(part in sent for part in parts)
            assert sent.index(parts[0]) < sent.index(parts[1])
        yield waitFor(lambda: recorder.cameras["cam"].viewers == 0, what="viewers to leave")
    finally:
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_viewers_beyond_the_limit_get_503(tmp_path, monkeypatch):
    monkeypatch.setattr(StreamResource, "maxViewers", 1)
    recorder, servers = yield recording(tmp_path)
    camera = recorder.cameras["cam"]
    first = socket.create_connection(("127.0.0.1", recorder.web.port.getHost().port), timeout=5)
    try:
        first.sendall(b"GET /cam/stream.mjpg HTTP/1.1\r\nHost: localhost\r\n\r\n")
        yield waitFor(lambda: camera.viewers == 1, what="the first viewer")
        response, body = yield get(recorder.web.url + "cam/stream.mjpg")
        assert response.code == 503 and b"too many viewers" in body
        assert camera.viewers == 1
    finally:
        first.close()
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_slow_viewer_skips_frames_and_holds_nothing_up(tmp_path):
    recorder, servers = yield recording(tmp_path, scripts=[[("stream", 0.005)]], frameSize=100_000)
    camera = recorder.cameras["cam"]
    slow = socket.socket()
    slow.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    try:
        slow.connect(("127.0.0.1", recorder.web.port.getHost().port))
        slow.sendall(b"GET /cam/stream.mjpg HTTP/1.1\r\nHost: localhost\r\n\r\n")
        # The slow viewer never reads: it ends up paused and skipping frames.
        yield waitFor(lambda: any(v.skipped > 5 for v in recorder.web.streams),
                      what="the slow viewer to skip frames")
        viewer = next(iter(recorder.web.streams))
        frames = camera.frames
        parts = yield streamParts(recorder.web.url + "cam/stream.mjpg", 3)
        assert len(parts) == 3
        yield waitFor(lambda: camera.frames >= frames + 20, what="recording to go on")
        assert viewer._paused and viewer.skipped > 5
        assert viewer.sent < camera.frames - viewer.skipped
    finally:
        slow.close()
        yield stop(recorder, servers)
