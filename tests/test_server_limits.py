"""The server's limits and defences over real loopback sockets, and source failures."""

import socket

import pytest
import pytest_twisted
from server_support import LogCapture, ScriptedSource, connect, fetch, finished, listening, quickFactory, waitFor
from twisted.internet.error import ConnectionAborted

from tcpcam.server import TCPCamServerProtocol
from tcpcam.sources import FrameUnavailable
from tcpcam.throttle import PinThrottle


@pytest_twisted.inlineCallbacks
def test_connections_beyond_max_clients_are_closed_at_once_and_logged():
    factory = quickFactory(maxClients=2)
    port = yield listening(factory)
    try:
        with LogCapture() as logs:
            waiting = []
            for _ in range(2):
                client = yield connect(port)
                waiting.append(client)
            yield waitFor(lambda: len(factory.broadcast) == 2)
            refused = yield fetch(port, b"1235\n1\n")
            assert refused.received == 0
            for client in waiting:
                client.transport.loseConnection()
                yield finished(client)
            yield waitFor(lambda: len(factory.broadcast) == 0)
            admitted = yield fetch(port, b"1235\n1\n")
    finally:
        yield port.stopListening()
    assert admitted.frames == [b"Hello World"]
    assert len(logs.matching("rejected 127.0.0.1:", "server full")) == 1


@pytest_twisted.inlineCallbacks
def test_a_silent_connection_is_closed_after_the_handshake_timeout():
    port = yield listening(quickFactory(handshakeTimeout=0.2))
    try:
        with LogCapture() as logs:
            silent = yield connect(port)
            yield finished(silent, timeout=5)
            slow = yield connect(port, [(0.0, b"1235\n")])
            yield finished(slow, timeout=5)
    finally:
        yield port.stopListening()
    assert silent.received == slow.received == 0
    assert len(logs.matching("rejected 127.0.0.1:", "not finished in time")) == 2


@pytest.mark.parametrize("request_, reason", [
    (b"9999\n1\n", "wrong PIN (4 bytes)"),
    (b"1235\nfive\n", "bad command 'five'"),
    (b"1235\n" + b"7" * 200, "longer than 128 bytes"),
    (b"1235", "request not finished in time"),
], ids=["wrong-pin", "bad-command", "too-long", "handshake-timeout"])
@pytest_twisted.inlineCallbacks
def test_rejections_are_logged_once_with_reason_and_peer(request_, reason):
    port = yield listening(quickFactory(handshakeTimeout=0.3))
    try:
        with LogCapture() as logs:
            client = yield fetch(port, request_)
    finally:
        yield port.stopListening()
    peer = "127.0.0.1:%d" % client.localPort
    assert client.received == 0
    assert logs.matching(peer) == logs.matching("rejected " + peer + ": ", reason)
    assert len(logs.matching(peer)) == 1


@pytest_twisted.inlineCallbacks
def test_wrong_pins_get_an_address_refused_without_blocking_others():
    factory = quickFactory(throttle=PinThrottle(max_failures=2, window=60, block=60))
    port = yield listening(factory)
    try:
        with LogCapture() as logs:
            for _ in range(2):
                yield fetch(port, b"0000\n1\n")
            refused = yield fetch(port, b"1235\n1\n")
            try:
                other = yield fetch(port, b"1235\n1\n", bindAddress=("127.0.0.2", 0))
            except (OSError, ConnectionError) as error:  # a loopback without 127.0.0.2
                other = error
    finally:
        yield port.stopListening()
    assert refused.received == 0
    assert len(logs.matching("127.0.0.1")) == 3
    assert len(logs.matching("rejected 127.0.0.1:", "wrong PIN (4 bytes)")) == 2
    assert len(logs.matching("rejected 127.0.0.1:", "wrong PIN", "; 2 wrong PINs: 127.0.0.1 is refused for 60 s")) == 1
    assert len(logs.matching("rejected 127.0.0.1:", "too many wrong PINs")) == 1
    if isinstance(other, Exception):
        pytest.skip("cannot bind 127.0.0.2 here: %s" % (other,))
    assert other.frames == [b"Hello World"]


@pytest_twisted.inlineCallbacks
def test_throttling_can_be_turned_off():
    port = yield listening(quickFactory(throttle=None))
    try:
        for _ in range(6):
            yield fetch(port, b"0000\n1\n")
        client = yield fetch(port, b"1235\n1\n")
    finally:
        yield port.stopListening()
    assert client.frames == [b"Hello World"]


@pytest_twisted.inlineCallbacks
def test_keepalive_is_set_on_each_connection():
    factory = quickFactory(keepAlive=(7, 3, 4))
    port = yield listening(factory)
    try:
        client = yield connect(port)
        yield waitFor(lambda: len(factory.broadcast) == 1)
        handle = factory.broadcast.handles()[0].transport.getHandle()
        options = [handle.getsockopt(socket.SOL_SOCKET, socket.SO_KEEPALIVE)]
        for name, expected in (("TCP_KEEPIDLE", 7), ("TCP_KEEPINTVL", 3), ("TCP_KEEPCNT", 4)):
            if hasattr(socket, name):
                options.append((handle.getsockopt(socket.IPPROTO_TCP, getattr(socket, name)), expected))
        client.transport.loseConnection()
        yield finished(client)
    finally:
        yield port.stopListening()
    assert options[0] != 0
    assert all(value == expected for value, expected in options[1:])


@pytest_twisted.inlineCallbacks
def test_source_failures_are_logged_and_skipped():
    source = ScriptedSource([FrameUnavailable("camera busy"), b"a", ValueError("bug"), ValueError("again"),
                             b"b", "wait"], fallback=b"c")
    factory = quickFactory(source)
    port = yield listening(factory)
    try:
        with LogCapture() as logs:
            first = yield connect(port, [(0.0, b"1235\n2\n")])
            yield finished(first)
            second = yield connect(port, [(0.0, b"1235\n1\n")])
            yield waitFor(lambda: source.waiting)
            source.waiting[0].errback(FrameUnavailable("late failure"))
            yield finished(second)
    finally:
        yield port.stopListening()
    assert first.frames == [b"a", b"b"]
    assert second.frames == [b"c"]
    assert factory.pump.sourceFailures == 4
    assert logs.matching("camera busy") and logs.matching("bug") and logs.matching("late failure")
    assert not logs.matching("again")
    assert logs.matching("recovered after 2 failed frames")


@pytest_twisted.inlineCallbacks
def test_a_source_that_never_answers_is_timed_out_and_skipped():
    source = ScriptedSource(["wait", 42], fallback=b"late but fine")
    factory = quickFactory(source, sourceTimeout=0.1)
    port = yield listening(factory)
    try:
        with LogCapture() as logs:
            client = yield fetch(port, b"1235\n1\n")
    finally:
        yield port.stopListening()
    assert client.frames == [b"late but fine"]
    assert factory.pump.sourceFailures == 2
    assert logs.matching("not bytes") or logs.matching("int")


class LostProtocol(TCPCamServerProtocol):
    """Notes when the server side of each connection is closed."""

    lost = []

    def connectionMade(self):
        self.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
        TCPCamServerProtocol.connectionMade(self)

    def connectionLost(self, reason):
        self.lost.append(reason)
        TCPCamServerProtocol.connectionLost(self, reason)


def bigFrameFactory(**settings):
    """A factory sending 1 MiB frames whose connections record why they were lost."""
    factory = quickFactory(ScriptedSource(fallback=bytes(range(256)) * 4096), **settings)
    factory.protocol = LostProtocol
    LostProtocol.lost = []
    return factory


@pytest_twisted.inlineCallbacks
def test_a_finished_client_that_stops_reading_is_aborted_after_the_close_timeout():
    factory = bigFrameFactory(closeTimeout=0.2)
    port = yield listening(factory)
    try:
        client = yield connect(port, [(0.0, b"1235\n1\n")], reading=False, receiveBuffer=4096)
        yield waitFor(lambda: LostProtocol.lost)
        client.transport.loseConnection()
    finally:
        yield port.stopListening()
    assert len(factory.broadcast) == 0
    assert LostProtocol.lost[0].check(ConnectionAborted)


@pytest_twisted.inlineCallbacks
def test_a_streaming_client_that_stops_reading_is_dropped_after_the_send_timeout():
    factory = bigFrameFactory(sendTimeout=0.3)
    port = yield listening(factory)
    with LogCapture() as logged:
        try:
            reader = yield connect(port, [(0.0, b"1235\n0\n")])
            stalled = yield connect(port, [(0.0, b"1235\n0\n")], reading=False, receiveBuffer=4096)
            yield waitFor(lambda: LostProtocol.lost)
            assert len(factory.broadcast) == 1 and factory.broadcast.handles()[0].session.streaming
            before = reader.received
            yield waitFor(lambda: reader.received > before)
            stalled.transport.loseConnection()
            reader.transport.loseConnection()
        finally:
            yield port.stopListening()
    assert LostProtocol.lost[0].check(ConnectionAborted)
    assert len(logged.matching("dropping", "took no frame for 0.3 s")) == 1
