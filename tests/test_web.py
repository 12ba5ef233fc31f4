"""The live view over real HTTP: the pages, status.json, latest.jpg, snapshot.jpg, stream.mjpg, metrics.

Login is off here (tests/test_web_auth.py covers it).
"""

import json
import re
import socket

import pytest
import pytest_twisted
from record_support import LogCapture, listenScripted, makeConfig, startRecorder, waitFor
from twisted.internet import defer, reactor, threads
from web_support import get, header, recording, stop, streamParts

from tcpcam.record.config import WebSettings
from tcpcam.record.eventlog import readEvents
from tcpcam.record.web import StreamResource

# Twisted's own HTTP client warns about its own transport in readBody.
pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")


@pytest_twisted.inlineCallbacks
def test_page_status_latest_and_metrics(tmp_path):
    recorder, servers = yield recording(tmp_path, cameras=("front", "back"))
    url = recorder.web.url
    try:
        yield waitFor(lambda: all(c.frames >= 3 for c in recorder.cameras.values()),
                      what="frames")
        response, page = yield get(url)
        assert response.code == 200 and b"/static/live.js" in page
        response, page = yield get(url + "front/")
        assert response.code == 200 and b"/static/camera.js" in page
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
        for missing in ("nosuchcamera/latest.jpg", "nosuchcamera/", "front/other.jpg", "static/nosuch.js"):
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
                                            web="tcp:0:interface=127.0.0.1", webSettings=WebSettings(login=False)))
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


@pytest_twisted.inlineCallbacks
def test_stream_of_a_silent_camera_answers_at_once(tmp_path):
    """Issue 11 bug 2: the headers come before the camera's first frame, so nothing waits on it."""
    recorder, servers = yield recording(tmp_path, scripts=[[("silence",)]])
    camera = recorder.cameras["cam"]
    try:
        yield waitFor(lambda: camera.connected, what="the camera to connect")
        response = yield agentRequest(recorder.web.url + "cam/stream.mjpg").addTimeout(5, reactor)
        assert response.code == 200
        assert header(response, b"content-type") == b"multipart/x-mixed-replace; boundary=tcpcamframe"
        assert camera.frames == 0 and camera.viewers == 1
        response, _ = yield get(recorder.web.url + "status.json")
        assert json.loads(_)["cameras"]["cam"]["viewers"] == 1
    finally:
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_latest_etag_snapshot_and_camera_page(tmp_path):
    recorder, servers = yield recording(tmp_path, scripts=[[("frames", 3), ("silence",)]], cameras=("front",))
    url = recorder.web.url
    camera = recorder.cameras["front"]
    try:
        yield waitFor(lambda: camera.frames == 3, what="three frames")
        response, frame = yield get(url + "front/latest.jpg")
        tag = header(response, b"etag")
        assert response.code == 200 and frame == servers[0][0].sent[-1] and tag == b'"3"'
        # The page has it already: 304 and no body; an older tag gets the frame.
        response, body = yield get(url + "front/latest.jpg", headers={b"if-none-match": tag})
        assert response.code == 304 and body == b""
        response, body = yield get(url + "front/latest.jpg", headers={b"if-none-match": b'"2"'})
        assert response.code == 200 and body == frame
        # The snapshot is the newest frame, as a download named after the camera and its time.
        response, body = yield get(url + "front/snapshot.jpg")
        assert response.code == 200 and header(response, b"content-type") == b"image/jpeg"
        assert body in servers[0][0].sent
        disposition = header(response, b"content-disposition").decode()
        assert re.fullmatch(r'attachment; filename="front_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d\.\d{3}\.jpg"', disposition)
        # /NAME goes to /NAME/, the camera's page.
        response, _ = yield get(url + "front")
        assert response.code == 303 and header(response, b"location") == b"/front/"
        response, page = yield get(url + "static/style.css")
        assert response.code == 200 and header(response, b"content-type") == b"text/css; charset=utf-8"
        response, _ = yield get(url + "static/style.css", headers={b"if-none-match": header(response, b"etag")})
        assert response.code == 304
        # Every answer keeps other sites from framing the pages.
        assert header(response, b"x-frame-options") == b"DENY"
        assert b"frame-ancestors 'none'" in header(response, b"content-security-policy")
    finally:
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_status_has_the_web_interface_counters(tmp_path):
    recorder, servers = yield recording(tmp_path)
    try:
        response, body = yield get(recorder.web.url + "status.json")
        web = json.loads(body)["web"]
        assert web["login"] is False and web["connections"] >= 1 and web["max_connections"] >= 8
        assert web["refused_connections"] == 0 and web["stalled_viewers"] == 0
    finally:
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_a_request_body_over_the_bound_is_refused(tmp_path):
    """A huge POST gets 413 and a closed connection, before its body is read."""
    recorder, servers = yield recording(tmp_path)
    port = recorder.web.port.getHost().port
    client = socket.create_connection(("127.0.0.1", port), timeout=5)
    try:
        client.sendall(b"POST /login HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/x-www-form-urlencoded\r\n"
                       b"Content-Length: 1000000000\r\n\r\npassword=")
        answer = yield threads.deferToThread(_readAll, client)
        assert answer.startswith(b"HTTP/1.1 413 ")
    finally:
        client.close()
        yield stop(recorder, servers)


def _readAll(client):
    data = b""
    while True:
        chunk = client.recv(65536)
        if not chunk:
            return data
        data += chunk


def agentRequest(url):
    from web_support import agent

    return agent().request(b"GET", url.encode())
