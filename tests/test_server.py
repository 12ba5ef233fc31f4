"""The reference server over real loopback sockets: requests, frames, order."""

import select
import socket
import struct
import sys

import pytest
import pytest_twisted
from server_support import (
    PIN,
    WAIT,
    ScriptedSource,
    connect,
    fetch,
    finished,
    listening,
    quickFactory,
    sleep,
    waitFor,
)

from tcpcam.framing import encode_frame
from tcpcam.server import TCPCamServerFactory, TCPCamServerProtocol
from tcpcam.sources.files import HelloSource

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


@pytest_twisted.inlineCallbacks
def test_source_only_runs_while_someone_streams():
    source = ScriptedSource()
    port = yield listening(quickFactory(source))
    try:
        idle = yield connect(port)
        yield sleep(0.1)
        assert source.calls == 0
        client = yield fetch(port, b"1235\n4\n")
        calls = source.calls
        yield sleep(0.1)
        assert source.calls == calls == 4
        idle.transport.loseConnection()
        yield finished(idle)
    finally:
        yield port.stopListening()
    assert client.frames == [b"frame"] * 4


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
            yield waitFor(lambda count=count: len(factory.broadcast) == count
                          and all(h.session.streaming for h in factory.broadcast.handles()))
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


class BoundedProtocol(TCPCamServerProtocol):
    """Records the most bytes ever queued in the server for each connection.

    The first connection gets a small kernel send buffer, so that a client
    that never reads fills it after a few frames.
    """

    mostQueued = {}

    def connectionMade(self):
        import socket

        if not self.mostQueued:
            self.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 32768)
            self.mostQueued[self] = 0
        TCPCamServerProtocol.connectionMade(self)

    def sendFrame(self, header, payload):
        TCPCamServerProtocol.sendFrame(self, header, payload)
        transport = self.transport
        queued = len(transport.dataBuffer) - transport.offset + transport._tempDataLen
        self.mostQueued[self] = max(self.mostQueued.get(self, 0), queued)


@pytest_twisted.inlineCallbacks
def test_a_client_that_never_reads_does_not_hold_up_the_others():
    frame = bytes(range(256)) * 1024
    factory = quickFactory(ScriptedSource(fallback=frame))
    factory.protocol = BoundedProtocol
    BoundedProtocol.mostQueued = {}
    port = yield listening(factory)
    try:
        stuck = yield connect(port, [(0.0, b"1235\n0\n")], reading=False, receiveBuffer=16384)
        yield waitFor(lambda: factory.pump.framesPublished >= 1)
        reader = yield connect(port, [(0.0, b"1235\n40\n")])
        yield finished(reader)
        stuckSession = [h for h in factory.broadcast.handles() if h.session.frames_requested == 0][0].session
        assert stuckSession.frames_skipped > 0
        stuck.transport.loseConnection()
        yield finished(stuck)
    finally:
        yield port.stopListening()
    assert len(reader.frames) == 40 and all(f == frame for f in reader.frames)
    assert stuckSession.frames_sent < 40
    assert BoundedProtocol.mostQueued and max(BoundedProtocol.mostQueued.values()) <= len(frame) + 4


@pytest_twisted.inlineCallbacks
def test_endless_stream_runs_until_the_client_leaves_and_then_the_source_stops():
    source = ScriptedSource(fallback=HELLO)
    factory = quickFactory(source, interval=0.005)
    port = yield listening(factory)
    try:
        client = yield connect(port, [(0.0, b"1235\n0\n")])
        idle = yield connect(port)
        yield waitFor(lambda: len(client.frames) >= 5)
        client.transport.loseConnection()
        yield finished(client)
        yield waitFor(lambda: len(factory.broadcast) == 1)
        calls = source.calls
        yield sleep(0.1)
        assert source.calls == calls
        assert not factory.pump.running
        idle.transport.loseConnection()
        yield finished(idle)
    finally:
        yield port.stopListening()
    assert set(client.frames) == {HELLO}


def test_bad_settings_raise():
    with pytest.raises(Exception, match="PIN"):
        TCPCamServerFactory(HelloSource(), pin="12\n35")
    with pytest.raises(ValueError):
        TCPCamServerFactory(HelloSource(), interval=-1)


def test_pin_constant_matches_the_original():
    assert PIN == "1235"


@pytest_twisted.inlineCallbacks
def test_stopping_the_server_closes_its_connections():
    factory = quickFactory(interval=0.005)
    port = yield listening(factory)
    streaming = yield connect(port, [(0.0, b"1235\n0\n")])
    waiting = yield connect(port)
    yield waitFor(lambda: len(streaming.frames) >= 2 and len(factory.broadcast) == 2)
    yield port.stopListening()
    yield finished(streaming)
    yield finished(waiting)
    assert factory.pump.stopped and len(factory.broadcast) == 0
