"""One scenario table, two drivers of the same core: the Twisted reference server and the firmware.

Each scenario is played by blocking loopback clients in a worker thread
against either server and must end the same way on both: the same frames
to the same clients, the same connections closed, the same lines logged.
"""

import pytest
import pytest_twisted
from firmware_support import needs_micropython, read_frames, write_jpegs
from scenario_support import (
    FRAME_BYTES,
    FirmwareDriver,
    TwistedDriver,
    connect,
    refused,
    wait_for_line,
)
from twisted.internet import threads


def wrong_pin_then_right_pin(driver, frames):
    wrong_refused = refused(driver.port, b"9999\n3\n")
    with connect(driver.port, b"1235\n3\n") as right:
        received = read_frames(right)
    wait_for_line(driver, "got its 3 frames")
    return {"wrong PIN closed without a byte": wrong_refused, "frames to the right PIN": len(received),
            "frames are the camera's": set(received) <= set(frames),
            "rejection logged": bool(wait_for_line(driver, "wrong PIN (4 bytes)"))}


def full_server(driver, frames):
    with connect(driver.port, b"1235\n0\n") as first:
        wait_for_line(driver, "streams without end")
        second_refused = refused(driver.port)
        line = wait_for_line(driver, "server full (1 client)")
        received = read_frames(first, 2, until_closed=False)
    return {"extra connection closed without a byte": second_refused, "refusal logged": bool(line),
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
