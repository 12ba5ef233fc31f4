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
"""

from typing import NamedTuple

from twisted.internet import defer, error, protocol
from twisted.internet.endpoints import clientFromString
from twisted.python.failure import Failure

from tcpcam.client_errors import (
    ClosedBeforeFirstFrame,
    ConnectFailed,
    FrameTimeout,
    FrameTooLarge,
    TooFewFrames,
    TruncatedFrame,
)
from tcpcam.errors import LocalProtocolError
from tcpcam.framing import DEFAULT_MAX_FRAME_BYTES, FrameDecoder
from tcpcam.request import COMMAND_MAX, COMMAND_MIN, check_pin

__all__ = [
    "DEFAULT_CONNECT_TIMEOUT",
    "DEFAULT_PAUSE_SECONDS",
    "ClosedBeforeFirstFrame",
    "ConnectFailed",
    "FetchSummary",
    "FrameTimeout",
    "FrameTooLarge",
    "TCPCamClientFactory",
    "TCPCamClientProtocol",
    "TooFewFrames",
    "TruncatedFrame",
    "fetch",
]

#: Pause between the PIN and the command, in seconds. The original firmware
#: reads each token with one ``recv``; the pause keeps both from arriving together.
DEFAULT_PAUSE_SECONDS = 0.05
#: Seconds :func:`fetch` waits for the TCP connection by default.
DEFAULT_CONNECT_TIMEOUT = 30.0


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
    fails with :class:`ClosedBeforeFirstFrame`, :class:`TruncatedFrame`,
    :class:`TooFewFrames`, :class:`FrameTooLarge`, :class:`FrameTimeout` or
    whatever ``frameReceived`` raised; the connection is then aborted.
    Cancelling :attr:`finished` aborts the connection.

    ``frameTimeout`` is the longest silence allowed, in seconds: from the
    connection to the first byte and between any two reads, not counting the
    time ``frameReceived`` holds the stream paused. ``None`` means no limit.
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
    #: The decoder hands out a frame that lies whole in one read as a view of
    #: it, and gathers one split across reads in its reused buffer: nothing
    #: is allocated per frame.
    maxReadSize = 1024 * 1024

    def __init__(
        self,
        pin,
        frames,
        frameReceived,
        pauseSeconds=DEFAULT_PAUSE_SECONDS,
        maxFrameBytes=DEFAULT_MAX_FRAME_BYTES,
        frameTimeout=None,
        clock=None,
    ):
        self.pin = check_pin(pin)
        if not COMMAND_MIN <= frames <= COMMAND_MAX:
            raise LocalProtocolError("frames must be %d to %d, not %d" % (COMMAND_MIN, COMMAND_MAX, frames))
        if pauseSeconds < 0:
            raise LocalProtocolError("pauseSeconds must be 0 or more, not %r" % (pauseSeconds,))
        if frameTimeout is not None and frameTimeout <= 0:
            raise LocalProtocolError("frameTimeout must be None or more than 0, not %r" % (frameTimeout,))
        if clock is None:
            from twisted.internet import reactor as clock
        self.frames = frames
        self.frameReceived = frameReceived
        self.pauseSeconds = pauseSeconds
        self.frameTimeout = frameTimeout
        self.clock = clock
        #: Called with this protocol once connected, if set (see the factory).
        self.connectionMadeCallback = None
        #: Fires with a FetchSummary or fails with the reason; see the class docstring.
        self.finished = defer.Deferred(self._cancel)
        #: Frames and payload bytes handed to ``frameReceived`` so far.
        self.framesReceived = 0
        self.bytesReceived = 0
        #: True while a Deferred from ``frameReceived`` holds the transport paused.
        self.paused = False
        self._waiting = False
        self._decoder = FrameDecoder(maxFrameBytes)
        self._result = None
        self._lost = False
        self._commandCall = None
        self._silenceCall = None
        self._lastActivity = 0.0
        self._readSize = None
        self._filledSize = None

    @property
    def summary(self):
        """A :class:`FetchSummary` of what has been received so far."""
        return FetchSummary(self.framesReceived, self.bytesReceived)

    def connectionMade(self):
        """Send the request and start the silence timer."""
        if self._result is not None:
            self.transport.abortConnection()
            return
        if hasattr(self.transport, "bufferSize"):
            self._readSize = self._filledSize = self.transport.bufferSize = self.readSize
        command = b"%d\n" % self.frames
        if self.pauseSeconds:
            self.transport.write(self.pin + b"\n")
            self._commandCall = self.clock.callLater(self.pauseSeconds, self._sendCommand, command)
        else:
            self.transport.write(self.pin + b"\n" + command)
        if self.frameTimeout is not None:
            self._lastActivity = self.clock.seconds()
            self._silenceCall = self.clock.callLater(self.frameTimeout, self._checkSilence)
        if self.connectionMadeCallback is not None:
            self.connectionMadeCallback(self)

    def dataReceived(self, data):
        """Queue ``data`` and hand out every frame it completes."""
        if self._result is not None:
            return
        if self._silenceCall is not None:
            self._lastActivity = self.clock.seconds()
        if self._readSize is not None:
            self._adaptReadSize(len(data))
        self._decoder.receive_data(data)
        if not self.paused:
            self._drain()

    def connectionLost(self, reason=protocol.connectionDone):
        """Decide how the fetch ended, unless a paused consumer still has frames to take."""
        self._lost = True
        self._stopTimers()
        if self._result is not None:
            self._fire()
        elif not self.paused:
            self._drain()

    def _adaptReadSize(self, received):
        if received >= self._readSize:
            self._filledSize = self._readSize
            size = min(2 * self._readSize, self.maxReadSize)
        else:
            size = self._filledSize
        if size != self._readSize:
            self._readSize = self.transport.bufferSize = size

    def _sendCommand(self, command):
        self._commandCall = None
        self.transport.write(command)

    def _drain(self):
        while self._result is None and not self.paused:
            try:
                view = self._decoder.next_frame()
            except FrameTooLarge:
                self._decide(Failure())
                return
            if view is None:
                break
            self._deliver(view)
        if self._lost and self._result is None and not self.paused:
            self._decide(self._classifyEnd())

    def _deliver(self, view):
        self.framesReceived += 1
        self.bytesReceived += len(view)
        try:
            outcome = self.frameReceived(view)
        except Exception:
            self._decide(Failure())
            return
        if isinstance(outcome, defer.Deferred):
            self._waitFor(outcome)
        elif self.framesReceived == self.frames:
            self._decide(self.summary)

    def _waitFor(self, consumed):
        self._waiting = True
        consumed.addBoth(self._consumed)
        if self._waiting:
            self.paused = True
            if not self._lost:
                self.transport.pauseProducing()

    def _consumed(self, outcome):
        wasPaused = self.paused
        self._waiting = False
        self.paused = False
        if isinstance(outcome, Failure):
            self._decide(outcome)
        elif self.framesReceived == self.frames:
            self._decide(self.summary)
        elif wasPaused:
            if self._result is None and not self._lost:
                self.transport.resumeProducing()
                if self._silenceCall is not None:
                    self._lastActivity = self.clock.seconds()
            self._drain()
        return None

    def _classifyEnd(self):
        if self._decoder.in_frame:
            return Failure(
                TruncatedFrame(self.framesReceived, self._decoder.payload_received, self._decoder.declared_length)
            )
        if self.framesReceived == 0:
            return Failure(ClosedBeforeFirstFrame())
        if self.frames > 0:
            return Failure(TooFewFrames(self.framesReceived, self.frames))
        return self.summary

    def _checkSilence(self):
        self._silenceCall = None
        now = self.clock.seconds()
        if self.paused:
            self._lastActivity = now
        quiet = now - self._lastActivity
        if quiet >= self.frameTimeout:
            self._decide(Failure(FrameTimeout(self.frameTimeout, self.framesReceived)))
        else:
            self._silenceCall = self.clock.callLater(self.frameTimeout - quiet, self._checkSilence)

    def _decide(self, result):
        if self._result is not None:
            return
        self._result = result
        self._stopTimers()
        if self._lost:
            self._fire()
        elif isinstance(result, Failure):
            self.transport.abortConnection()
        else:
            self.transport.loseConnection()

    def _fire(self):
        if self.finished.called:
            return
        if isinstance(self._result, Failure):
            self.finished.errback(self._result)
        else:
            self.finished.callback(self._result)

    def _cancel(self, finished):
        if self._result is None:
            self._result = Failure(defer.CancelledError())
            self._stopTimers()
            if self.transport is not None and not self._lost:
                self.transport.abortConnection()

    def _stopTimers(self):
        for name in ("_commandCall", "_silenceCall"):
            call = getattr(self, name)
            if call is not None and call.active():
                call.cancel()
            setattr(self, name, None)


class TCPCamClientFactory(protocol.Factory):
    """Builds a fresh :class:`TCPCamClientProtocol` for every connection.

    Works with ``endpoint.connect(factory)`` and with
    :class:`twisted.application.internet.ClientService` (one request per
    connection; each protocol has its own ``finished``: add an errback to it).
    ``connectionMadeCallback(protocol)``, if given, is called as each
    connection is made, after the request has started.
    ``clock`` defaults to the global reactor.
    """

    protocol = TCPCamClientProtocol
    noisy = False

    def __init__(
        self,
        pin,
        frames,
        frameReceived,
        pauseSeconds=DEFAULT_PAUSE_SECONDS,
        maxFrameBytes=DEFAULT_MAX_FRAME_BYTES,
        frameTimeout=None,
        connectionMadeCallback=None,
        clock=None,
    ):
        self.pin = check_pin(pin)
        self.frames = frames
        self.frameReceived = frameReceived
        self.pauseSeconds = pauseSeconds
        self.maxFrameBytes = maxFrameBytes
        self.frameTimeout = frameTimeout
        self.connectionMadeCallback = connectionMadeCallback
        self.clock = clock
        # Fail at once on bad options rather than at the first connection.
        self.buildProtocol(None)

    def buildProtocol(self, addr):
        """Return a new protocol that makes one request with this factory's options."""
        proto = self.protocol(
            self.pin,
            self.frames,
            self.frameReceived,
            pauseSeconds=self.pauseSeconds,
            maxFrameBytes=self.maxFrameBytes,
            frameTimeout=self.frameTimeout,
            clock=self.clock,
        )
        proto.factory = self
        proto.connectionMadeCallback = self.connectionMadeCallback
        return proto


def _describe(endpoint):
    host = getattr(endpoint, "_hostText", None) or getattr(endpoint, "_host", None)
    port = getattr(endpoint, "_port", None)
    if host is not None and port is not None:
        return "%s port %s" % (host, port)
    return repr(endpoint)


def _connectReason(failure):
    if failure.check(error.ConnectionRefusedError):
        return "connection refused"
    if failure.check(error.DNSLookupError):
        return "host name not found"
    if failure.check(error.TimeoutError):
        return "timed out"
    return failure.getErrorMessage()


def fetch(reactor, endpoint, pin, frames, frameReceived, connectTimeout=DEFAULT_CONNECT_TIMEOUT, **options):
    """Connect, ask for ``frames`` frames and pass each to ``frameReceived``.

    ``endpoint`` is a client endpoint or an endpoint string such as
    ``"tcp:host=127.0.0.1:port=3333"``. ``options`` are those of
    :class:`TCPCamClientFactory` (``pauseSeconds``, ``maxFrameBytes``,
    ``frameTimeout``, ``connectionMadeCallback``). ``connectTimeout`` bounds
    the connection attempt (``None``: no bound).

    Returns a Deferred that fires with a :class:`FetchSummary` or fails as
    :attr:`TCPCamClientProtocol.finished` does, or with
    :class:`ConnectFailed`. Cancelling it stops the connection attempt or
    aborts the connection.
    """
    if isinstance(endpoint, str):
        address = endpoint
        endpoint = clientFromString(reactor, endpoint)
    else:
        address = _describe(endpoint)
    factory = TCPCamClientFactory(pin, frames, frameReceived, clock=reactor, **options)
    connected = []
    timedOut = []

    def cancel(result):
        if connected:
            connected[0].finished.cancel()
        else:
            connecting.cancel()

    result = defer.Deferred(cancel)

    def connectionMade(proto):
        if timer is not None and timer.active():
            timer.cancel()
        connected.append(proto)
        proto.finished.chainDeferred(result)

    def connectionFailed(failure):
        if timer is not None and timer.active():
            timer.cancel()
        if timedOut:
            failure = Failure(ConnectFailed(address, "timed out after %g s" % connectTimeout))
        elif failure.check(defer.CancelledError, error.ConnectingCancelledError):
            failure = Failure(defer.CancelledError())
        elif failure.check(error.ConnectError):
            failure = Failure(ConnectFailed(address, _connectReason(failure)))
        if not result.called:
            result.errback(failure)

    def timeUp():
        timedOut.append(True)
        connecting.cancel()

    timer = None
    connecting = endpoint.connect(factory)
    if connectTimeout is not None and not connecting.called:
        timer = reactor.callLater(connectTimeout, timeUp)
    connecting.addCallbacks(connectionMade, connectionFailed)
    return result
