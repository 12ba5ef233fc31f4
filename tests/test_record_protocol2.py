"""The recorder over protocol 2: settings on every connect, seq and capture times, true losses, health, fall back."""

import io
import json
import socket
import sqlite3

import pytest
import pytest_twisted
from record_support import LogCapture, makeConfig, waitFor
from twisted.internet import defer, reactor, task
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, serverFromString
from twisted.internet.protocol import Factory, Protocol
from web_support import get

from tcpcam.client.camera import connectCamera
from tcpcam.client.protocol import fetch
from tcpcam.core.client_role2 import LEGACY_RECHECK_MS, ProtocolMemory
from tcpcam.core.mac import key_text
from tcpcam.record.camera2 import CameraLinkFactory
from tcpcam.record.config import CameraConfig, WebSettings
from tcpcam.record.eventlog import readEvents
from tcpcam.record.gaps import FrameLosses
from tcpcam.record.health import MAX_FIGURES, MAX_TEXT_CHARS, cleanHealth, numeric
from tcpcam.record.service import RecorderService
from tcpcam.server import TCPCamServerFactory
from tcpcam.server.sources.pattern import PatternSource

KEY = bytes(range(40, 60))
OTHER_KEY = bytes(range(60, 80))
PIN = "1235"

# Twisted's own HTTP client warns about its own transport in readBody.
pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")


def pictureSize(jpeg):
    from PIL import Image

    return Image.open(io.BytesIO(jpeg)).size


def indexRows(folder):
    """``[(time_ms, seq, capture_ms, jpeg)]`` of a camera's index, in time order."""
    import os

    db = sqlite3.connect("file:%s?mode=ro" % os.path.join(str(folder), "index.sqlite3"), uri=True)
    try:
        rows = []
        query = ("SELECT frames.time_ms, frames.seq, frames.capture_ms, segments.path, frames.offset, frames.length"
                 " FROM frames JOIN segments ON segments.id = frames.segment ORDER BY frames.time_ms")
        for timeMs, seq, captureMs, path, offset, length in db.execute(query):
            with open(os.path.join(str(folder), path), "rb") as handle:
                handle.seek(offset)
                rows.append((timeMs, seq, captureMs, handle.read(length)))
        return rows
    finally:
        db.close()


class HealthySource(PatternSource):
    """The pattern source with the figures a board adds to its health (heap, WiFi), which a computer lacks."""

    figures = {"free_heap": 123456, "largest_free_block": 65536, "wifi_rssi": -61}

    def health(self):
        return dict(self.figures)


def protocol2Server(source=None, interval=0.02, **settings):
    settings.setdefault("name", "door")
    return TCPCamServerFactory(source or PatternSource((640, 480)), pin=PIN, reactor=reactor, key=KEY,
                               interval=interval, **settings)


@defer.inlineCallbacks
def listen(factory):
    port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    return port, "tcp:host=127.0.0.1:port=%d" % port.getHost().port


def camera(endpoint, key=KEY, **fields):
    fields.setdefault("frameTimeout", 10.0)
    return CameraConfig(name="door", endpoint=endpoint, pin=PIN, key=key, **fields)


def startRecording(out, cameraConfig, memory=None, **settings):
    recorder = RecorderService(makeConfig(out, [cameraConfig], **settings), reactor, memory=memory)
    recorder.startService()
    return recorder, recorder.cameras["door"]


def dropConnections(factory):
    """Abort every connection of a server (the network failed)."""
    for conn in factory.role.connections():
        conn.transport.abortConnection()


# The pieces, without the network.


def test_losses_are_counted_from_sequence_numbers_in_runs():
    losses = FrameLosses()
    losses.quietSeconds = 10
    losses.connected()
    assert losses.frame(100, 3, 0.0) == (3, None, losses.run, None)  # the first frame: its missed
    run = losses.run
    assert (run.frames, run.firstSeq) == (3, 100)
    assert losses.frame(101, 0, 1.0)[0] == 0
    assert losses.frame(105, 3, 2.0) == (3, None, None, None)  # seq says 3 lost, whatever missed says
    assert run.frames == 6 and run.gaps == 2 and run.lastSeq == 105
    # Quiet for 10 s: the run is over; the next loss starts another.
    lost, ended, started, _ = losses.frame(107, 1, 12.5)
    assert (lost, ended, started is losses.run) == (1, run, True)
    assert losses.total == 7
    # Wrapping at 2**32 counts true losses; a step backwards counts none.
    losses.connected()
    losses.frame(0xFFFFFFFE, 0, 13.0)
    assert losses.frame(1, 0, 13.1)[0] == 2
    assert losses.frame(0, 0, 13.2)[0] == 0 and losses.backwards == 1
    assert losses.close() is not None and losses.run is None


def test_a_long_run_of_losses_is_reported_once_a_minute():
    losses = FrameLosses()
    losses.connected()
    reports = []
    for second in range(0, 185):
        # One frame lost before each frame that comes, one a second, for three minutes.
        _, _, started, report = losses.frame(second * 2, 1, float(second))
        assert (started is not None) == (second == 0)
        if report is not None:
            reports.append((second, report.unreported))
            losses.reported(report, float(second))
    assert reports == [(60, 61), (120, 60), (180, 60)]
    assert losses.total == 185 == sum(frames for _, frames in reports) + losses.run.unreported


def test_health_figures_are_kept_bounded():
    facts = {"free_heap": 5000, "wifi_rssi": -70.5, "reset_cause": "x" * 1000, "nested": {"a": 1},
             "list": [1], "NotPlain": 1, "n" * 41: 1, "nan": float("nan"), "big": 10 ** 30, "ok": True}
    facts.update({"k%03d" % index: index for index in range(100)})
    kept = cleanHealth(facts)
    assert len(kept) == MAX_FIGURES and kept["free_heap"] == 5000 and kept["wifi_rssi"] == -70.5
    assert kept["reset_cause"] == "x" * MAX_TEXT_CHARS and kept["nan"] is None and kept["big"] is None
    assert "nested" not in kept and "list" not in kept and "NotPlain" not in kept and "n" * 41 not in kept
    assert [numeric(value) for value in (3, -2.5, True, "3", None, float("inf"), 10 ** 30)] == [
        3.0, -2.5, None, None, None, None, None]
    assert cleanHealth("not a dict") == {}
    assert cleanHealth({"reset_cause": "brown\nout\x1b[31m"})["reset_cause"] == "brown?out?[31m"


def test_a_legacy_endpoint_is_tried_with_protocol_2_again_after_a_day():
    clock = task.Clock()
    clock.advance(1000)
    heard = []

    class Listener:
        def connecting(self, version):
            heard.append(version)

        def frame2Received(self, frame):
            pass

        healthReceived = settingsReceived = frame2Received

        def closingTold(self, reason, text):
            pass

    legacy = Factory.forProtocol(Protocol)
    factory = CameraLinkFactory(KEY, "tcp:host=cam:port=1", ProtocolMemory(), clock, legacy, Listener(), {}, 1000,
                                None)
    assert factory.protocolNow() == 2
    factory.memory.found_legacy(factory.address, int(clock.seconds() * 1000))
    assert factory.protocolNow() == 1
    assert type(factory.buildProtocol(None)) is Protocol and heard == [1]
    clock.advance(LEGACY_RECHECK_MS / 1000 - 1)
    assert factory.protocolNow() == 1
    clock.advance(1)
    assert factory.protocolNow() == 2
    assert type(factory.buildProtocol(None)) is not Protocol and heard == [1, 2]


# Over loopback.


@pytest_twisted.inlineCallbacks
def test_settings_are_applied_on_every_connect_and_frames_keep_their_seq_and_capture_time(tmp_path):
    server = protocol2Server()
    port, endpoint = yield listen(server)
    recorder, door = startRecording(tmp_path, camera(endpoint, settings={"framesize": "QVGA", "quality": 40}))
    other = None
    try:
        yield waitFor(lambda: door.frames >= 5, what="five frames")
        assert door.protocol == 2 and door.settingsError is None
        assert door.cameraSettings["framesize"] == "QVGA" and door.cameraSettings["quality"] == 40
        assert door.device == {"name": "door", "firmware": server.role.device["firmware"], "sensor": "simulated"}
        # Another client changes the shared camera; the recorder sees it, then loses its connection.
        other = yield connectCamera(reactor, endpoint, key=key_text(KEY), memory=ProtocolMemory())
        yield other.set(framesize="VGA")
        yield waitFor(lambda: door.cameraSettings["framesize"] == "VGA", what="the settings of the other client")
        changedAt = door.frames
        yield waitFor(lambda: door.frames >= changedAt + 2, what="frames of the other size")
        yield other.close()
        dropConnections(server)
        yield waitFor(lambda: door.connects == 2 and door.cameraSettings["framesize"] == "QVGA",
                      what="the settings applied again after the reconnect")
        reconnectedAt = door.frames
        yield waitFor(lambda: door.frames >= reconnectedAt + 5, what="frames after the reconnect")
    finally:
        if other is not None:
            yield other.close()
        yield recorder.stopService()
        yield port.stopListening()
    rows = indexRows(tmp_path / "door")
    assert len(rows) == door.frames
    sizes = [pictureSize(jpeg) for _, _, _, jpeg in rows]
    # QVGA until the other client's change, VGA until the reconnect, QVGA again from then on.
    runs = [sizes[0]]
    for size in sizes[1:]:
        if size != runs[-1]:
            runs.append(size)
    assert runs == [(320, 240), (640, 480), (320, 240)]
    assert sizes[-5:] == [(320, 240)] * 5
    # Every frame has the camera's sequence number and capture time (the reference server's clock).
    seqs = [seq for _, seq, _, _ in rows]
    assert None not in seqs and seqs == sorted(seqs) and len(set(seqs)) == len(seqs)
    captures = [capture for _, _, capture, _ in rows]
    assert None not in captures and captures == sorted(captures)
    assert all(abs(timeMs - capture) < 5000 for timeMs, _, capture, _ in rows)
    events = readEvents(tmp_path / "door" / "events.jsonl")
    assert [event["event"] for event in events].count("protocol") == 2
    assert [event for event in events if event["event"] == "settings"][0]["applied"] == {
        "framesize": "QVGA", "quality": 40}


class StallingProxy(Protocol):
    """One connection of :class:`StallingPath`: bytes from the camera pass on unless the path is stalled."""

    def connectionMade(self):
        self.factory.proxies.append(self)
        self.transport.pauseProducing()
        self.upstream = None
        connecting = connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", self.factory.port), _Upstream(self))
        connecting.addCallback(self._connected)

    def _connected(self, upstream):
        self.upstream = upstream
        self.transport.resumeProducing()

    def dataReceived(self, data):
        self.upstream.transport.write(data)

    def connectionLost(self, reason):
        if self.upstream is not None:
            self.upstream.transport.loseConnection()


class _Upstream(Protocol):
    def __init__(self, proxy):
        self.proxy = proxy

    def connectionMade(self):
        # A small receive buffer (no autotuning), so a stalled path backs up to the camera soon.
        self.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 65536)
        if self.proxy.factory.stalled:
            self.transport.pauseProducing()

    def dataReceived(self, data):
        self.proxy.transport.write(data)

    def connectionLost(self, reason):
        self.proxy.transport.loseConnection()


class StallingPath(Factory):
    """A loopback path to a camera that can stall (stop carrying its frames) for a while, as WiFi does."""

    protocol = StallingProxy

    def __init__(self, port):
        self.port = port
        self.proxies = []
        self.stalled = False

    def stall(self, on):
        self.stalled = on
        for proxy in self.proxies:
            if proxy.upstream is not None:
                (proxy.upstream.transport.pauseProducing if on else proxy.upstream.transport.resumeProducing)()


@pytest_twisted.inlineCallbacks
def test_frames_lost_on_a_stalling_path_are_counted_from_the_sequence_numbers(tmp_path):
    server = protocol2Server(PatternSource((160, 120)), interval=0.01)
    port, endpoint = yield listen(server)
    path = StallingPath(port.getHost().port)
    pathPort, pathEndpoint = yield listen(path)
    # A fast client keeps the camera capturing while the recorder's path is stalled.
    fastFrames = []
    fast = fetch(reactor, endpoint, PIN, 0, lambda view: fastFrames.append(len(view)))
    fast.addErrback(lambda failure: None)
    with LogCapture() as logs:
        recorder, door = startRecording(tmp_path, camera(pathEndpoint))
        door.losses.quietSeconds = 0.5
        try:
            yield waitFor(lambda: door.frames >= 10 and door.protocol == 2, what="frames over the path")
            # Small send buffers on the camera's side, so a stalled path backs up to it within a few frames.
            for conn in server.role.connections():
                conn.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 16384)
            for _ in range(2):
                path.stall(True)
                before = len(fastFrames)
                yield waitFor(lambda before=before: len(fastFrames) >= before + 150,
                              what="frames captured while stalled")
                path.stall(False)
                lostBefore = door.lostFrames
                yield waitFor(lambda lostBefore=lostBefore: door.lostFrames > lostBefore, what="losses counted")
                # Quiet time ends the run before the next stall.
                yield waitFor(lambda: door.losses.run is None, what="the run to end")
            statusLost = recorder.status()["cameras"]["door"]["lost_frames"]
        finally:
            fast.cancel()
            yield recorder.stopService()
            yield pathPort.stopListening()
            yield port.stopListening()
    assert door.connects == 1 and door.queueDropped == 0 and door.badFrames == 0
    rows = indexRows(tmp_path / "door")
    seqs = [seq for _, seq, _, _ in rows]
    assert len(seqs) == door.frames
    # The true losses: the frames the camera numbered that never came (none can be skipped before the first).
    gaps = sum(later - earlier - 1 for earlier, later in zip(seqs, seqs[1:], strict=False))
    assert gaps > 0 and door.lostFrames == gaps == statusLost
    events = readEvents(tmp_path / "door" / "events.jsonl")
    reported = [event for event in events if event["event"] == "frames_lost"]
    assert sum(event["frames"] for event in reported) == door.lostFrames
    # Each run of losses: one line when it starts, one with its count when it ends.
    starts = logs.matching(" lost before frame ")
    ends = logs.matching(" lost in ")
    assert len(starts) == len(ends) == len(reported) and 2 <= len(starts) <= 4


@pytest_twisted.inlineCallbacks
def test_health_is_shown_in_status_json_and_metrics_and_kept_bounded(tmp_path):
    source = HealthySource((160, 120))
    server = protocol2Server(source, interval=0.05, name="door\n[tcpcam.record#error] a line of its own")
    server.role.health_interval_ms = 100
    port, endpoint = yield listen(server)
    recorder, door = startRecording(tmp_path, camera(endpoint), web="tcp:0:interface=127.0.0.1",
                                    webSettings=WebSettings(login=False))
    url = recorder.web.url
    try:
        yield waitFor(lambda: door.health.get("uptime_s", 0) >= 1, what="health figures")
        response, body = yield get(url + "status.json")
        status = json.loads(body)["cameras"]["door"]
        assert status["protocol"] == 2 and status["health"]["free_heap"] == 123456
        assert status["health"]["wifi_rssi"] == -61 and status["health"]["uptime_s"] >= 1
        assert 0 <= status["health_age"] < 5 and status["lost_frames"] == 0
        # The camera's words never make a line of their own.
        assert status["device"]["name"] == "door?[tcpcam.record#error] a line of its own"
        response, body = yield get(url + "metrics")
        text = body.decode()
        assert 'tcpcam_camera_free_heap_bytes{camera="door"} 123456.0' in text
        assert 'tcpcam_camera_wifi_rssi_dbm{camera="door"} -61.0' in text
        assert 'tcpcam_camera_largest_free_block_bytes{camera="door"} 65536.0' in text
        assert 'tcpcam_camera_uptime_seconds{camera="door"}' in text
        assert 'tcpcam_protocol{camera="door"} 2.0' in text and 'tcpcam_lost_frames_total{camera="door"} 0.0' in text
        # A camera that sends junk figures: kept bounded, and no metric of its own making.
        source.figures = {"free_heap": "plenty", "evil_metric": 1, "reset_cause": "r" * 500}
        source.figures.update({"x%02d" % index: index for index in range(80)})
        yield waitFor(lambda: door.health.get("free_heap") == "plenty", what="the junk figures")
        response, body = yield get(url + "status.json")
        health = json.loads(body)["cameras"]["door"]["health"]
        assert len(health) <= MAX_FIGURES and len(health.get("reset_cause", "")) <= MAX_TEXT_CHARS
        response, body = yield get(url + "metrics")
        text = body.decode()
        assert "tcpcam_camera_free_heap_bytes{" not in text and "evil_metric" not in text and "x01" not in text
    finally:
        yield recorder.stopService()
        yield port.stopListening()
    # Once disconnected, the figures are old: no gauge.
    from tcpcam.record.metrics import RecorderCollector

    names = [metric.name for metric in RecorderCollector(recorder).collect() if metric.samples]
    assert "tcpcam_camera_uptime_seconds" not in names and "tcpcam_frames" in names


@pytest_twisted.inlineCallbacks
def test_a_legacy_only_camera_is_fallen_back_to_once_and_checked_again_later(tmp_path):
    legacy = TCPCamServerFactory(PatternSource((160, 120)), pin=PIN, reactor=reactor, interval=0.02)
    port, endpoint = yield listen(legacy)
    memory = ProtocolMemory(recheck_ms=1000)
    with LogCapture(namespace="") as logs:
        recorder, door = startRecording(tmp_path, camera(endpoint, settings={"quality": 50}), memory=memory)
        try:
            yield waitFor(lambda: door.frames >= 3, what="frames with the legacy request")
            assert door.protocol == 1 and legacy.role.counters["failed_requests"] == 1
            for _ in range(2):
                dropConnections(legacy)
                connects, frames = door.connects, door.frames
                yield waitFor(lambda connects=connects, frames=frames: door.connects > connects
                              and door.frames >= frames + 3, what="frames after the reconnect")
            # Reconnects within the memory's time use the legacy request: no new wrong PIN on the camera.
            assert legacy.role.counters["failed_requests"] == 1
            yield task.deferLater(reactor, 1.0, lambda: None)
            dropConnections(legacy)
            yield waitFor(lambda: legacy.role.counters["failed_requests"] == 2, what="protocol 2 tried again")
            frames = door.frames
            yield waitFor(lambda: door.frames >= frames + 3, what="frames after the check")
        finally:
            yield recorder.stopService()
            yield port.stopListening()
    said = logs.matching("speaks only the legacy protocol")
    assert len(said) == 1 and "its settings (quality=50) need protocol 2" in said[0]
    assert door.settingsError == "the camera speaks only the legacy protocol"
    assert len(logs.matching("disconnected after")) == 3  # the three drops, not the checks
    assert door.protocol == 1 and door.health == {}
    rows = indexRows(tmp_path / "door")
    assert len(rows) == door.frames and all(seq is None and capture is None for _, seq, capture, _ in rows)
    events = readEvents(tmp_path / "door" / "events.jsonl")
    assert [event["protocol"] for event in events if event["event"] == "protocol"] == [1, 1]


@pytest_twisted.inlineCallbacks
def test_a_wrong_key_is_logged_once_and_backed_off(tmp_path):
    server = protocol2Server(PatternSource((160, 120)))
    port, endpoint = yield listen(server)
    attempts = []
    with LogCapture(namespace="") as logs:
        recorder = RecorderService(makeConfig(tmp_path, [camera(endpoint, key=OTHER_KEY)]), reactor)
        door = recorder.cameras["door"]
        policy = door._policy
        door._policy = lambda attempt: attempts.append(attempt) or policy(attempt)
        recorder.startService()
        try:
            # Five wrong keys, then the camera's throttle refuses the address: still one state.
            yield waitFor(lambda: door.connects >= 8, what="eight tries")
        finally:
            yield recorder.stopService()
            yield port.stopListening()
    assert door.frames == 0 and door.protocol is None
    assert server.role.counters["refused_blocked"] >= 1
    lines = logs.matching("disconnected after 0 frames")
    assert len(lines) == 1 and "wrong key" in lines[0] and "check the camera's key" in lines[0]
    assert not logs.matching("the camera closes the connection")
    # Each session without a frame is a failed attempt: the delay keeps growing to its cap.
    assert attempts == sorted(attempts) and len(set(attempts)) >= 7
    # No key is ever written down.
    for key in (KEY, OTHER_KEY):
        assert not any(key_text(key) in line or key.hex() in line for line in logs.lines)
    reasons = [event["reason"] for event in readEvents(tmp_path / "door" / "events.jsonl")
               if event["event"] == "disconnect"]
    assert any("wrong key" in reason for reason in reasons) and any("too many failed" in reason for reason in reasons)


@pytest_twisted.inlineCallbacks
def test_the_simulated_camera_speaks_protocol_2(tmp_path):
    recorder = RecorderService(makeConfig(tmp_path, [CameraConfig(name="simulated", endpoint="", simulated=True)]),
                               reactor)
    recorder.simulated.interval = 0.05
    recorder.startService()
    simulated = recorder.cameras["simulated"]
    try:
        yield waitFor(lambda: simulated.frames >= 3 and simulated.health, what="frames and health")
    finally:
        yield recorder.stopService()
    assert simulated.protocol == 2 and simulated.device["name"] == "simulated"
    assert simulated.camera.key is not None and recorder.config.cameras[0].key is None
    rows = indexRows(tmp_path / "simulated")
    assert rows and all(seq is not None and capture is not None for _, seq, capture, _ in rows)


class SettingsNeverApplied(TCPCamServerFactory):
    """A camera whose driver never comes back from applying settings (a hung sensor reset)."""

    def run(self, actions):
        from tcpcam.core.actions import ApplySettings

        TCPCamServerFactory.run(self, [action for action in actions if not isinstance(action, ApplySettings)])


@pytest_twisted.inlineCallbacks
def test_settings_without_an_answer_do_not_hold_the_recording(tmp_path, monkeypatch):
    monkeypatch.setattr(CameraLinkFactory, "settingsTimeout", 0.3)
    server = SettingsNeverApplied(PatternSource((160, 120)), pin=PIN, reactor=reactor, key=KEY, interval=0.02)
    port, endpoint = yield listen(server)
    with LogCapture() as logs:
        recorder, door = startRecording(tmp_path, camera(endpoint, settings={"framesize": "QVGA"}))
        try:
            yield waitFor(lambda: door.frames >= 3, what="frames without the settings")
        finally:
            yield recorder.stopService()
            yield port.stopListening()
    assert door.settingsError == "no answer in 0.3 s"
    lines = logs.matching("not applied")
    assert len(lines) == 1 and "settings framesize=QVGA not applied: no answer in 0.3 s" in lines[0]
    assert {pictureSize(jpeg) for _, _, _, jpeg in indexRows(tmp_path / "door")} == {(160, 120)}


class HangUpFirst(Protocol):
    """Hangs up the first connections at once, then carries the rest to the camera (a camera still booting)."""

    def connectionMade(self):
        factory = self.factory
        if factory.hangUps > 0:
            factory.hangUps -= 1
            self.transport.loseConnection()
            return
        self.peer = None
        self.transport.pauseProducing()
        connectProtocol(TCP4ClientEndpoint(reactor, "127.0.0.1", factory.port), _Relay(self)).addCallback(
            self._connected)

    def _connected(self, relay):
        self.peer = relay
        self.transport.resumeProducing()

    def dataReceived(self, data):
        self.peer.transport.write(data)

    def connectionLost(self, reason):
        if getattr(self, "peer", None) is not None:
            self.peer.transport.loseConnection()


class _Relay(Protocol):
    def __init__(self, back):
        self.back = back

    def dataReceived(self, data):
        self.back.transport.write(data)

    def connectionLost(self, reason):
        self.back.transport.loseConnection()


@pytest_twisted.inlineCallbacks
def test_a_protocol_2_camera_that_hung_up_once_is_not_taken_for_legacy_for_a_day(tmp_path):
    server = protocol2Server(PatternSource((160, 120)), legacy=False)
    port, endpoint = yield listen(server)
    path = Factory.forProtocol(HangUpFirst)
    path.hangUps, path.port = 1, port.getHost().port
    pathPort, pathEndpoint = yield listen(path)
    memory = ProtocolMemory()
    recorder, door = startRecording(tmp_path, camera(pathEndpoint), memory=memory)
    try:
        # The hang-up looks like a legacy camera; its legacy request is refused (it serves protocol 2 only),
        # so protocol 2 is tried again at once rather than in a day.
        yield waitFor(lambda: door.frames >= 3, what="frames over protocol 2")
    finally:
        yield recorder.stopService()
        yield pathPort.stopListening()
        yield port.stopListening()
    assert door.protocol == 2 and door.connects == 3
    assert memory.protocol(pathEndpoint, int(reactor.seconds() * 1000)) == 2
    events = readEvents(tmp_path / "door" / "events.jsonl")
    assert [event["protocol"] for event in events if event["event"] == "protocol"] == [1, 2]
