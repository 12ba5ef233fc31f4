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

import errno
from collections.abc import Callable
from typing import Any, NamedTuple, cast

from twisted.internet import defer, error, protocol
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IDelayedCall, IReactorTime, IStreamClientEndpoint
from twisted.python.failure import Failure

from tcpcam.core import limits
from tcpcam.core.actions import Write
from tcpcam.core.client_role import ClientRole
from tcpcam.core.errors import ClosedBeforeFirstFrame, ConnectFailed

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


def _toMilliseconds(seconds: float) -> int:
    return int(round(seconds * 1000))


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

    #: Bytes asked of the socket per read, when the transport lets us set it
    #: (Twisted's TCP transports read ``bufferSize`` bytes, 64 KiB by default).
    #: ``socket.recv`` allocates a bytes object of this size for every read and
    #: shrinks it to what arrived. 128 KiB and up is glibc's mmap threshold:
    #: such a block is mapped, shrunk with mremap and unmapped again on every
    #: read, and each page that is filled faults, about five times the CPU of
    #: a read below it. So reads start just below it (64 bytes are the bytes
    #: object's header and malloc's own).
    readSize = 128 * 1024 - 64
    #: Largest read. A read that fills the whole buffer means more data is
    #: waiting: the next read asks for twice as much, up to this. A read that
    #: comes back short goes back to the largest size that has come back full:
    #: glibc serves blocks that large from its heap from then on (it raises its
    #: threshold when it unmaps one), so the trap above is behind us. Fewer,
    #: larger reads cut the reactor's cost per byte when the sender is fast.
    maxReadSize = 1024 * 1024

    factory: TCPCamClientFactory | None = None

    def __init__(self, pin: str | bytes, frames: int, frameReceived: FrameConsumer,
                 pauseSeconds: float = DEFAULT_PAUSE_SECONDS, maxFrameBytes: int = limits.MAX_FRAME_BYTES,
                 frameTimeout: float | None = None, clock: IReactorTime | None = None) -> None:
        if pauseSeconds < 0:
            raise ValueError("pauseSeconds must be 0 or more, not %r" % (pauseSeconds,))
        if frameTimeout is not None and frameTimeout <= 0:
            raise ValueError("frameTimeout must be None or more than 0, not %r" % (frameTimeout,))
        self.role = ClientRole(pin, frames, maxFrameBytes, _toMilliseconds(pauseSeconds),
                               None if frameTimeout is None else max(1, _toMilliseconds(frameTimeout)))
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
        self._timer: IDelayedCall | None = None
        self._readSize: int | None = None
        self._filledSize: int | None = None

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
        return _toMilliseconds(self.clock.seconds())

    def connectionMade(self) -> None:
        """Send the request and start the timers."""
        if self.state != CONNECTING:
            self._wire.abortConnection()
            return
        self.state = RECEIVING
        if hasattr(self.transport, "bufferSize"):
            self._readSize = self._filledSize = self._wire.bufferSize = self.readSize
        self._run(self.role.connected(self.now()))
        if self.connectionMadeCallback is not None:
            self.connectionMadeCallback(self)

    def dataReceived(self, data: bytes) -> None:
        """Queue ``data`` and hand out every frame it completes."""
        if self.state not in (RECEIVING, HOLDING):
            return
        if self._readSize is not None:
            self._adaptReadSize(len(data))
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

    def _adaptReadSize(self, received: int) -> None:
        assert self._readSize is not None and self._filledSize is not None
        if received >= self._readSize:
            self._filledSize = self._readSize
            size = min(2 * self._readSize, self.maxReadSize)
        else:
            size = self._filledSize
        if size != self._readSize:
            self._readSize = self._wire.bufferSize = size

    def _reschedule(self) -> None:
        due = self.role.next_deadline()
        if self.state in (CLOSING, DONE, CONNECTING):
            due = None
        if self._timer is not None and self._timer.active():
            if due is not None and abs(self._timer.getTime() - due / 1000) < 0.0005:
                return
            self._timer.cancel()
        self._timer = None
        if due is not None:
            # In the core's milliseconds: a deadline at or before now is due now.
            self._timer = self.clock.callLater(max(0, due - self.now()) / 1000, self._tick)

    def _tick(self) -> None:
        self._timer = None
        if self.state in (RECEIVING, HOLDING):
            self._run(self.role.tick(self.now()))

    def _stopTimer(self) -> None:
        if self._timer is not None and self._timer.active():
            self._timer.cancel()
        self._timer = None


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


def _connectReason(failure: Failure) -> str:
    if failure.check(error.ConnectionRefusedError):
        return "connection refused"
    if failure.check(error.DNSLookupError):
        return "host name not found"
    if failure.check(error.TimeoutError):
        return "timed out"
    return failure.getErrorMessage()


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
    if isinstance(endpoint, str):
        address = address or endpoint
        endpoint = cast(IStreamClientEndpoint, clientFromString(reactor, endpoint))
    elif address is None:
        address = repr(endpoint)
    factory = TCPCamClientFactory(pin, frames, frameReceived, clock=reactor, **options)
    connected: list[TCPCamClientProtocol] = []
    timedOut: list[bool] = []

    def cancel(result: defer.Deferred[FetchSummary]) -> None:
        if connected:
            connected[0].finished.cancel()
        else:
            connecting.cancel()

    result: defer.Deferred[FetchSummary] = defer.Deferred(cancel)

    def connectionMade(proto: TCPCamClientProtocol) -> None:
        if timer is not None and timer.active():
            timer.cancel()
        connected.append(proto)
        proto.finished.chainDeferred(result)

    def connectionFailed(failure: Failure) -> None:
        if timer is not None and timer.active():
            timer.cancel()
        if timedOut:
            failure = Failure(ConnectFailed(str(address), "timed out after %g s" % (connectTimeout or 0)))
        elif failure.check(defer.CancelledError, error.ConnectingCancelledError):
            failure = Failure(defer.CancelledError())
        elif failure.check(error.ConnectError) and getattr(failure.value, "osError", None) == errno.ECONNRESET:
            # The server accepted the connection and reset it at once (a server
            # turning this address away), before the connection was reported made.
            failure = Failure(ClosedBeforeFirstFrame())
        elif failure.check(error.ConnectError):
            failure = Failure(ConnectFailed(str(address), _connectReason(failure)))
        if not result.called:
            result.errback(failure)

    def timeUp() -> None:
        timedOut.append(True)
        connecting.cancel()

    timer: IDelayedCall | None = None
    connecting = endpoint.connect(factory)
    if connectTimeout is not None and not connecting.called:
        timer = reactor.callLater(connectTimeout, timeUp)
    connecting.addCallbacks(connectionMade, connectionFailed)
    return result
