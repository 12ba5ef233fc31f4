"""Twisted client for the TCPCam protocol: a Protocol, its Factory and :func:`fetch`.

Three lines fetch five frames::

    from twisted.internet import task
    from tcpcam.client import fetch

    def main(reactor):
        return fetch(reactor, "tcp:host=192.168.4.1:port=3333", "1235", 5,
                     lambda frame: print(len(frame)))

    task.react(main)

Each frame reaches ``frameReceived`` as a ``memoryview`` that is valid only
until the call returns (its buffer is reused): copy it (``bytes(frame)``) to
keep it. If ``frameReceived`` returns a Deferred, reading from the socket
stops until it fires (the view stays valid until then), so a slow consumer
slows the server down instead of filling memory.

The rules (the request and its pause, decoding, timeouts, how a stream
ended) are the core's :class:`~tcpcam.core.client_role.ClientRole`; this
module drives it from the reactor.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, NamedTuple

from twisted.internet import defer, protocol
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.python.failure import Failure

from tcpcam.client import readsize
from tcpcam.client.connecting import connectTo, endpointFor
from tcpcam.client.readsize import AdaptiveReadSize
from tcpcam.common.deadline import DeadlineTimer, toMilliseconds
from tcpcam.core import limits
from tcpcam.core.actions import Write
from tcpcam.core.client_role import ClientRole

#: Pause between the PIN and the command, in seconds (see :data:`tcpcam.core.limits.PIN_PAUSE_MS`).
DEFAULT_PAUSE_SECONDS = limits.PIN_PAUSE_MS / 1000
#: Seconds :func:`fetch` waits for the TCP connection by default.
DEFAULT_CONNECT_TIMEOUT = limits.CONNECT_TIMEOUT_S

#: The protocol's states: before the connection, frames flowing, the consumer
#: holding the stream paused, the outcome known and the connection closing,
#: and :attr:`TCPCamClientProtocol.finished` fired.
CONNECTING = "connecting"
RECEIVING = "receiving"
HOLDING = "holding"
CLOSING = "closing"
DONE = "done"

FrameConsumer = Callable[[memoryview], Any]


class FetchSummary(NamedTuple):
    """What a finished fetch received: ``frames`` frames, ``bytes`` payload bytes in all."""

    frames: int
    bytes: int



class TCPCamClientProtocol(protocol.Protocol):
    """One request: send ``PIN\\n``, pause, send ``CMD\\n``, then decode frames.

    ``frames`` is the command: N > 0 asks for exactly N frames, N <= 0 for an
    endless stream. Every frame is passed to ``frameReceived(view)``.

    :attr:`finished` fires with a :class:`FetchSummary` once the connection is
    closed, when either all N frames arrived (the protocol then closes the
    connection itself, ignoring anything after them) or, for a stream, the
    server closed it between frames after at least one frame. Otherwise it
    fails with :class:`~tcpcam.core.errors.ClosedBeforeFirstFrame`,
    :class:`~tcpcam.core.errors.TruncatedFrame`,
    :class:`~tcpcam.core.errors.TooFewFrames`,
    :class:`~tcpcam.core.errors.FrameTooLarge`,
    :class:`~tcpcam.core.errors.FrameTimeout` or whatever ``frameReceived``
    raised; the connection is then aborted. Cancelling :attr:`finished`
    aborts the connection.

    ``frameTimeout`` is the longest silence allowed, in seconds, and also the
    longest one frame may take from its first byte to its last; the time
    ``frameReceived`` holds the stream paused does not count. ``None`` means
    no limit.
    """

    #: Bytes asked of the socket per read at first, and at most (see :mod:`tcpcam.client.readsize`).
    readSize = readsize.START
    maxReadSize = readsize.MAXIMUM

    factory: TCPCamClientFactory | None = None

    def __init__(self, pin: str | bytes, frames: int, frameReceived: FrameConsumer,
                 pauseSeconds: float = DEFAULT_PAUSE_SECONDS, maxFrameBytes: int = limits.MAX_FRAME_BYTES,
                 frameTimeout: float | None = None, clock: IReactorTime | None = None) -> None:
        if pauseSeconds < 0:
            raise ValueError("pauseSeconds must be 0 or more, not %r" % (pauseSeconds,))
        if frameTimeout is not None and frameTimeout <= 0:
            raise ValueError("frameTimeout must be None or more than 0, not %r" % (frameTimeout,))
        self.role = ClientRole(pin, frames, maxFrameBytes, toMilliseconds(pauseSeconds),
                               None if frameTimeout is None else max(1, toMilliseconds(frameTimeout)))
        if clock is None:
            from twisted.internet import reactor as global_reactor

            clock = global_reactor
        self.frames = frames
        self.frameReceived = frameReceived
        self.pauseSeconds = pauseSeconds
        self.frameTimeout = frameTimeout
        self.clock: Any = clock
        self.state = CONNECTING
        #: Called with this protocol once connected, if set (see the factory).
        self.connectionMadeCallback: Callable[[TCPCamClientProtocol], object] | None = None
        #: Fires with a FetchSummary or fails with the reason; see the class docstring.
        self.finished: defer.Deferred[FetchSummary] = defer.Deferred(self._cancel)
        self._failure: Failure | None = None
        self._timer = DeadlineTimer(self.clock, self._tick)
        self._reads = AdaptiveReadSize(self.readSize, self.maxReadSize)

    @property
    def framesReceived(self) -> int:
        """Frames handed to ``frameReceived`` so far."""
        return self.role.frames_received

    @property
    def bytesReceived(self) -> int:
        """Payload bytes handed to ``frameReceived`` so far."""
        return self.role.bytes_received

    @property
    def paused(self) -> bool:
        """True while a Deferred from ``frameReceived`` holds the stream."""
        return self.state == HOLDING

    @property
    def summary(self) -> FetchSummary:
        """A :class:`FetchSummary` of what has been received so far."""
        return FetchSummary(self.framesReceived, self.bytesReceived)

    @property
    def _wire(self) -> Any:
        # The transport once connected: a TCP transport, or any ITransport in tests.
        return self.transport

    def now(self) -> int:
        """The clock in the core's milliseconds."""
        return toMilliseconds(self.clock.seconds())

    def connectionMade(self) -> None:
        """Send the request and start the timers."""
        if self.state != CONNECTING:
            self._wire.abortConnection()
            return
        self.state = RECEIVING
        self._reads.attach(self.transport)
        self._run(self.role.connected(self.now()))
        if self.connectionMadeCallback is not None:
            self.connectionMadeCallback(self)

    def dataReceived(self, data: bytes) -> None:
        """Queue ``data`` and hand out every frame it completes."""
        if self.state not in (RECEIVING, HOLDING):
            return
        self._reads.received(len(data))
        self.role.receive_data(data, self.now())
        if self.state == RECEIVING:
            self._drain()
        self._reschedule()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        """Decide how the fetch ended, unless a holding consumer still has frames to take."""
        self._stopTimer()
        self.role.connection_lost(self.now())
        if self.state == CLOSING:
            self._fire()
        elif self.state == RECEIVING:
            self._drain()

    # The rules are the role's; these carry them out.

    def _run(self, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Write):
                self._wire.write(action.head)
        # A Close comes with the outcome (a time-out): _decided() aborts.
        if self.role.done and self.state == RECEIVING:
            self._decided()
        self._reschedule()

    def _drain(self) -> None:
        role = self.role
        while self.state == RECEIVING:
            view = role.next_frame(self.now())
            if view is None:
                break
            self._deliver(view)
        if role.done and self.state == RECEIVING:
            self._decided()

    def _deliver(self, view: memoryview) -> None:
        try:
            outcome = self.frameReceived(view)
        except Exception:
            self._failure = Failure()
            self.role.cancel(self._failure.value)
            return
        if isinstance(outcome, defer.Deferred):
            self._hold(outcome)

    def _hold(self, consumed: defer.Deferred[Any]) -> None:
        self.state = HOLDING
        self.role.hold(self.now())
        consumed.addBoth(self._released)
        if self.state == HOLDING and not self.role.peer_closed:
            self._wire.pauseProducing()

    def _released(self, outcome: object) -> None:
        if self.state != HOLDING:
            return None
        self.state = RECEIVING
        self.role.release(self.now())
        if isinstance(outcome, Failure):
            self._failure = outcome
            self.role.cancel(outcome.value)
        elif not self.role.peer_closed and not self.role.done:
            self._wire.resumeProducing()
        self._drain()
        self._reschedule()
        return None

    def _decided(self) -> None:
        if self.state in (CLOSING, DONE):
            return
        self._stopTimer()
        if self.role.peer_closed:
            self._fire()
            return
        self.state = CLOSING
        if self._failure is not None or self.role.error is not None:
            self._wire.abortConnection()
        else:
            self._wire.loseConnection()

    def _fire(self) -> None:
        self.state = DONE
        self._stopTimer()
        if self.finished.called:
            return
        if self._failure is not None:
            self.finished.errback(self._failure)
        elif self.role.error is not None:
            self.finished.errback(Failure(self.role.error))
        else:
            self.finished.callback(self.summary)

    def _cancel(self, finished: defer.Deferred[FetchSummary]) -> None:
        if self.state in (CLOSING, DONE):
            return
        self._failure = Failure(defer.CancelledError())
        self.role.cancel(self._failure.value)
        self._stopTimer()
        if self.state == CONNECTING:
            self.state = DONE
            return
        if self.role.peer_closed:
            self._fire()
            return
        self.state = CLOSING
        self._wire.abortConnection()

    def _reschedule(self) -> None:
        self._timer.set(None if self.state in (CLOSING, DONE, CONNECTING) else self.role.next_deadline())

    def _tick(self) -> None:
        if self.state in (RECEIVING, HOLDING):
            self._run(self.role.tick(self.now()))

    def _stopTimer(self) -> None:
        self._timer.cancel()


class TCPCamClientFactory(protocol.Factory):
    """Builds a fresh :class:`TCPCamClientProtocol` for every connection.

    Works with ``endpoint.connect(factory)`` and with
    :class:`twisted.application.internet.ClientService` (one request per
    connection; each protocol has its own ``finished``: add an errback to it).
    ``connectionMadeCallback(protocol)``, if given, is called as each
    connection is made, after the request has started.
    ``clock`` defaults to the global reactor.
    """

    protocol = TCPCamClientProtocol  # type: ignore[assignment]
    noisy = False

    def __init__(self, pin: str | bytes, frames: int, frameReceived: FrameConsumer,
                 pauseSeconds: float = DEFAULT_PAUSE_SECONDS, maxFrameBytes: int = limits.MAX_FRAME_BYTES,
                 frameTimeout: float | None = None,
                 connectionMadeCallback: Callable[[TCPCamClientProtocol], object] | None = None,
                 clock: IReactorTime | None = None) -> None:
        self.pin = pin
        self.frames = frames
        self.frameReceived = frameReceived
        self.pauseSeconds = pauseSeconds
        self.maxFrameBytes = maxFrameBytes
        self.frameTimeout = frameTimeout
        self.connectionMadeCallback = connectionMadeCallback
        self.clock = clock
        # Fail at once on bad options rather than at the first connection.
        self.buildProtocol(None)

    def buildProtocol(self, addr: object) -> TCPCamClientProtocol:  # type: ignore[override]
        """Return a new protocol that makes one request with this factory's options."""
        proto = TCPCamClientProtocol(
            self.pin, self.frames, self.frameReceived, pauseSeconds=self.pauseSeconds,
            maxFrameBytes=self.maxFrameBytes, frameTimeout=self.frameTimeout, clock=self.clock)
        proto.factory = self
        proto.connectionMadeCallback = self.connectionMadeCallback
        return proto


def fetch(reactor: Any, endpoint: str | IStreamClientEndpoint, pin: str | bytes, frames: int,
          frameReceived: FrameConsumer, connectTimeout: float | None = DEFAULT_CONNECT_TIMEOUT,
          address: str | None = None, **options: Any) -> defer.Deferred[FetchSummary]:
    """Connect, ask for ``frames`` frames and pass each to ``frameReceived``.

    ``endpoint`` is a client endpoint or an endpoint string such as
    ``"tcp:host=127.0.0.1:port=3333"``; ``address`` names it in error
    messages (default: the string, or the endpoint's ``repr``). ``options``
    are those of :class:`TCPCamClientFactory` (``pauseSeconds``,
    ``maxFrameBytes``, ``frameTimeout``, ``connectionMadeCallback``).
    ``connectTimeout`` bounds the connection attempt (``None``: no bound).

    Returns a Deferred that fires with a :class:`FetchSummary` or fails as
    :attr:`TCPCamClientProtocol.finished` does, or with
    :class:`~tcpcam.core.errors.ConnectFailed`. Cancelling it stops the
    connection attempt or aborts the connection.
    """
    endpoint, address = endpointFor(reactor, endpoint, address)
    factory = TCPCamClientFactory(pin, frames, frameReceived, clock=reactor, **options)
    connected: list[TCPCamClientProtocol] = []

    def cancel(result: defer.Deferred[FetchSummary]) -> None:
        if connected:
            connected[0].finished.cancel()
        else:
            connecting.cancel()

    result: defer.Deferred[FetchSummary] = defer.Deferred(cancel)

    def connectionMade(proto: TCPCamClientProtocol) -> None:
        connected.append(proto)
        proto.finished.chainDeferred(result)

    def connectionFailed(failure: Failure) -> None:
        if not result.called:
            result.errback(failure)

    connecting = connectTo(reactor, endpoint, factory, connectTimeout, address)
    connecting.addCallbacks(connectionMade, connectionFailed)
    return result
