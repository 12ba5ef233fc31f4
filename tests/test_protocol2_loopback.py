"""Protocol 2 over real loopback sockets: the Twisted client against the reference server, and the fall back."""

import io
import time

import pytest
import pytest_twisted
from firmware_support import Firmware, needs_micropython, write_jpegs
from server_support import LogCapture, listening
from twisted.internet import defer, reactor

from tcpcam.client.camera import Camera2Protocol, CameraFrame, NotSupported, RequestRefused, connectCamera
from tcpcam.core.client_role2 import ProtocolMemory
from tcpcam.core.errors import ServerClosed
from tcpcam.core.mac import key_text
from tcpcam.server import TCPCamServerFactory
from tcpcam.server.sources.files import HelloSource
from tcpcam.server.sources.pattern import PatternSource

KEY = bytes(range(7, 27))


def picture_size(jpeg):
    from PIL import Image

    return Image.open(io.BytesIO(jpeg)).size


def server(source=None, key=KEY, **settings):
    settings.setdefault("interval", 0.01)
    return TCPCamServerFactory(source or PatternSource((320, 240)), pin="1235", reactor=reactor, key=key,
                               name="door", **settings)


@defer.inlineCallbacks
def open_camera(factory, key=KEY, memory=None):
    port = yield listening(factory)
    endpoint = "tcp:host=127.0.0.1:port=%d" % port.getHost().port
    try:
        camera = yield connectCamera(reactor, endpoint, key=key_text(key) if key else None, pin="1235",
                                     memory=memory or ProtocolMemory(), frameTimeout=10)
    except Exception:
        yield port.stopListening()
        raise
    return port, camera


@pytest_twisted.inlineCallbacks
def test_settings_change_the_picture_and_frames_carry_their_facts():
    port, camera = yield open_camera(server())
    try:
        assert not camera.legacy and camera.device["name"] == "door" and camera.device["sensor"] == "simulated"
        assert camera.settings["framesize"] == "QVGA"
        settings = yield camera.set(framesize="SVGA", quality=30)
        assert settings["framesize"] == "SVGA" and settings["quality"] == 30
        picture = yield camera.snapshot()
        assert picture_size(picture) == (800, 600)
        frames = []
        camera.onFrame = lambda frame: frames.append((frame.seq, frame.missed, frame.wall_time, len(frame.payload)))
        count = yield camera.stream(5)
        assert count == 5
        seqs = [seq for seq, _, _, _ in frames]
        assert seqs == sorted(seqs) and len(set(seqs)) == 5
        assert all(abs(wall - time.time()) < 60 for _, _, wall, _ in frames)
    finally:
        yield camera.close()
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_a_bad_setting_is_refused_with_the_reason_and_loses_nothing():
    port, camera = yield open_camera(server())
    try:
        with pytest.raises(RequestRefused, match="bad quality 0"):
            yield camera.set(quality=0)
        picture = yield camera.snapshot()
        assert picture_size(picture) == (320, 240)
    finally:
        yield camera.close()
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_pause_still_gives_snapshots_and_a_rate_thins_the_stream():
    port, camera = yield open_camera(server())
    try:
        frames = []
        camera.onFrame = lambda frame: frames.append(frame.seq)
        camera.stream(0)
        yield camera.rate(every=4)
        yield waitFor(lambda: len(frames) >= 3)
        gaps = {b - a for a, b in zip(frames[1:], frames[2:], strict=False)}
        assert gaps == {4}
        yield camera.pause()
        count = len(frames)
        picture = yield camera.snapshot()
        assert picture[:2] == b"\xff\xd8"
        assert len(frames) <= count + 1
    finally:
        yield camera.close()
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_settings_changed_by_one_client_reach_the_others():
    factory = server()
    port, first = yield open_camera(factory)
    _, second = yield open_camera_on(port)
    try:
        seen = []
        second.connection.onSettings = seen.append
        yield first.set(brightness=2)
        yield waitFor(lambda: seen)
        assert seen[-1]["brightness"] == 2
    finally:
        yield first.close()
        yield second.close()
        yield port.stopListening()


@defer.inlineCallbacks
def open_camera_on(port):
    endpoint = "tcp:host=127.0.0.1:port=%d" % port.getHost().port
    camera = yield connectCamera(reactor, endpoint, key=KEY, pin="1235", memory=ProtocolMemory())
    return port, camera


@pytest_twisted.inlineCallbacks
def test_a_wrong_key_is_told_and_the_legacy_pin_still_works():
    port = yield listening(server(HelloSource()))
    endpoint = "tcp:host=127.0.0.1:port=%d" % port.getHost().port
    try:
        with pytest.raises(ServerClosed, match="wrong key"):
            yield connectCamera(reactor, endpoint, key=bytes(20), memory=ProtocolMemory())
        camera = yield connectCamera(reactor, endpoint, pin="1235")
        assert camera.legacy
        picture = yield camera.snapshot()
        assert picture == b"Hello World"
    finally:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_a_legacy_server_is_fallen_back_to_once_and_remembered():
    legacy = TCPCamServerFactory(HelloSource(), pin="1235", reactor=reactor, interval=0.01)
    memory = ProtocolMemory()
    with LogCapture() as logged:
        port, camera = yield open_camera(legacy, memory=memory)
    try:
        assert camera.legacy
        frames = []
        camera.onFrame = lambda frame: frames.append(bytes(frame.payload))
        count = yield camera.stream(3)
        assert count == 3 and frames == [b"Hello World"] * 3
        with pytest.raises(NotSupported, match="needs protocol 2"):
            camera.set(quality=50)
        assert len(logged.matching("speaks only the legacy protocol")) == 1
        failures = legacy.role.counters["failed_requests"]
        _, again = yield open_camera_on_with(port, memory)
        assert again.legacy and legacy.role.counters["failed_requests"] == failures
    finally:
        yield port.stopListening()


@defer.inlineCallbacks
def open_camera_on_with(port, memory):
    endpoint = "tcp:host=127.0.0.1:port=%d" % port.getHost().port
    camera = yield connectCamera(reactor, endpoint, key=KEY, pin="1235", memory=memory)
    return port, camera


@pytest_twisted.inlineCallbacks
def test_a_server_that_refuses_legacy_requests_tells_protocol_2_clients_only():
    factory = server(HelloSource(), legacy=False)
    port = yield listening(factory)
    endpoint = "tcp:host=127.0.0.1:port=%d" % port.getHost().port
    try:
        legacy = yield connectCamera(reactor, endpoint, pin="1235")
        with pytest.raises(Exception, match="before the first frame"):
            yield legacy.snapshot()
        camera = yield connectCamera(reactor, endpoint, key=KEY, memory=ProtocolMemory())
        picture = yield camera.snapshot()
        assert picture == b"Hello World"
        yield camera.close()
    finally:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_a_slow_consumer_holds_the_stream():
    port, camera = yield open_camera(server())
    try:
        held = defer.Deferred()
        seen = []

        def consume(frame: CameraFrame):
            seen.append(frame.seq)
            return held if len(seen) == 1 else None

        camera.onFrame = consume
        done = camera.stream(3)
        yield waitFor(lambda: seen)
        assert isinstance(camera.connection, Camera2Protocol) and camera.connection.holding
        assert len(seen) == 1
        held.callback(None)
        count = yield done
        assert count == 3 and len(seen) == 3
    finally:
        yield camera.close()
        yield port.stopListening()


@defer.inlineCallbacks
def waitFor(predicate, timeout=10.0, step=0.01):
    from twisted.internet.task import deferLater

    for _ in range(int(timeout / step)):
        if predicate():
            return
        yield deferLater(reactor, step, lambda: None)
    raise AssertionError("condition not met within %.1f s" % timeout)


@needs_micropython
@pytest_twisted.inlineCallbacks
def test_the_firmware_speaks_protocol_2_beside_legacy_clients(tmp_path):
    folder = tmp_path / "frames"
    write_jpegs(folder, 3, 2000)
    firmware = Firmware(tmp_path / "fw", {"key": key_text(KEY), "interval_ms": 20}, frames_dir=folder)
    firmware.start()
    try:
        endpoint = "tcp:host=127.0.0.1:port=%d" % firmware.port
        camera = yield connectCamera(reactor, endpoint, key=key_text(KEY), memory=ProtocolMemory(), frameTimeout=10)
        assert not camera.legacy and camera.device["name"] == "tcpcam" and camera.settings["quality"] == 85
        frames = []
        camera.onFrame = lambda frame: frames.append((frame.seq, frame.missed, bytes(frame.payload[:2])))
        count = yield camera.stream(4)
        assert count == 4 and all(start == b"\xff\xd8" for _, _, start in frames)
        picture = yield camera.snapshot()
        assert picture[:2] == b"\xff\xd8"
        legacy = yield connectCamera(reactor, endpoint, pin="1235")
        assert (yield legacy.snapshot())[:2] == b"\xff\xd8"
        yield camera.close()
        with pytest.raises(ServerClosed, match="wrong key"):
            yield connectCamera(reactor, endpoint, key=bytes(20), memory=ProtocolMemory())
    finally:
        firmware.stop()
