"""The firmware under the real unix MicroPython, with the stand-in camera, over loopback.

What both servers share is played by tests/test_scenarios.py; these are the board's own.
"""

import re
import shutil
import statistics
import subprocess

import pytest
import pytest_twisted
from firmware_support import (
    TEST_JPEG,
    WAIT,
    Firmware,
    connect,
    fetch_raw,
    needs_micropython,
    read_frames,
    write_jpegs,
)
from twisted.internet import defer

from tcpcam.core.framing import FrameDecoder

pytestmark = needs_micropython


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    """Three distinct 3 KB JPEG files and their contents."""
    folder = tmp_path_factory.mktemp("frames")
    return folder, write_jpegs(folder, 3, 3000)


@pytest.fixture(scope="module")
def firmware(tmp_path_factory, frames):
    """One firmware serving the three frames, shared by the tests that do not change it."""
    with Firmware(tmp_path_factory.mktemp("fw"), frames_dir=frames[0]) as running:
        yield running


def test_original_client_sends_pin_then_command(firmware, frames):
    received = fetch_raw(firmware.port, [b"1235", b"5"])
    assert len(received) == 5
    assert set(received) <= set(frames[1])


def test_merged_pin_and_command(firmware, frames):
    received = fetch_raw(firmware.port, [b"12355"])
    assert len(received) == 5
    assert set(received) <= set(frames[1])


def test_terminated_tokens(firmware, frames):
    assert len(fetch_raw(firmware.port, [b"1235\r\n2\r\n"])) == 2


def test_repeated_wrong_pins_block_the_address(tmp_path):
    with Firmware(tmp_path, {"source": "hello"}) as firmware:
        for _ in range(5):
            with connect(firmware.port) as sock:
                sock.sendall(b"0000\n")
                assert sock.recv(10) == b""
        with connect(firmware.port) as sock:
            sock.sendall(b"1235\n1\n")
            try:
                assert sock.recv(10) == b""
            except ConnectionResetError:
                pass
        firmware.wait_for("too many failed requests")


def test_bad_command_closes(firmware):
    with connect(firmware.port) as sock:
        sock.sendall(b"1235\nfive\n")
        assert sock.recv(100) == b""
    firmware.wait_for("bad command")


def test_stream_until_the_client_leaves(firmware):
    with connect(firmware.port) as sock:
        sock.sendall(b"1235\n0\n")
        got = read_frames(sock, 12, until_closed=False)
    assert len(got) == 12
    firmware.wait_for("left after")


@pytest_twisted.inlineCallbacks
def test_two_clients_at_once_with_the_twisted_client(firmware, frames):
    from twisted.internet import reactor

    from tcpcam.client import fetch

    seen = ([], [])
    endpoint = "tcp:host=127.0.0.1:port=%d" % firmware.port
    results = yield defer.gatherResults([
        fetch(reactor, endpoint, "1235", 4, lambda frame: seen[0].append(bytes(frame))),
        fetch(reactor, endpoint, "1235", 6, lambda frame: seen[1].append(bytes(frame))),
    ]).addTimeout(20, reactor)
    assert [summary.frames for summary in results] == [4, 6]
    assert len(seen[0]) == 4 and len(seen[1]) == 6
    assert set(seen[0] + seen[1]) <= set(frames[1])
    assert results[1].bytes == sum(len(frame) for frame in seen[1])


def test_handshake_timeout(tmp_path):
    with Firmware(tmp_path, {"handshake_timeout_ms": 300, "source": "hello"}) as firmware:
        with connect(firmware.port) as sock:
            sock.sendall(b"1235\n")
            assert sock.recv(10) == b""
        assert "not finished in time" in firmware.wait_for("rejected")


def test_camera_init_failure_is_retried_after_deinit(tmp_path):
    env = {"TCPCAM_CAMERA_INIT_FAIL": "2"}
    with Firmware(tmp_path, {"camera_retry_ms": 50}, env=env) as firmware:
        assert "deinit done" in firmware.wait_for("camera: init failed")
        received = fetch_raw(firmware.port, [b"1235\n2\n"])
        assert received == [TEST_JPEG] * 2
        firmware.wait_for("camera: started")
        assert firmware.count("camera: init failed") == 2


def test_camera_settings_reach_the_driver(tmp_path):
    config = {"framesize": "qvga", "quality": 20, "flip": True, "mirror": True, "stats_every": 2}
    with Firmware(tmp_path, config) as firmware:
        assert "QVGA, quality 20%" in firmware.wait_for("camera: started")
        assert len(fetch_raw(firmware.port, [b"1235\n4\n"])) == 4
        assert "alloc_after_gc=" in firmware.wait_for("stats: frames=2 ")


@pytest.mark.parametrize(("source", "expected"), [("hello", b"Hello World"), ("jpeg", TEST_JPEG)])
def test_hello_and_jpeg_sources(tmp_path, source, expected):
    with Firmware(tmp_path, {"source": source}) as firmware:
        assert fetch_raw(firmware.port, [b"1235\n2\n"]) == [expected, expected]


def test_bad_config_keys_give_one_line_each_and_defaults(tmp_path):
    config = {"source": "hello", "quality": 101, "colour": "red", "flip": "yes", "max_clients": 0}
    with Firmware(tmp_path, config) as firmware:
        assert fetch_raw(firmware.port, [b"1235\n1\n"]) == [b"Hello World"]
        lines = [line for line in firmware.drain() if "config:" in line]
    assert len(lines) == 4
    assert any("bad quality 101" in line and "using 85" in line for line in lines)
    assert any("unknown key 'colour'" in line for line in lines)
    assert any("bad flip" in line for line in lines)
    assert any("bad max_clients 0" in line and "using 8" in line for line in lines)


def test_mpy_bundle_serves_too(tmp_path):
    with Firmware(tmp_path, {"source": "hello"}, mpy=True) as firmware:
        assert (firmware.workdir / "device" / "lib" / "tcpcam_fw" / "server.mpy").is_file()
        assert not (firmware.workdir / "device" / "lib" / "tcpcam_fw" / "server.py").exists()
        assert fetch_raw(firmware.port, [b"1235", b"3"]) == [b"Hello World"] * 3


def test_no_client_gets_a_copy_of_the_frame(tmp_path):
    # The firmware's stats lines say what was allocated between two gc.collect() calls.
    size = 100_000
    write_jpegs(tmp_path / "frames", 2, size)
    config = {"interval_ms": 20, "stats_every": 4}
    with Firmware(tmp_path / "fw", config, frames_dir=tmp_path / "frames") as firmware:
        clients = [connect(firmware.port) for _ in range(3)]
        try:
            for sock in clients:
                sock.sendall(b"1235\n0\n")
            decoders, counts = [FrameDecoder() for _ in clients], [0] * len(clients)
            while min(counts) < 30:
                for index, sock in enumerate(clients):
                    data = sock.recv(65536)
                    assert data, "the firmware closed a stream"
                    counts[index] += len(decoders[index].feed(data))
        finally:
            for sock in clients:
                sock.close()
        garbage = []
        for line in firmware.drain():
            match = re.search(r"streaming=3 alloc_before_gc=(\d+) alloc_after_gc=(\d+)", line)
            if match:
                garbage.append(int(match.group(1)) - int(match.group(2)))
    assert len(garbage) >= 3, firmware.lines
    # One new frame per cycle from the camera; a copy per client would add three more.
    assert statistics.median(garbage) < 1.5 * size


@pytest.mark.skipif(shutil.which("ss") is None, reason="needs ss (iproute2) to see socket timers")
def test_keepalive_is_set_on_each_client(tmp_path):
    with Firmware(tmp_path, {"source": "hello", "keepalive_idle": 7}) as firmware:
        with connect(firmware.port) as sock:
            sock.sendall(b"1235\n0\n")
            assert read_frames(sock, 1, until_closed=False) == [b"Hello World"]
            sockets = subprocess.run(["ss", "-tnoH", "state", "established", "sport = :%d" % firmware.port],
                                     capture_output=True, text=True, timeout=WAIT, check=True).stdout
        assert "timer:(keepalive," in sockets
        assert not firmware.count("keep-alive")
