"""``tcpcam get --key``: protocol 2 with the legacy fall back, -v frame facts and --fps, as a real process."""

import os
import re
import sys

import pytest_twisted
from client_support import WAIT, Collected
from server_support import listening
from twisted.internet import defer, reactor, task

from tcpcam.core.mac import key_text
from tcpcam.server import TCPCamServerFactory
from tcpcam.server.sources.pattern import PatternSource

KEY_BYTES = bytes(range(100, 120))
KEY = key_text(KEY_BYTES)
FACTS = re.compile(r"^frame (\d+): (\d+) bytes, seq (\d+), captured ([\d.]+) s, wall (\S+), missed (\d+)$")


def get(*argv, env=None):
    """Start ``python -m tcpcam.cli.get ARGV`` (no $TCPCAM_KEY unless given); returns its Collected."""
    environment = {name: value for name, value in os.environ.items() if name != "TCPCAM_KEY"}
    environment.update(env or {}, PYTHONUNBUFFERED="1")
    collected = Collected()
    reactor.spawnProcess(collected, sys.executable, [sys.executable, "-m", "tcpcam.cli.get", *map(str, argv)],
                         env=environment)
    return collected


@defer.inlineCallbacks
def ended(collected, timeout=WAIT):
    """Wait for the child's end (killed after ``timeout`` s)."""
    try:
        yield collected.ended.addTimeout(timeout, reactor)
    except defer.TimeoutError:
        collected.transport.signalProcess("KILL")
        raise
    return collected


@defer.inlineCallbacks
def until(predicate, what):
    """Poll ``predicate`` every 10 ms for at most WAIT seconds."""
    for _ in range(int(WAIT * 100)):
        if predicate():
            return
        yield task.deferLater(reactor, 0.01, lambda: None)
    raise AssertionError("no %s within %g s" % (what, WAIT))


def server(**options):
    return TCPCamServerFactory(PatternSource((160, 120)), reactor=reactor, interval=0.01, **options)


@pytest_twisted.inlineCallbacks
def test_frames_over_protocol2_with_their_facts(tmp_path):
    port = yield listening(server(key=KEY_BYTES, legacy=False))
    try:
        done = yield ended(get("127.0.0.1", port.getHost().port, "0000", 3, tmp_path / "out.jpg",
                               "--key", KEY, "-v"))
    finally:
        yield port.stopListening()
    err = done.err.decode()
    assert done.status == 0, err
    facts = [FACTS.match(line) for line in err.splitlines() if line.startswith("frame ")]
    assert len(facts) == 3 and all(facts), err
    numbers = [int(match.group(1)) for match in facts]
    seqs = [int(match.group(3)) for match in facts]
    assert numbers == [1, 2, 3] and seqs == sorted(seqs) and len(set(seqs)) == 3
    assert sum(int(match.group(2)) for match in facts) == (tmp_path / "out.jpg").stat().st_size
    assert "3 frames" in err.splitlines()[-1]


@pytest_twisted.inlineCallbacks
def test_a_legacy_camera_is_asked_with_the_pin():
    port = yield listening(server(pin="4321"))
    try:
        done = yield ended(get("127.0.0.1", port.getHost().port, "4321", 2, "--key", KEY, "-v", "--fps", "5",
                               "--pause", "0"))
    finally:
        yield port.stopListening()
    err = done.err.decode()
    assert done.status == 0, err
    assert "speaks only the legacy protocol: --fps is not applied" in err
    lines = [line for line in err.splitlines() if line.startswith("frame ")]
    sizes = [int(re.match(r"^frame %d: (\d+) bytes$" % number, line).group(1))
             for number, line in enumerate(lines, 1)]
    assert len(sizes) == 2 and sum(sizes) == len(done.out), err
    assert done.out.startswith(b"\xff\xd8")


@pytest_twisted.inlineCallbacks
def test_fps_sets_this_clients_rate_on_the_camera():
    factory = server(key=KEY_BYTES)
    port = yield listening(factory)
    child = get("127.0.0.1", port.getHost().port, "1235", 0, "-v", "--fps", "2.5", "-q",
                env={"TCPCAM_KEY": KEY})
    try:
        yield until(lambda: b"frame 1:" in child.err or child.status is not None, "first frame")
        rates = [factory.role.session(conn).max_fps for conn in factory.role.connections()]
        assert rates == [2.5], child.err
        child.transport.signalProcess("INT")
        yield ended(child)
    finally:
        yield port.stopListening()
    assert child.status == 130, child.err


@pytest_twisted.inlineCallbacks
def test_a_wrong_key_is_one_line_and_status_1():
    port = yield listening(server(key=KEY_BYTES, legacy=False))
    try:
        done = yield ended(get("127.0.0.1", port.getHost().port, "1235", 1, "--key", key_text(bytes(20))))
    finally:
        yield port.stopListening()
    assert done.status == 1 and done.out == b""
    assert done.err.decode().count("\n") == 1 and "key" in done.err.decode(), done.err


@pytest_twisted.inlineCallbacks
def test_fps_without_a_key_and_a_bad_key_in_the_environment_are_usage_errors():
    done = yield ended(get("127.0.0.1", 9, "1235", 1, "--fps", "2"))
    assert done.status == 2 and done.err.decode().count("\n") == 1 and "--fps needs protocol 2" in done.err.decode()
    done = yield ended(get("127.0.0.1", 9, "1235", 1, env={"TCPCAM_KEY": "not a key"}))
    assert done.status == 2 and done.err.decode().count("\n") == 1 and "TCPCAM_KEY" in done.err.decode()
    done = yield ended(get("127.0.0.1", 9, "1235", 1, "--fps", "0"))
    assert done.status == 2 and "--fps" in done.err.decode()
