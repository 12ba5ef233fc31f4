"""tcpcam.client against a scripted raw-bytes server over real loopback sockets."""

import errno
import os
import socket
import tracemalloc

import pytest
import pytest_twisted
from client_support import (  # noqa: F401 - the fixtures are used by name
    WAIT,
    frames_bytes,
    get_reactor,
    ports_fixture,
    reactor_fixture,
    serve,
    unused_port,
)
from hypothesis import given, settings
from hypothesis import strategies as st
from twisted.application.internet import ClientService
from twisted.internet import defer, task
from twisted.internet.endpoints import TCP4ClientEndpoint, clientFromString
from twisted.internet.error import ConnectError, ConnectionRefusedError
from twisted.internet.interfaces import IStreamClientEndpoint
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from zope.interface import implementer

from tcpcam.client import (
    ClosedBeforeFirstFrame,
    ConnectFailed,
    FetchSummary,
    FrameTimeout,
    FrameTooLarge,
    TCPCamClientFactory,
    TCPCamClientProtocol,
    TooFewFrames,
    TruncatedFrame,
    fetch,
)
from tcpcam.core.errors import TCPCamError
from tcpcam.core.framing import encode_header

#: Payloads that catch dropped or altered bytes: empty, zero-ended, 1 KiB
#: blocks ending in NUL (the original client's bug), and random data.
PAYLOADS = [
    b"\xff\xd8JPEG\x00\x00",
    b"",
    b"\x00",
    (b"x" * 1023 + b"\x00") * 3,
    os.urandom(70_000) + b"\x00" * 5,
]


class Recorder:
    """frameReceived that keeps a copy of every frame."""

    def __init__(self):
        self.frames = []

    def __call__(self, view):
        assert isinstance(view, memoryview)
        self.frames.append(bytes(view))


def bounded(d, reactor):
    return d.addTimeout(WAIT, reactor)


@defer.inlineCallbacks
def failure_of(d, reactor, *errors):
    """Wait for ``d`` to fail with one of ``errors``; return the exception."""
    try:
        yield bounded(d, reactor)
    except errors as exc:
        return exc
    raise AssertionError("expected %r" % (errors,))


@pytest.mark.parametrize("pause", [0, 0.01])
@pytest_twisted.inlineCallbacks
def test_exact_bytes_for_n_frames(reactor, ports, pause):
    factory, address = yield serve(reactor, ports, lambda s: s.sendAndClose(frames_bytes(PAYLOADS)))
    got = Recorder()
    summary = yield bounded(
        fetch(reactor, address, "1235", len(PAYLOADS), got, pauseSeconds=pause), reactor
    )
    assert got.frames == PAYLOADS
    assert summary == FetchSummary(len(PAYLOADS), sum(map(len, PAYLOADS)))
    assert factory.connections[0].received == b"1235\n5\n"


@pytest_twisted.inlineCallbacks
def test_the_command_waits_for_the_pause_after_the_pin(reactor, ports):
    factory, address = yield serve(reactor, ports, lambda s: s.sendAndClose(frames_bytes([b"x"])))
    clock = task.Clock()
    proto = yield clientFromString(reactor, address).connect(
        TCPCamClientFactory("1235", 1, Recorder(), pauseSeconds=0.05, clock=clock)
    )
    server = yield bounded(factory.connected, reactor)
    for _ in range(WAIT * 100):
        if server.received:
            break
        yield task.deferLater(reactor, 0.01, lambda: None)
    assert server.received == b"1235\n"
    clock.advance(0.049)
    yield task.deferLater(reactor, 0.05, lambda: None)
    assert server.received == b"1235\n"
    clock.advance(0.001)
    assert (yield bounded(proto.finished, reactor)) == FetchSummary(1, 1)
    assert server.received == b"1235\n1\n"


@pytest_twisted.inlineCallbacks
def test_one_byte_segments(reactor, ports):
    payloads = [b"ab\x00", b"", b"\x00\x00\x00\x01\x00"]
    factory, address = yield serve(
        reactor, ports, lambda s: s.trickle(reactor, frames_bytes(payloads)).addCallback(
            lambda _: s.transport.loseConnection()
        )
    )
    reads = []

    def spy(proto):
        original = proto.dataReceived

        def dataReceived(data):
            reads.append(len(data))
            original(data)

        proto.dataReceived = dataReceived

    got = Recorder()
    summary = yield bounded(
        fetch(reactor, address, "1235", 3, got, pauseSeconds=0, connectionMadeCallback=spy), reactor
    )
    assert got.frames == payloads
    assert summary == FetchSummary(3, 8)
    assert len(reads) > len(payloads)


@pytest_twisted.inlineCallbacks
def test_n_frames_then_client_closes_even_if_server_keeps_sending(reactor, ports):
    factory, address = yield serve(reactor, ports, lambda s: s.transport.write(frames_bytes([b"a", b"b", b"c"])))
    got = Recorder()
    summary = yield bounded(fetch(reactor, address, "1235", 2, got, pauseSeconds=0), reactor)
    assert summary == FetchSummary(2, 2)
    assert got.frames == [b"a", b"b"]
    yield bounded(factory.connections[0].lost, reactor)


@pytest_twisted.inlineCallbacks
def test_stream_ended_by_server_between_frames_is_a_success(reactor, ports):
    factory, address = yield serve(reactor, ports, lambda s: s.sendAndClose(frames_bytes([b"a", b"bc"])))
    summary = yield bounded(fetch(reactor, address, "1235", 0, Recorder(), pauseSeconds=0), reactor)
    assert summary == FetchSummary(2, 3)
    assert factory.connections[0].received == b"1235\n0\n"


@pytest.mark.parametrize(
    "wire, frames, error, message",
    [
        (b"", 3, ClosedBeforeFirstFrame, "PIN may be wrong"),
        (frames_bytes([b"one"]) + encode_header(100) + b"x" * 40, 3, TruncatedFrame, "40 of the 100"),
        (frames_bytes([b"one"]) + b"\x00\x00", 3, TruncatedFrame, "header of frame 2"),
        (frames_bytes([b"one", b"two"]), 3, TooFewFrames, "after 2 of the 3 frames"),
        (encode_header(100) + b"x" * 10, 0, TruncatedFrame, "frame 1"),
    ],
)
@pytest_twisted.inlineCallbacks
def test_early_close(reactor, ports, wire, frames, error, message):
    factory, address = yield serve(reactor, ports, lambda s: s.sendAndClose(wire))
    exc = yield failure_of(fetch(reactor, address, "1235", frames, Recorder(), pauseSeconds=0), reactor, error)
    assert message in str(exc)
    assert "\n" not in str(exc)
    assert isinstance(exc, TCPCamError)


@pytest_twisted.inlineCallbacks
def test_absurd_declared_length_fails_without_allocating_it(reactor, ports):
    factory, address = yield serve(
        reactor, ports, lambda s: s.transport.write(encode_header(0xFFFFFFFF) + b"x" * 1000)
    )
    tracemalloc.start()
    try:
        exc = yield failure_of(
            fetch(reactor, address, "1235", 1, Recorder(), pauseSeconds=0), reactor, FrameTooLarge
        )
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert exc.length == 0xFFFFFFFF
    assert peak < 4 * 1024 * 1024
    yield bounded(factory.connections[0].lost, reactor)


@pytest_twisted.inlineCallbacks
def test_frame_limit_is_configurable(reactor, ports):
    factory, address = yield serve(reactor, ports, lambda s: s.sendAndClose(frames_bytes([b"12345"])))
    exc = yield failure_of(
        fetch(reactor, address, "1235", 1, Recorder(), pauseSeconds=0, maxFrameBytes=4), reactor, FrameTooLarge
    )
    assert exc.limit == 4


@pytest.mark.parametrize("first", [b"", frames_bytes([b"one"])])
@pytest_twisted.inlineCallbacks
def test_silent_server_times_out_and_is_disconnected(reactor, ports, first):
    factory, address = yield serve(reactor, ports, lambda s: s.transport.write(first))
    exc = yield failure_of(
        fetch(reactor, address, "1235", 5, Recorder(), pauseSeconds=0, frameTimeout=0.2), reactor, FrameTimeout
    )
    assert exc.frames == (1 if first else 0)
    yield bounded(factory.connections[0].lost, reactor)


@pytest_twisted.inlineCallbacks
def test_refused_connection(reactor):
    address = "tcp:host=127.0.0.1:port=%d" % unused_port()
    exc = yield failure_of(fetch(reactor, address, "1235", 1, Recorder()), reactor, ConnectFailed)
    assert "connection refused" in str(exc)
    assert address in str(exc)


@pytest_twisted.inlineCallbacks
def test_connect_timeout(reactor):
    # A listening socket whose accept queue is full drops further SYNs, so
    # the next connection attempt hangs until the client gives up.
    listener = socket.socket()
    fillers = []
    try:
        listener.bind(("127.0.0.1", 0))
        listener.listen(0)
        port = listener.getsockname()[1]
        for _ in range(4):
            filler = socket.socket()
            filler.setblocking(False)
            filler.connect_ex(("127.0.0.1", port))
            fillers.append(filler)
        yield task.deferLater(reactor, 0.05, lambda: None)
        exc = yield failure_of(
            fetch(reactor, "tcp:host=127.0.0.1:port=%d" % port, "1235", 1, Recorder(), connectTimeout=0.3),
            reactor,
            ConnectFailed,
        )
    finally:
        for filler in fillers:
            filler.close()
        listener.close()
    assert "timed out" in str(exc)


@pytest_twisted.inlineCallbacks
def test_cancel_closes_the_connection(reactor, ports):
    factory, address = yield serve(reactor, ports, lambda s: s.transport.write(frames_bytes([b"first"])))
    arrived = defer.Deferred()

    def frameReceived(view):
        if not arrived.called:
            arrived.callback(bytes(view))

    fetching = fetch(reactor, address, "1235", 0, frameReceived, pauseSeconds=0)
    assert (yield bounded(arrived, reactor)) == b"first"
    fetching.cancel()
    yield failure_of(fetching, reactor, defer.CancelledError)
    yield bounded(factory.connections[0].lost, reactor)


@pytest_twisted.inlineCallbacks
def test_cancel_while_connecting(reactor):
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(0)
    try:
        fetching = fetch(reactor, "tcp:host=127.0.0.1:port=%d" % listener.getsockname()[1], "1235", 1, Recorder())
        fetching.cancel()
        yield failure_of(fetching, reactor, defer.CancelledError)
    finally:
        listener.close()


@pytest_twisted.inlineCallbacks
def test_consumer_error_fails_the_fetch_and_closes(reactor, ports):
    factory, address = yield serve(reactor, ports, lambda s: s.transport.write(frames_bytes([b"a", b"b"])))

    def frameReceived(view):
        raise OSError("disk full")

    exc = yield failure_of(fetch(reactor, address, "1235", 2, frameReceived, pauseSeconds=0), reactor, OSError)
    assert str(exc) == "disk full"
    yield bounded(factory.connections[0].lost, reactor)


@pytest_twisted.inlineCallbacks
def test_slow_consumer_pauses_the_transport(reactor, ports):
    count, size = 400, 32 * 1024
    payloads = [bytes([index % 256]) * size for index in range(count)]

    class Producer:
        """Writes frames while the server's transport takes them."""

        def __init__(self, server):
            self.server = server
            self.sent = 0
            self.paused = False

        def pauseProducing(self):
            self.paused = True

        def resumeProducing(self):
            self.paused = False
            while self.sent < count and not self.paused:
                self.server.transport.write(frames_bytes([payloads[self.sent]]))
                self.sent += 1
            if self.sent == count:
                self.server.transport.unregisterProducer()
                self.server.transport.loseConnection()

        def stopProducing(self):
            self.sent = count

    producers = []

    def script(server):
        server.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, 64 * 1024)
        producer = Producer(server)
        producers.append(producer)
        server.transport.registerProducer(producer, True)
        producer.resumeProducing()

    factory, address = yield serve(reactor, ports, script)
    release = defer.Deferred()
    first = defer.Deferred()
    received = []

    def frameReceived(view):
        received.append(bytes(view[:1]) * len(view) == payloads[len(received)])
        if len(received) == 1:
            first.callback(None)
            return release
        return None

    fetching = fetch(reactor, address, "1235", count, frameReceived, pauseSeconds=0)
    yield bounded(first, reactor)
    # Without flow control the client would now read all 13 MB; with it,
    # the kernel buffers fill and the server is held back.
    for _ in range(WAIT * 10):
        before = producers[0].sent
        yield task.deferLater(reactor, 0.1, lambda: None)
        if producers[0].paused and producers[0].sent == before:
            break
    assert producers[0].paused
    assert producers[0].sent < count
    assert received == [True]
    release.callback(None)
    summary = yield bounded(fetching, reactor)
    assert summary == FetchSummary(count, count * size)
    assert received == [True] * count


@pytest_twisted.inlineCallbacks
def test_reads_grow_while_they_come_back_full_and_shrink_when_short(reactor, ports):
    payload = os.urandom(3 * 1024 * 1024)
    factory, address = yield serve(reactor, ports, lambda s: s.sendAndClose(frames_bytes([b"first", payload])))
    reads = []
    release = defer.Deferred()

    def spy(proto):
        original = proto.dataReceived

        def dataReceived(data):
            reads.append((len(data), proto.transport.bufferSize))
            original(data)

        proto.dataReceived = dataReceived

    def frameReceived(view):
        # Hold the stream after the first frame until the server has written
        # everything, so that the next reads find the socket full.
        if len(view) == 5:
            return release
        assert bytes(view) == payload
        return None

    fetching = fetch(reactor, address, "1235", 2, frameReceived, pauseSeconds=0, connectionMadeCallback=spy)
    yield bounded(factory.connected, reactor)
    transport = factory.connections[0].transport
    queued = []
    for _ in range(WAIT * 100):
        # Until the kernel buffers are full: the server's own queue stops shrinking.
        queued.append(len(transport.dataBuffer) - transport.offset + transport._tempDataLen)
        if reads and queued[-3:] == [queued[-1]] * 3:
            break
        yield task.deferLater(reactor, 0.01, lambda: None)
    release.callback(None)
    assert (yield bounded(fetching, reactor)) == FetchSummary(2, 5 + len(payload))
    smallest, largest = TCPCamClientProtocol.readSize, TCPCamClientProtocol.maxReadSize
    assert smallest < 128 * 1024 - 32
    assert reads[0][1] == smallest
    filled = smallest
    for (got, size), (_, following) in zip(reads, reads[1:], strict=False):
        assert got <= size <= largest
        if got == size:
            filled = size
            assert following == min(2 * size, largest)
        else:
            assert following == filled
    assert max(size for _, size in reads) > smallest


@pytest_twisted.inlineCallbacks
def test_consumer_deferred_failure_fails_the_fetch(reactor, ports):
    factory, address = yield serve(reactor, ports, lambda s: s.transport.write(frames_bytes([b"a", b"b"])))
    fetching = fetch(
        reactor, address, "1235", 2, lambda view: task.deferLater(reactor, 0, lambda: 1 / 0), pauseSeconds=0
    )
    yield failure_of(fetching, reactor, ZeroDivisionError)
    yield bounded(factory.connections[0].lost, reactor)


@pytest_twisted.inlineCallbacks
def test_last_frame_waits_for_the_consumer_even_after_the_server_closed(reactor, ports):
    factory, address = yield serve(reactor, ports, lambda s: s.sendAndClose(frames_bytes([b"a", b"b", b"c"])))
    order = []

    def frameReceived(view):
        frame = bytes(view)
        return task.deferLater(reactor, 0.01, order.append, frame)

    summary = yield bounded(fetch(reactor, address, "1235", 0, frameReceived, pauseSeconds=0), reactor)
    assert summary == FetchSummary(3, 3)
    assert order == [b"a", b"b", b"c"]


@pytest_twisted.inlineCallbacks
def test_endpoint_object_and_factory(reactor, ports):
    factory, address = yield serve(reactor, ports, lambda s: s.sendAndClose(frames_bytes([b"x"])))
    got = Recorder()
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", int(factory.port))
    summary = yield bounded(fetch(reactor, endpoint, "1235", 1, got), reactor)
    assert summary == FetchSummary(1, 1)

    proto = yield clientFromString(reactor, address).connect(TCPCamClientFactory(b"1235", 1, got, pauseSeconds=0))
    assert isinstance(proto, TCPCamClientProtocol)
    assert (yield bounded(proto.finished, reactor)) == FetchSummary(1, 1)
    assert got.frames == [b"x", b"x"]


@pytest_twisted.inlineCallbacks
def test_client_service_reconnects_with_fresh_protocols(reactor, ports):
    factory, address = yield serve(reactor, ports, lambda s: s.sendAndClose(frames_bytes([b"frame"])))
    got = Recorder()
    protocols = []
    twice = defer.Deferred()

    def connected(proto):
        protocols.append(proto)
        proto.finished.addErrback(lambda failure: None)
        if len(protocols) == 2:
            proto.finished.chainDeferred(twice)

    service = ClientService(
        clientFromString(reactor, address),
        TCPCamClientFactory("1235", 1, got, pauseSeconds=0, connectionMadeCallback=connected),
        retryPolicy=lambda attempt: 0.01,
    )
    service.startService()
    try:
        summary = yield bounded(twice, reactor)
    finally:
        yield service.stopService()
    assert summary == FetchSummary(1, 5)
    assert protocols[0] is not protocols[1]
    assert got.frames[:2] == [b"frame", b"frame"]


def test_bad_options_are_rejected_at_once_as_value_errors():
    for arguments, options in ((("12\n35", 1), {}), (("1235", 2**31), {}), (("1235", 1), {"pauseSeconds": -1}),
                               (("1235", 1), {"frameTimeout": 0}), (("1235", 1), {"maxFrameBytes": -1})):
        with pytest.raises(ValueError):
            TCPCamClientFactory(*arguments, print, **options)


@pytest_twisted.inlineCallbacks
def test_cancel_while_the_consumer_holds_the_stream(reactor, ports):
    factory, address = yield serve(reactor, ports, lambda s: s.transport.write(frames_bytes([b"a", b"b"])))
    held = defer.Deferred()
    seen = []

    def frameReceived(view):
        seen.append(bytes(view))
        return held

    fetching = fetch(reactor, address, "1235", 0, frameReceived, pauseSeconds=0)
    for _ in range(WAIT * 100):
        if seen:
            break
        yield task.deferLater(reactor, 0.01, lambda: None)
    fetching.cancel()
    yield failure_of(fetching, reactor, defer.CancelledError)
    yield bounded(factory.connections[0].lost, reactor)
    held.callback(None)
    assert seen == [b"a"]


@given(
    payloads=st.lists(st.binary(max_size=300), max_size=8),
    cuts=st.lists(st.integers(min_value=0, max_value=2500), max_size=12),
)
@settings(max_examples=300, deadline=None)
def test_any_split_of_the_stream_gives_the_same_frames(payloads, cuts):
    # Whole frames inside one read take the zero-copy path, split ones go
    # through the decoder; both must give the same bytes in the same order.
    wire = frames_bytes(payloads)
    bounds = sorted({0, len(wire), *(cut for cut in cuts if cut < len(wire))})
    got = Recorder()
    proto = TCPCamClientProtocol("1235", 0, got, clock=Clock())
    proto.makeConnection(StringTransport())
    for start, end in zip(bounds, bounds[1:], strict=False):
        proto.dataReceived(wire[start:end])
    assert got.frames == payloads
    assert proto.summary == FetchSummary(len(payloads), sum(map(len, payloads)))
    assert not proto.role.in_frame


@implementer(IStreamClientEndpoint)
class FailingEndpoint:
    """An endpoint whose connection attempt fails with ``exception``: a race loopback cannot be made to lose."""

    def __init__(self, exception):
        self.exception = exception

    def connect(self, protocolFactory):
        return defer.fail(self.exception)


@pytest_twisted.inlineCallbacks
def test_a_reset_while_connecting_is_a_close_before_the_first_frame(reactor):
    # A server that turns an address away accepts and resets at once; when the
    # reset beats the report of the connection, it still means "closed before
    # the first frame", with every cause named, not "cannot connect".
    reset = FailingEndpoint(ConnectError(osError=errno.ECONNRESET, string="Connection reset by peer."))
    exc = yield failure_of(fetch(reactor, reset, "1235", 1, Recorder()), reactor, ClosedBeforeFirstFrame)
    assert "blocked for a while after wrong PINs" in str(exc)
    refused = FailingEndpoint(ConnectionRefusedError())
    exc = yield failure_of(fetch(reactor, refused, "1235", 1, Recorder(), address="cam:1"), reactor, ConnectFailed)
    assert str(exc).startswith("cannot connect to cam:1: connection refused")


def test_a_trickling_frame_times_out_from_its_first_byte_on_the_clock():
    # One byte every 2 s, frameTimeout 5 s: silence never lasts 5 s, but the
    # frame has not arrived whole 5 s after its first byte.
    clock = Clock()
    proto = TCPCamClientProtocol("1235", 1, Recorder(), pauseSeconds=0, frameTimeout=5.0, clock=clock)
    transport = StringTransport()
    proto.makeConnection(transport)
    failures = []
    proto.finished.addErrback(failures.append)
    wire = encode_header(100) + b"x" * 100
    clock.advance(1.0)
    proto.dataReceived(wire[:1])                 # the frame starts at t = 1
    for index in range(1, 3):
        clock.advance(2.0)
        proto.dataReceived(wire[index:index + 1])
    assert clock.seconds() == 5.0 and not failures and not transport.disconnecting
    clock.advance(0.999)
    assert not failures
    clock.advance(0.001)                         # t = 6: 5 s after the first byte
    assert transport.disconnected                # aborted (StringTransport.abortConnection sets it)
    proto.connectionLost()
    assert len(failures) == 1
    error = failures[0].value
    assert isinstance(error, FrameTimeout) and error.trickling
    assert "frame 1 did not arrive whole within 5 s" in str(error)
