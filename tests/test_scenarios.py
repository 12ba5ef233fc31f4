"""One scenario table, two drivers of the same core: the Twisted reference server and the firmware.

Each scenario is played by blocking loopback clients in a worker thread
against either server and must end the same way on both: the same frames
to the same clients, the same connections closed, the same lines logged.
"""

import socket
import time

import pytest
import pytest_twisted
from firmware_support import Firmware, needs_micropython, read_frames, write_jpegs
from server_support import LogCapture, listening
from twisted.internet import defer, reactor, threads
from zope.interface import implementer

from tcpcam.server import IFrameSource, TCPCamServerFactory
from tcpcam.server.sources.base import FrameUnavailable
from tcpcam.server.sources.files import DirectorySource

#: Bound on every socket operation and wait, in seconds.
WAIT = 10.0
#: Bytes of each test frame.
FRAME_BYTES = 3000


@implementer(IFrameSource)
class StandInCamera:
    """The JPEG files of a folder, failing the capture numbers in ``fail``, as the board's stand-in does."""

    def __init__(self, folder, fail=()):
        self.files = DirectorySource(str(folder))
        self.fail = set(fail)
        self.captures = 0

    def nextFrame(self):
        self.captures += 1
        if self.captures in self.fail:
            raise FrameUnavailable("the camera gave no frame")
        return self.files.nextFrame()


class TwistedDriver:
    """The reference server in this process, on the test's reactor."""

    name = "twisted"

    def __init__(self, folder, fail, settings):
        self.source = StandInCamera(folder, fail)
        seconds = {key[:-3]: value / 1000 for key, value in settings.items() if key.endswith("_ms")}
        self.factory = TCPCamServerFactory(
            self.source, pin="1235", reactor=reactor, interval=seconds.get("interval", 0.02),
            maxClients=settings.get("max_clients", 8), sendTimeout=seconds.get("send_timeout", 30),
            handshakeTimeout=seconds.get("handshake_timeout", 3), sourceRetryDelay=0.01)
        self.log = LogCapture()
        self.port = None

    @defer.inlineCallbacks
    def start(self):
        self.log.__enter__()
        listeningPort = yield listening(self.factory)
        self._listening = listeningPort
        self.port = listeningPort.getHost().port

    @defer.inlineCallbacks
    def stop(self):
        self.log.__exit__()
        yield self._listening.stopListening()

    def lines(self):
        return list(self.log.messages)


class FirmwareDriver:
    """The firmware under the unix MicroPython, with its stand-in camera."""

    name = "firmware"

    def __init__(self, folder, fail, settings, workdir):
        config = {"interval_ms": 20, "chunk_bytes": 1024}
        config.update(settings)
        env = {"TCPCAM_CAMERA_FAIL": ",".join(str(number) for number in fail)} if fail else {}
        self.firmware = Firmware(workdir, config, frames_dir=folder, env=env)
        self.port = None

    def start(self):
        self.firmware.start()
        self.port = self.firmware.port

    def stop(self):
        self.firmware.stop()

    def lines(self):
        return self.firmware.drain()


def connect(port, request=None, receive_buffer=None):
    sock = socket.socket()
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(WAIT)
    sock.connect(("127.0.0.1", port))
    if request is not None:
        sock.sendall(request)
    return sock


def closed_without_a_byte(sock):
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


def wait_for_line(driver, text):
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for line in driver.lines():
            if text in line:
                return line
        time.sleep(0.02)
    raise AssertionError("no %r in:\n%s" % (text, "\n".join(driver.lines())))


def wrong_pin_then_right_pin(driver, frames):
    with connect(driver.port, b"9999\n3\n") as wrong:
        refused = closed_without_a_byte(wrong)
    with connect(driver.port, b"1235\n3\n") as right:
        received = read_frames(right)
    wait_for_line(driver, "got its 3 frames")
    return {"wrong PIN closed without a byte": refused, "frames to the right PIN": len(received),
            "frames are the camera's": set(received) <= set(frames),
            "rejection logged": bool(wait_for_line(driver, "wrong PIN (4 bytes)"))}


def full_server(driver, frames):
    with connect(driver.port, b"1235\n") as first:
        with connect(driver.port) as second:
            refused = closed_without_a_byte(second)
        line = wait_for_line(driver, "server full (1 client)")
        first.sendall(b"2\n")
        received = read_frames(first)
    return {"extra connection closed without a byte": refused, "refusal logged": bool(line),
            "frames to the first client": len(received)}


def stalled_reader(driver, frames):
    stuck = connect(driver.port, b"1235\n0\n", receive_buffer=4096)
    try:
        wait_for_line(driver, "streams without end")
        with connect(driver.port, b"1235\n5\n") as reader:
            received = read_frames(reader)
        dropped = wait_for_line(driver, "took no frame for 0.5 s")
    finally:
        stuck.close()
    return {"frames to the reader": len(received), "the stuck client is dropped": "dropping" in dropped}


def failing_camera(driver, frames):
    with connect(driver.port, b"1235\n3\n") as client:
        received = read_frames(client)
    wait_for_line(driver, "recovered after 2 failed frames")
    failures = [line for line in driver.lines() if "no frame from the source" in line]
    return {"frames despite the failures": len(received), "failures logged": len(failures)}


def interval_zero(driver, frames):
    with connect(driver.port, b"12355") as client:
        received = read_frames(client)
    return {"frames to the original client's merged request": len(received),
            "frames are the camera's": set(received) <= set(frames)}


#: name: (scenario, capture numbers that fail, settings, the outcome both drivers must give).
SCENARIOS = {
    "wrong PIN then right PIN": (wrong_pin_then_right_pin, (), {}, {
        "wrong PIN closed without a byte": True, "frames to the right PIN": 3, "frames are the camera's": True,
        "rejection logged": True}),
    "full server": (full_server, (), {"max_clients": 1}, {
        "extra connection closed without a byte": True, "refusal logged": True, "frames to the first client": 2}),
    "stalled reader": (stalled_reader, (), {"send_timeout_ms": 500, "interval_ms": 0}, {
        "frames to the reader": 5, "the stuck client is dropped": True}),
    "failing camera": (failing_camera, (1, 2), {}, {"frames despite the failures": 3, "failures logged": 1}),
    "interval 0": (interval_zero, (), {"interval_ms": 0}, {
        "frames to the original client's merged request": 5, "frames are the camera's": True}),
}


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    return folder, write_jpegs(folder, 3, FRAME_BYTES)


def _big_frames(tmp_path):
    folder = tmp_path / "big"
    return folder, write_jpegs(folder, 2, 200_000)


@pytest.mark.parametrize("name", list(SCENARIOS))
@pytest_twisted.inlineCallbacks
def test_the_twisted_server(name, frames, tmp_path):
    scenario, fail, settings, expected = SCENARIOS[name]
    folder, contents = _big_frames(tmp_path) if name == "stalled reader" else frames
    driver = TwistedDriver(folder, fail, settings)
    yield driver.start()
    try:
        outcome = yield threads.deferToThread(scenario, driver, contents)
    finally:
        yield driver.stop()
    assert outcome == expected


@needs_micropython
@pytest.mark.parametrize("name", list(SCENARIOS))
def test_the_firmware(name, frames, tmp_path):
    scenario, fail, settings, expected = SCENARIOS[name]
    folder, contents = _big_frames(tmp_path) if name == "stalled reader" else frames
    driver = FirmwareDriver(folder, fail, settings, tmp_path / "fw")
    driver.start()
    try:
        outcome = scenario(driver, contents)
    finally:
        driver.stop()
    assert outcome == expected
