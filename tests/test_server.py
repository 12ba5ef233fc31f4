"""The reference server over real loopback sockets: requests as every client sends them, frames, order."""

import select
import socket
import struct
import sys

import pytest
import pytest_twisted
from server_support import (
    WAIT,
    ScriptedSource,
    connect,
    fetch,
    finished,
    listening,
    quickFactory,
    waitFor,
)

from tcpcam.core.framing import encode_frame
from tcpcam.server import TCPCamServerProtocol

HELLO = b"Hello World"


@pytest.mark.parametrize("segments", [
    (b"1235\n3\n",),
    (b"1235\n", b"3\n"),
    (b"1235\r\n3\r\n",),
    (b"1235\r\n", b"3\r\n"),
    (b"1235\x003\x00",),
    (b"1235\x00", b"3\x00"),
    (b"12353",),
], ids=["lf-one", "lf-two", "crlf-one", "crlf-two", "nul-one", "nul-two", "bare-merged"])
@pytest_twisted.inlineCallbacks
def test_each_request_style_gets_exactly_n_frames_then_eof(segments):
    port = yield listening(quickFactory())
    try:
        client = yield fetch(port, *segments)
    finally:
        yield port.stopListening()
    assert client.frames == [HELLO] * 3
    assert client.received == 3 * len(encode_frame(HELLO))


@pytest_twisted.inlineCallbacks
def test_original_client_bare_tokens_in_two_segments():
    # The original client: send("1235"), send("5"), no terminators. The gap is
    # longer than the server's idle time, so the PIN is complete on its own.
    port = yield listening(quickFactory(idleTimeout=0.05))
    try:
        client = yield connect(port, [(0.0, b"1235"), (0.2, b"5")])
        yield finished(client)
    finally:
        yield port.stopListening()
    assert client.frames == [HELLO] * 5


@pytest_twisted.inlineCallbacks
def test_bare_tokens_close_together_still_work():
    port = yield listening(quickFactory(idleTimeout=0.2))
    try:
        client = yield connect(port, [(0.0, b"1235"), (0.02, b"2")])
        yield finished(client)
    finally:
        yield port.stopListening()
    assert client.frames == [HELLO] * 2


@pytest.mark.parametrize("segments", [
    (b"9999\n3\n",),
    (b"1234",),
    (b"1235\nabc\n",),
    (b"1235\n", b"5x\n"),
    (b"x" * 200,),
], ids=["wrong-pin", "wrong-bare-pin", "bad-command", "bad-command-two", "too-long"])
@pytest_twisted.inlineCallbacks
def test_bad_requests_are_closed_with_nothing_sent(segments):
    port = yield listening(quickFactory())
    try:
        client = yield fetch(port, *segments)
    finally:
        yield port.stopListening()
    assert client.received == 0


#: Linux's SO_TIMESTAMPNS (and SCM_TIMESTAMPNS), which the socket module does not name.
SO_TIMESTAMPNS = 35


def arrivalTime(sock):
    """Kernel receive time, in ns, of the first bytes waiting on ``sock``."""
    _, ancillary, _, _ = sock.recvmsg(64, socket.CMSG_SPACE(16))
    for level, kind, data in ancillary:
        if level == socket.SOL_SOCKET and kind == SO_TIMESTAMPNS:
            seconds, nanoseconds = struct.unpack("qq", data[:16])
            return seconds * 10**9 + nanoseconds
    raise AssertionError("no receive timestamp")


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="kernel receive timestamps as on Linux")
@pytest_twisted.inlineCallbacks
def test_one_frame_reaches_the_newest_connection_first():
    source = ScriptedSource(["wait"])
    factory = quickFactory(source)
    port = yield listening(factory)
    clients = []
    try:
        for count in range(1, 5):
            client = socket.create_connection(("127.0.0.1", port.getHost().port), timeout=WAIT)
            clients.append(client)
            client.setsockopt(socket.SOL_SOCKET, SO_TIMESTAMPNS, 1)
            client.sendall(b"1235\n1\n")
            yield waitFor(lambda count=count: factory.role.streaming == count)
        yield waitFor(lambda: len(source.waiting) == 1)
        source.release(b"one")
        yield waitFor(lambda: all(select.select([client], [], [], 0)[0] for client in clients))
        arrivals = [arrivalTime(client) for client in clients]
    finally:
        for client in clients:
            client.close()
        yield port.stopListening()
    newestFirst = sorted(range(len(clients)), key=lambda index: arrivals[index])
    assert newestFirst == [3, 2, 1, 0]


@pytest_twisted.inlineCallbacks
def test_a_client_that_never_reads_does_not_hold_up_the_others():
    frame = bytes(range(256)) * 1024
    factory = quickFactory(ScriptedSource(fallback=frame))
    port = yield listening(factory)
    try:
        stuck = yield connect(port, [(0.0, b"1235\n0\n")], reading=False, receiveBuffer=16384)
        yield waitFor(lambda: factory.role.counters["frames_captured"] >= 1)
        reader = yield connect(port, [(0.0, b"1235\n40\n")])
        yield finished(reader)
        (stuckSession,) = [factory.role.session(conn) for conn in factory.role.connections()]
        stuck.transport.loseConnection()
        yield finished(stuck)
    finally:
        yield port.stopListening()
    assert len(reader.frames) == 40 and all(f == frame for f in reader.frames)
    assert stuckSession.frames_skipped > 0 and stuckSession.frames_sent < 40


@pytest_twisted.inlineCallbacks
def test_keepalive_is_set_on_each_connection():
    factory = quickFactory(keepAlive=(7, 3, 4))
    accepted = []
    factory.protocol = type("Recording", (TCPCamServerProtocol,), {
        "connectionMade": lambda self: (accepted.append(self), TCPCamServerProtocol.connectionMade(self))})
    port = yield listening(factory)
    try:
        client = yield connect(port)
        yield waitFor(lambda: accepted)
        handle = accepted[0].transport.getHandle()
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
def test_stopping_the_server_closes_its_connections():
    factory = quickFactory(interval=0.005)
    port = yield listening(factory)
    streaming = yield connect(port, [(0.0, b"1235\n0\n")])
    waiting = yield connect(port)
    yield waitFor(lambda: len(streaming.frames) >= 2 and factory.role.clients == 2)
    yield port.stopListening()
    yield finished(streaming)
    yield finished(waiting)
    assert factory.role.pacer.stopped and factory.role.clients == 0
