"""The Twisted server driver on StringTransport and task.Clock: every timer, with no waiting."""

import pytest
from server_support import PIN, LogCapture, ScriptedSource
from twisted.internet import defer
from twisted.internet.address import IPv4Address
from twisted.internet.error import ConnectionDone
from twisted.internet.task import Clock
from twisted.internet.testing import StringTransport
from twisted.python.failure import Failure

from tcpcam.core.framing import FrameDecoder
from tcpcam.server import TCPCamServerFactory
from tcpcam.server.sources.base import FrameUnavailable
from tcpcam.server.sources.files import HelloSource

HELLO = b"Hello World"


class Harness:
    """A server factory on a fake clock, with connections on StringTransports."""

    def __init__(self, source=None, **settings):
        self.clock = Clock()
        settings.setdefault("keepAlive", None)
        self.factory = TCPCamServerFactory(source or HelloSource(), pin=PIN, reactor=self.clock, **settings)
        self.factory.startFactory()
        self._port = 40000

    def connect(self, host="10.0.0.1"):
        self._port += 1
        address = IPv4Address("TCP", host, self._port)
        protocol = self.factory.buildProtocol(address)
        transport = StringTransport(peerAddress=address)
        protocol.makeConnection(transport)
        return protocol, transport

    def stream(self, frames=0, host="10.0.0.1"):
        protocol, transport = self.connect(host)
        protocol.dataReceived(b"%s\n%d\n" % (PIN.encode(), frames))
        return protocol, transport

    def advance(self, seconds, step=0.125):
        """Move the clock on by ``seconds`` in small steps, so every timer fires when due."""
        for _ in range(int(round(seconds / step))):
            self.clock.advance(step)

    def lose(self, protocol):
        protocol.connectionLost(Failure(ConnectionDone()))


def frames(transport):
    return FrameDecoder().feed(transport.value())


def test_a_request_then_exactly_n_frames_each_after_the_last_was_flushed():
    harness = Harness()
    protocol, transport = harness.stream(3)
    harness.clock.advance(0)
    assert frames(transport) == [HELLO]
    harness.clock.advance(1)
    assert frames(transport) == [HELLO], "no second frame before the first left"
    for _ in range(2):
        protocol.resumeProducing()
        harness.clock.advance(0)
    assert frames(transport) == [HELLO] * 3
    assert transport.disconnecting and not transport.disconnected


def test_the_interval_paces_frames_from_when_each_request_began():
    source = ScriptedSource(fallback=HELLO)
    harness = Harness(source, interval=0.1)
    protocol, transport = harness.stream()
    harness.clock.advance(0)
    protocol.resumeProducing()
    harness.clock.advance(0.099)
    assert source.calls == 1
    harness.clock.advance(0.001)
    assert source.calls == 2


def test_an_unterminated_pin_is_complete_after_the_idle_time():
    harness = Harness(idleTimeout=0.1)
    protocol, transport = harness.connect()
    protocol.dataReceived(b"1235")
    harness.clock.advance(0.1)
    protocol.dataReceived(b"2")
    harness.clock.advance(0.099)
    assert transport.value() == b""
    harness.clock.advance(0.001)
    harness.clock.advance(0)
    assert frames(transport) == [HELLO]


def test_a_request_not_finished_in_time_is_closed_with_nothing_sent():
    harness = Harness(handshakeTimeout=2.0, idleTimeout=5.0)
    protocol, transport = harness.connect()
    protocol.dataReceived(b"12")
    with LogCapture() as logged:
        harness.clock.advance(1.999)
        assert not transport.disconnecting
        harness.clock.advance(0.001)
    assert transport.disconnecting and transport.value() == b""
    assert logged.matching("rejected 10.0.0.1:", "request not finished in time")


def test_a_streaming_client_that_takes_no_frame_is_dropped_after_the_send_timeout():
    harness = Harness(sendTimeout=5.0)
    stuck, stuckTransport = harness.stream()
    reader, readerTransport = harness.stream()
    harness.clock.advance(0)
    with LogCapture() as logged:
        for _ in range(39):
            reader.resumeProducing()
            harness.clock.advance(0.125)
        assert not stuckTransport.disconnected
        harness.clock.advance(0.125)
    assert stuckTransport.disconnected
    assert logged.matching("dropping 10.0.0.1:", "took no frame for 5 s after 1 frame")
    assert len(frames(readerTransport)) == 40
    assert harness.factory.role.session(stuck).frames_skipped == 39


def test_a_finished_client_that_does_not_read_is_aborted_after_the_close_timeout():
    harness = Harness(closeTimeout=3.0)
    protocol, transport = harness.stream(1)
    harness.clock.advance(0)
    assert transport.disconnecting and not transport.disconnected
    harness.clock.advance(2.999)
    assert not transport.disconnected
    harness.clock.advance(0.001)
    assert transport.disconnected


def test_a_source_that_never_answers_is_timed_out_and_asked_again():
    source = ScriptedSource(["wait"], fallback=b"late but fine")
    harness = Harness(source, sourceTimeout=2.0, sourceRetryDelay=0.5)
    protocol, transport = harness.stream(1)
    harness.clock.advance(0)
    with LogCapture() as logged:
        harness.clock.advance(2.0)
        assert source.waiting[0].called, "the pending request was cancelled"
        assert logged.matching("no frame from the source (no answer in 2 s)")
        harness.clock.advance(0.5)
    assert frames(transport) == [b"late but fine"]


def test_failing_captures_are_logged_once_backed_off_and_their_recovery_logged():
    source = ScriptedSource([FrameUnavailable("lens cap")] * 4, fallback=HELLO)
    harness = Harness(source, sourceRetryDelay=0.25)
    protocol, transport = harness.stream(1)
    with LogCapture() as logged:
        harness.clock.advance(0)
        for expected in (1, 2, 2, 3, 3, 3, 3):
            assert source.calls == expected
            harness.clock.advance(0.25)
        harness.advance(2.0)
    assert frames(transport) == [HELLO]
    assert source.calls == 5
    assert len(logged.matching("lens cap")) == 1
    assert logged.matching("frame source recovered after 4 failed frames")


def test_a_source_that_raises_a_bug_is_logged_with_its_traceback():
    source = ScriptedSource([ZeroDivisionError("oops")], fallback=HELLO)
    harness = Harness(source)
    with LogCapture() as logged:
        protocol, transport = harness.stream(1)
        harness.clock.advance(0)
    assert logged.matching("ZeroDivisionError: oops")
    assert logged.failures and logged.failures[0].check(ZeroDivisionError)


def test_a_source_that_gives_no_bytes_is_a_failed_frame():
    source = ScriptedSource(["not bytes"], fallback=HELLO)
    harness = Harness(source, sourceRetryDelay=0.125)
    protocol, transport = harness.stream(1)
    with LogCapture() as logged:
        harness.clock.advance(0)
        harness.clock.advance(0.125)
    assert logged.matching("the source gave str, not bytes")
    assert frames(transport) == [HELLO]


def test_a_server_full_of_streaming_clients_closes_the_extra_connection_at_once_and_says_so():
    harness = Harness(maxClients=2)
    harness.stream()
    harness.stream()
    with LogCapture() as logged:
        protocol, transport = harness.connect("10.0.0.2")
    assert transport.disconnected and transport.value() == b""
    assert logged.matching("refused 10.0.0.2:", "server full (2 clients)")


def test_wrong_pins_get_only_that_address_refused_for_the_block_time():
    harness = Harness(pinFailures=3, pinWindow=60, pinBlock=30)
    with LogCapture() as logged:
        for _ in range(3):
            protocol, transport = harness.connect("10.0.0.9")
            protocol.dataReceived(b"0000\n")
            harness.lose(protocol)
        blocked, blockedTransport = harness.connect("10.0.0.9")
        friend, friendTransport = harness.connect("10.0.0.8")
    assert blockedTransport.disconnected and not friendTransport.disconnecting
    assert logged.matching("3 failed requests: 10.0.0.9 is refused for 30 s")
    assert logged.matching("refused 10.0.0.9:", "refused for 30 s more")
    harness.clock.advance(30)
    again, againTransport = harness.connect("10.0.0.9")
    assert not againTransport.disconnecting


def test_stopping_the_factory_closes_everyone_and_cancels_a_pending_request():
    source = ScriptedSource(["wait"])
    harness = Harness(source)
    streaming, streamingTransport = harness.stream()
    waiting, waitingTransport = harness.connect()
    harness.clock.advance(0)
    assert len(source.waiting) == 1
    harness.factory.stopFactory()
    assert streamingTransport.disconnecting and waitingTransport.disconnecting
    assert source.waiting[0].called
    harness.clock.advance(60)
    assert source.calls == 1


def test_the_source_is_left_alone_when_nobody_streams():
    source = ScriptedSource(fallback=HELLO)
    harness = Harness(source, interval=0.01)
    protocol, transport = harness.connect()
    harness.clock.advance(5)
    assert source.calls == 0
    streaming, streamingTransport = harness.stream(2)
    harness.clock.advance(0)
    streaming.resumeProducing()
    harness.advance(1)
    assert source.calls == 2
    assert harness.factory.role.streaming == 0
    harness.advance(5)
    assert source.calls == 2


def test_bad_settings_raise_value_error():
    with pytest.raises(ValueError, match="PIN"):
        TCPCamServerFactory(HelloSource(), pin="12\n35")
    with pytest.raises(ValueError):
        TCPCamServerFactory(HelloSource(), interval=-1)
    with pytest.raises(ValueError):
        TCPCamServerFactory(HelloSource(), maxClients=0)


def test_a_deferred_source_that_fires_at_once_works_too():
    class Immediate:
        def nextFrame(self):
            return defer.succeed(HELLO)

    harness = Harness(Immediate())
    protocol, transport = harness.stream(1)
    harness.clock.advance(0)
    assert frames(transport) == [HELLO]
