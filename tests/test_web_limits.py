"""Issue 12, items 4, 5, 6 and 9: attacks on the web interface, performed on loopback.

4. viewers that never read must not lock others out;
5. idle web connections must never stop the recording (a recorder process
   with a low file descriptor limit, flooded with idle connections);
6. the Host header is checked (DNS rebinding);
9. HTTP access lines are logged only when asked.
"""

import json
import os
import resource
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import pytest_twisted
from record_support import LogCapture, filesUnder, waitFor
from twisted.internet import reactor, task, threads
from twisted.internet.address import IPv4Address
from twisted.internet.protocol import Factory, Protocol
from twisted.internet.testing import StringTransport
from web_support import PartReader, agent, get, rawRequest, recording, stop, streamParts

from tcpcam.record.web.hosts import HostCheck, hostName
from tcpcam.record.web.limits import EVICTION_MARGIN, FD_PER_CAMERA, FD_RESERVE, ConnectionLimits, connectionBudget
from tcpcam.record.web.stream import MjpegViewer

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")


# Item 5, the rules: the connection budget and who makes room.

def test_the_budget_keeps_descriptors_for_the_cameras_and_the_disk():
    assert connectionBudget(256, 1, None) == 256
    assert connectionBudget(256, 1, 20000) == 256
    assert connectionBudget(256, 1, 256) == 256 - FD_RESERVE - FD_PER_CAMERA - EVICTION_MARGIN
    assert connectionBudget(256, 16, 256) == 256 - FD_RESERVE - 16 * FD_PER_CAMERA - EVICTION_MARGIN
    assert connectionBudget(256, 100, 256) == 4  # never none at all


class Limits:
    """A ConnectionLimits over a trivial factory, with connections made on StringTransports."""

    def __init__(self, maxConnections, perAddress):
        self.clock = task.Clock()
        self.limits = ConnectionLimits(Factory.forProtocol(Protocol), self.clock, maxConnections, perAddress)
        self.transports = {}

    def connect(self, host):
        self.clock.advance(1)
        connection = self.limits.buildProtocol(IPv4Address("TCP", host, 40000))
        if connection is None:
            return None
        transport = StringTransport(peerAddress=IPv4Address("TCP", host, 40000))
        connection.makeConnection(transport)
        self.transports[connection] = transport
        return connection

    def gone(self, connection):
        connection.connectionLost(None)


def test_a_full_address_closes_its_own_quietest_connection():
    limits = Limits(maxConnections=100, perAddress=3)
    first, second, third = (limits.connect("10.0.0.1") for _ in range(3))
    limits.clock.advance(1)
    first.dataReceived(b"GET / HTTP/1.1\r\n")  # the first one is busy, the second is the quietest
    fourth = limits.connect("10.0.0.1")
    assert fourth is not None and second.closing and not first.closing and not third.closing
    assert limits.transports[second].disconnecting and not limits.transports[first].disconnecting
    assert limits.limits.ofAddress("10.0.0.1") == 3 and limits.limits.evicted == 1
    # Another address is not affected.
    assert limits.connect("10.0.0.2") is not None and limits.limits.ofAddress("10.0.0.2") == 1


def test_when_full_the_address_holding_most_makes_room():
    limits = Limits(maxConnections=6, perAddress=100)
    flood = [limits.connect("10.0.0.1") for _ in range(5)]
    other = limits.connect("10.0.0.2")
    newcomer = limits.connect("10.0.0.3")
    assert newcomer is not None and flood[0].closing and not other.closing
    assert limits.limits.open == 6 and limits.limits.ofAddress("10.0.0.1") == 4


def test_at_most_a_few_connections_are_being_closed_at_once():
    limits = Limits(maxConnections=4, perAddress=100)
    flood = [limits.connect("10.0.0.1") for _ in range(4)]
    made = [limits.connect("10.0.0.%d" % (2 + i)) for i in range(EVICTION_MARGIN)]
    assert all(made)
    # Every evicted one still holds its descriptor (no connectionLost yet): the next is refused.
    assert limits.connect("10.0.0.99") is None and limits.limits.refused == 1
    evicted = [c for c in flood + made if c.closing]
    assert len(evicted) == EVICTION_MARGIN
    for connection in evicted:
        limits.gone(connection)
    assert limits.connect("10.0.0.99") is not None


# Item 4: viewers that never read.

@pytest_twisted.inlineCallbacks
def test_viewers_that_never_read_lock_nobody_out(tmp_path):
    """64 viewers from one address: it gets its share of streams, 429 beyond; another address gets frames."""
    # The per-address connection cap (32 by default) would also close the quietest of these 64
    # connections; a higher one here leaves the stream cap alone to be tested.
    recorder, servers = yield recording(tmp_path, scripts=[[("stream", 0.01)]], frameSize=20_000,
                                        connectionsPerAddress=100)
    web = recorder.web
    camera = recorder.cameras["cam"]
    port = web.port.getHost().port
    stuck = []
    try:
        yield waitFor(lambda: camera.frames >= 1, what="a frame")
        # 64 viewers from one address that never read (connected in a thread, so the reactor accepts).
        yield threads.deferToThread(lambda: stuck.extend(
            rawRequest(port, "/cam/stream.mjpg", source="127.0.0.2", rcvbuf=4096) for _ in range(64)))
        share = web.settings.viewersPerAddress
        yield waitFor(lambda: web.viewers.refused == 64 - share, what="the streams beyond the share to be refused")
        assert web.viewers.ofAddress("127.0.0.2") == share and camera.viewers == share
        refusals = yield threads.deferToThread(lambda: [s.recv(12) for s in stuck[share:]])
        assert refusals == [b"HTTP/1.1 429"] * (64 - share)
        # Another address gets frames.
        parts = yield streamParts(web.url + "cam/stream.mjpg", 3, source="127.0.0.3")
        assert len(parts) == 3 and all(part in servers[0][0].sent for part in parts)
    finally:
        for client in stuck:
            client.close()
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_a_viewer_that_takes_no_frame_is_dropped(tmp_path, monkeypatch):
    """Viewers that stop reading are dropped stallTimeout after a frame waits for them; a reader stays."""
    monkeypatch.setattr(MjpegViewer, "stallTimeout", 0.5)
    recorder, servers = yield recording(tmp_path, scripts=[[("stream", 0.005)]], frameSize=50_000)
    web = recorder.web
    port = web.port.getHost().port
    stuck = []
    try:
        yield waitFor(lambda: recorder.cameras["cam"].frames >= 1, what="a frame")
        reader = PartReader(10 ** 9)
        response = yield agent("127.0.0.3").request(b"GET", (web.url + "cam/stream.mjpg").encode())
        response.deliverBody(reader)
        yield threads.deferToThread(lambda: stuck.extend(
            rawRequest(port, "/cam/stream.mjpg", source="127.0.0.2", rcvbuf=4096) for _ in range(4)))
        yield waitFor(lambda: web.viewers.stalled == 4, what="the four stuck viewers to be dropped")
        assert web.viewers.ofAddress("127.0.0.2") == 0
        dropped = yield threads.deferToThread(lambda: [_drain(client) for client in stuck])
        assert all(dropped), "a stuck viewer's connection is still open"
        # The viewer that reads was never dropped and still gets frames.
        before = len(reader.parts)
        yield waitFor(lambda: len(reader.parts) >= before + 20, what="more frames for the reader")
        assert web.viewers.ofAddress("127.0.0.3") == 1 and web.viewers.stalled == 4
        reader.transport.stopProducing()
    finally:
        for client in stuck:
            client.close()
        yield stop(recorder, servers)


def _drain(client):
    """True once the server closed ``client`` (reading what it had sent), within its timeout."""
    try:
        while client.recv(1 << 20):
            pass
    except ConnectionResetError:
        pass
    return True


# Item 5 (the idle timeout): idle connections are closed; a stream is not idle.

@pytest_twisted.inlineCallbacks
def test_idle_connections_are_closed_streams_are_not(tmp_path):
    recorder, servers = yield recording(tmp_path, scripts=[[("silence",)]], idleTimeout=1)
    camera = recorder.cameras["cam"]
    port = recorder.web.port.getHost().port
    idle = yield threads.deferToThread(socket.create_connection, ("127.0.0.1", port), timeout=10)
    stream = yield threads.deferToThread(rawRequest, port, "/cam/stream.mjpg")
    try:
        yield waitFor(lambda: camera.viewers == 1, what="the viewer")
        # Closed by the server (the socket's own timeout, 10 s, bounds the wait).
        assert (yield threads.deferToThread(_drain, idle))
        # The stream of a camera with nothing to send has a request in progress: still open.
        assert camera.viewers == 1 and recorder.web.limits.open == 1
    finally:
        idle.close()
        stream.close()
        yield stop(recorder, servers)


# Item 6: DNS rebinding.

@pytest.mark.parametrize("host, allowed", [
    (b"127.0.0.1:8080", True), (b"192.168.1.50", True), (b"[::1]:8080", True), (b"localhost:8080", True),
    (b"cams.localhost", True), (b"LOCALHOST.", True), (b"mybox", True), (b"mybox.local:8080", True),
    (b"cams.example.org", True), (None, True),
    (b"evil.example", False), (b"evil.example:8080", False), (b"127.0.0.1.evil.example", False), (b"", False),
    (b"[::1", False), (b"localhost:http", False), (b"\xff", False), (b"[127.0.0.1]", False),
    (b"1.2.3.4.nip.io", False)])
def test_host_names_that_are_answered(host, allowed):
    check = HostCheck(("cams.example.org",), machineName="mybox")
    assert check.allows(host) is allowed
    assert HostCheck(("*",), machineName="mybox").allows(host) is True


def test_host_name_of_a_header():
    assert hostName(b"Example.ORG.:80") == "example.org" and hostName(b"[::1]:8080") == "[::1]"


@pytest_twisted.inlineCallbacks
def test_another_sites_name_in_the_host_header_is_refused(tmp_path):
    recorder, servers = yield recording(tmp_path, hosts=("cams.example.org",))
    url = recorder.web.url
    try:
        for host, code in ((b"evil.example", 403), (b"evil.example:%d" % recorder.web.port.getHost().port, 403),
                           (b"cams.example.org", 200), (b"localhost", 200), (b"127.0.0.1", 200)):
            for path in ("status.json", "login", "cam/latest.jpg", "metrics"):
                response, body = yield get(url + path, headers={b"host": host})
                assert (response.code == 403) == (code == 403), (host, path, response.code)
        response, body = yield get(url + "status.json", headers={b"host": b"evil.example"})
        assert b"--web-hosts" in body
        response, body = yield get(url + "status.json")
        assert json.loads(body)["web"]["refused_hosts"] == 2 * 4 + 1  # two evil names on four paths, and one more
    finally:
        yield stop(recorder, servers)


# Item 9: access lines.

@pytest_twisted.inlineCallbacks
@pytest.mark.parametrize("accessLog", [False, True])
def test_access_lines_only_when_asked(tmp_path, accessLog):
    recorder, servers = yield recording(tmp_path, accessLog=accessLog)
    try:
        with LogCapture(namespace="") as logs:
            for _ in range(3):
                response, _ = yield get(recorder.web.url + "status.json")
                assert response.code == 200
            yield task.deferLater(reactor, 0, lambda: None)
        lines = logs.matching('"GET /status.json HTTP/1.1" 200')
        assert len(lines) == (3 if accessLog else 0), logs.lines
    finally:
        yield stop(recorder, servers)


# Item 5: a flood of idle connections at a low descriptor limit.

#: The descriptor limit of the flooded recorder, and the idle connections sent to it.
FLOOD_LIMIT = 256
FLOOD_CONNECTIONS = 320
FLOOD_ADDRESSES = 10


def _lowLimit():
    resource.setrlimit(resource.RLIMIT_NOFILE, (FLOOD_LIMIT, FLOOD_LIMIT))


def _status(url, tries=20):
    """The recorder's status; during a flood a new connection may be closed at once, so try again (bounded)."""
    for attempt in range(tries):
        try:
            with urllib.request.urlopen(url + "status.json", timeout=10) as answer:
                return json.loads(answer.read())
        except (ConnectionResetError, urllib.error.URLError):
            if attempt == tries - 1:
                raise
            time.sleep(0.1)


@pytest.mark.slow
@pytest.mark.parametrize("storage", ["segments", "jpg"])
def test_idle_connections_never_stop_the_recording(tmp_path, storage):
    """More idle web connections than the recorder has descriptors: no frame is lost, others still get in."""
    log = open(tmp_path / "recorder.log", "w")
    recorder = subprocess.Popen(
        [sys.executable, "-c", "import sys; from tcpcam.cli.main import main; sys.exit(main())", "record",
         "--format", storage, "--web", "tcp:0:interface=127.0.0.1", "--web-login", "false",
         "--web-idle-timeout", "600"],
        cwd=str(tmp_path), stdout=log, stderr=subprocess.STDOUT, preexec_fn=_lowLimit,
        env=dict(os.environ, PYTHONUNBUFFERED="1"))
    idle = []
    try:
        deadline = time.monotonic() + 30
        url = None
        while url is None:
            text = (tmp_path / "recorder.log").read_text()
            if "connected to" in text and "web interface on " in text:
                url = text.split("web interface on ")[1].split()[0]
            assert recorder.poll() is None and time.monotonic() < deadline, text
            time.sleep(0.05)
        port = int(url.rstrip("/").rsplit(":", 1)[1])
        assert "at most 176 connections" in text, text  # 256 - 64 - 8 - 8
        before = _status(url)["cameras"]["simulated"]["frames"]
        for i in range(FLOOD_CONNECTIONS):
            client = socket.socket()
            client.bind(("127.0.0.%d" % (2 + i % FLOOD_ADDRESSES), 0))
            client.connect(("127.0.0.1", port))
            idle.append(client)
        openFiles = len(os.listdir("/proc/%d/fd" % recorder.pid))
        assert openFiles < FLOOD_LIMIT
        # Recording goes on: 10 more frames (the simulated camera sends 5 a second), none lost.
        while True:
            status = _status(url)
            camera, web = status["cameras"]["simulated"], status["web"]
            if camera["frames"] >= before + 10:
                break
            assert time.monotonic() < deadline + 30, status
            time.sleep(0.1)
        assert camera["dropped_frames"] == 0 and camera["disk_errors"] == 0 and camera["reconnects"] == 0
        assert web["connections"] <= web["max_connections"] == 176
        assert web["evicted_connections"] + web["refused_connections"] >= FLOOD_CONNECTIONS - 176
        if storage == "jpg":
            pictures = filesUnder(tmp_path / "recordings" / "simulated", ".jpg")
            assert abs(len(pictures) - camera["frames"]) <= 1  # the one being written
    finally:
        for client in idle:
            client.close()
        recorder.terminate()
        recorder.wait(timeout=20)
        log.close()
    text = (tmp_path / "recorder.log").read_text()
    assert "Too many open files" not in text and "cannot write" not in text, text
    assert "stopped after" in text
    if storage == "segments":
        from tcpcam.record.footage import Footage

        assert Footage(str(tmp_path / "recordings")).count("simulated", 0, time.time() + 60) >= camera["frames"]

