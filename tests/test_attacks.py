"""The attacks of issue 12 on loopback, against both servers: each is bounded to a few seconds.

Guessing the PIN (one address, many addresses, the unterminated-guess trick),
locking clients out with connections that never send a PIN, and growing the
log. The rules are the core's, so the Twisted server and the firmware must
hold the same way.
"""

import threading
import time

import pytest
import pytest_twisted
from firmware_support import needs_micropython, read_frames, write_jpegs
from scenario_support import FirmwareDriver, TwistedDriver, connect, refused
from twisted.internet import threads

from tcpcam.core.limits import PENDING_PER_ADDRESS

#: How long the lock-out attack runs, in seconds.
ATTACK_SECONDS = 4.0


def unterminated_guesses(driver, guesses, source):
    """Issue 12's trick: guess + "0", a pause, then blanks up to the token limit, never terminated."""
    outcomes = []
    for guess in guesses:
        try:
            with connect(driver.port, source=source) as sock:
                sock.sendall(guess + b"0")
                time.sleep(0.15)
                sock.sendall(b" " * 123)
                data = sock.recv(10)
        except (ConnectionResetError, BrokenPipeError):
            data = b""
        outcomes.append("frames" if data else "closed")
    return outcomes


def guessing_from_one_address(driver):
    source = "127.0.0.21"
    outcomes = unterminated_guesses(driver, [b"%04d" % number for number in range(7)], source)
    right_pin_refused = refused(driver.port, b"1235\n1\n", source)
    other_served = len(read_frames(connect(driver.port, b"1235\n1\n", source="127.0.0.22")))
    return {"wrong guesses": outcomes, "right PIN from the guesser refused": right_pin_refused,
            "frames to another address": other_served}


def guessing_from_many_addresses(driver):
    for index in range(300):
        refused(driver.port, b"0000\n1\n", "127.0.%d.%d" % (1 + index // 200, 1 + index % 200))
    rejections = [line for line in driver.lines() if "wrong PIN" in line]
    return {"guesses the server answered": min(len(rejections), 20), "over the total budget": len(rejections) > 20}


def silent_sockets_lock_nobody_out(driver):
    stop = threading.Event()
    opened = [0]

    def attack():
        sockets = []
        while not stop.is_set():
            try:
                sockets.append(connect(driver.port, source="127.0.0.31"))
                opened[0] += 1
            except OSError:
                pass
            while len(sockets) > 200:
                sockets.pop(0).close()
        for sock in sockets:
            sock.close()

    attacker = threading.Thread(target=attack, daemon=True)
    attacker.start()
    served = {"127.0.0.32": [0, 0], "127.0.0.31": [0, 0]}
    deadline = time.monotonic() + ATTACK_SECONDS
    try:
        while time.monotonic() < deadline:
            for source, counts in served.items():
                counts[1] += 1
                try:
                    with connect(driver.port, b"1235\n1\n", source=source) as sock:
                        counts[0] += len(read_frames(sock, 1)) == 1
                except OSError:
                    pass
    finally:
        stop.set()
        attacker.join(10)
    other, same = (counts[0] / counts[1] for counts in served.values())
    return {"another address served at least 95 %": other >= 0.95, "the same address served at least 50 %": same >= 0.5,
            "the attack kept more sockets open than its pending places": opened[0] > 3 * PENDING_PER_ADDRESS}


def refusals_do_not_flood_the_log(driver):
    before = len(driver.lines())
    with connect(driver.port, b"1235\n0\n") as streaming:
        read_frames(streaming, 1, until_closed=False)
        for _ in range(1000):
            refused(driver.port, source="127.0.0.41")
    lines = [line for line in driver.lines()[before:] if "127.0.0.41" in line]
    return {"lines for 1000 refusals": len(lines)}


#: name: (attack, settings, the outcome both servers must give).
ATTACKS = {
    "guessing from one address": (guessing_from_one_address, {}, {
        "wrong guesses": ["closed"] * 7, "right PIN from the guesser refused": True, "frames to another address": 1}),
    "guessing from many addresses": (guessing_from_many_addresses, {}, {
        "guesses the server answered": 20, "over the total budget": False}),
    "silent sockets": (silent_sockets_lock_nobody_out, {}, {
        "another address served at least 95 %": True, "the same address served at least 50 %": True,
        "the attack kept more sockets open than its pending places": True}),
    "log flood": (refusals_do_not_flood_the_log, {"max_clients": 1}, {"lines for 1000 refusals": 1}),
}


@pytest.fixture(scope="module")
def frames(tmp_path_factory):
    folder = tmp_path_factory.mktemp("frames")
    write_jpegs(folder, 2, 2000)
    return folder


@pytest.mark.parametrize("name", list(ATTACKS))
@pytest_twisted.inlineCallbacks
def test_the_twisted_server_holds(name, frames):
    attack, settings, expected = ATTACKS[name]
    driver = TwistedDriver(frames, (), settings)
    yield driver.start()
    try:
        outcome = yield threads.deferToThread(attack, driver)
    finally:
        yield driver.stop()
    assert outcome == expected


@needs_micropython
@pytest.mark.parametrize("name", list(ATTACKS))
def test_the_firmware_holds(name, frames, tmp_path):
    attack, settings, expected = ATTACKS[name]
    driver = FirmwareDriver(frames, (), settings, tmp_path / "fw")
    driver.start()
    try:
        outcome = attack(driver)
    finally:
        driver.stop()
    assert outcome == expected
