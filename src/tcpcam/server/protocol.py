"""The reference TCPCam server: a thin Twisted driver of :class:`~tcpcam.core.server_role.ServerRole`.

Listen with any endpoint::

    from twisted.internet.endpoints import serverFromString
    from tcpcam.server import TCPCamServerFactory, sourceFromSpec

    factory = TCPCamServerFactory(sourceFromSpec("pattern:VGA"), pin="1235")
    serverFromString(reactor, "tcp:3333").listen(factory)

Every rule (admission, the request, pacing, fan-out, deadlines) is the
core's; this module owns the sockets, the frame source and one timer, tells
the role what happens and carries out the actions it returns.
"""

from __future__ import annotations

import os
import socket
import time
from typing import Any, cast

from twisted.internet import defer
from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IAddress, IPullProducer, IReactorTime, ITransport
from twisted.internet.protocol import Factory, Protocol, connectionDone
from twisted.logger import Logger, LogLevel
from twisted.python.failure import Failure
from zope.interface import implementer

import tcpcam
from tcpcam.common.deadline import DeadlineTimer, toMilliseconds
from tcpcam.core import limits
from tcpcam.core.actions import ERROR, WARN, ApplySettings, AskHealth, CancelCapture, Capture, Close, Log, Write
from tcpcam.core.camera_settings import FRAMESIZE_NAMES, SETTINGS
from tcpcam.core.server_role import ServerRole
from tcpcam.core.session import Session
from tcpcam.server.sources.base import FrameUnavailable, IFrameSource

#: TCP keep-alive: idle seconds, seconds between probes, probes (as the original).
DEFAULT_KEEPALIVE = (limits.KEEPALIVE_IDLE_S, limits.KEEPALIVE_INTERVAL_S, limits.KEEPALIVE_COUNT)

# Socket options for keep-alive idle, interval and count; the first name the
# platform has is used (macOS calls the idle time TCP_KEEPALIVE).
_KEEPALIVE_OPTIONS = (("TCP_KEEPIDLE", "TCP_KEEPALIVE"), ("TCP_KEEPINTVL",), ("TCP_KEEPCNT",))
_LEVELS = {WARN: LogLevel.warn, ERROR: LogLevel.error}


def describePeer(address: IAddress | object) -> str:
    """``host:port`` for an address, or its ``str`` when it has no host."""
    host = getattr(address, "host", None)
    if host is None:
        return str(address)
    return "%s:%s" % (host, getattr(address, "port", "?"))


def setKeepAlive(transport: Any, idle: int, interval: int, count: int) -> None:
    """Turn on TCP keep-alive with the given timing where the platform allows it."""
    transport.setTcpKeepAlive(True)
    handle = transport.getHandle()
    for names, value in zip(_KEEPALIVE_OPTIONS, (idle, interval, count), strict=True):
        for name in names:
            option = getattr(socket, name, None)
            if option is not None:
                handle.setsockopt(socket.IPPROTO_TCP, option, int(value))
                break


@implementer(IPullProducer)
class TCPCamServerProtocol(Protocol):
    """One client connection; its factory drives the core on its behalf.

    It is a pull producer of its transport: the transport says when
    everything written so far has gone to the kernel (:meth:`resumeProducing`),
    and only then may the connection take its next frame. So at most one
    frame per client waits in the server's memory.
    """

    factory: TCPCamServerFactory
    transport: ITransport

    def __init__(self) -> None:
        self.peer = "?"
        self.producing = False

    @property
    def session(self) -> Session | None:
        """The core's request state of this connection (None once it is forgotten)."""
        return self.factory.role.session(self)

    def connectionMade(self) -> None:
        """Tell the core; register as a pull producer and set keep-alive."""
        self.peer = describePeer(self.transport.getPeer())
        self.producing = True
        self.transport.registerProducer(self, False)  # type: ignore[attr-defined]
        self.factory.connectionMade(self)

    def dataReceived(self, data: bytes) -> None:
        """Hand the bytes to the core."""
        self.factory.dataReceivedFrom(self, data)

    def connectionLost(self, reason: Failure = connectionDone) -> None:
        """Tell the core the connection is gone."""
        self.producing = False
        self.factory.connectionLostFrom(self)

    def resumeProducing(self) -> None:
        """The transport sent everything written so far: the core may offer a frame again."""
        self.factory.writtenTo(self)

    def stopProducing(self) -> None:
        """The connection is going away (connectionLost follows)."""

    def close(self, abort: bool) -> None:
        """Close at once (``abort``) or once what was written is flushed."""
        if self.producing:
            self.producing = False
            self.transport.unregisterProducer()  # type: ignore[attr-defined]
        if abort:
            self.transport.abortConnection()  # type: ignore[attr-defined]
        else:
            self.transport.loseConnection()


class TCPCamServerFactory(Factory):
    """Serve frames from ``source`` (an :class:`~tcpcam.server.sources.IFrameSource`).

    Times are seconds, as everywhere in Twisted. ``pinFailures`` failed
    requests from one address in ``pinWindow`` seconds get it refused for
    ``pinBlock`` seconds (0: no throttling). Every line the core logs goes
    through :meth:`logAction`; override it to do more (the refused
    connections have topic ``"refused"`` and ``"rejected"``).
    """

    protocol = TCPCamServerProtocol  # type: ignore[assignment]
    log = Logger()
    noisy = False

    def __init__(self, source: IFrameSource, pin: str = limits.DEFAULT_PIN, interval: float = 0.0,
                 maxClients: int = limits.MAX_CLIENTS,
                 handshakeTimeout: float = limits.HANDSHAKE_TIMEOUT_MS / 1000,
                 idleTimeout: float = limits.IDLE_MS / 1000,
                 keepAlive: tuple[int, int, int] | None = DEFAULT_KEEPALIVE,
                 reactor: IReactorTime | None = None,
                 pinFailures: int = limits.PIN_FAILURES, pinWindow: float = limits.PIN_WINDOW_MS / 1000,
                 pinBlock: float = limits.PIN_BLOCK_MS / 1000,
                 sourceTimeout: float | None = limits.SOURCE_TIMEOUT_MS / 1000,
                 sourceRetryDelay: float = limits.CAPTURE_RETRY_MS / 1000,
                 closeTimeout: float = limits.CLOSE_TIMEOUT_MS / 1000,
                 sendTimeout: float = limits.SEND_TIMEOUT_MS / 1000,
                 pendingPerAddress: int = limits.PENDING_PER_ADDRESS,
                 firstByteTimeout: float = limits.FIRST_BYTE_TIMEOUT_MS / 1000,
                 key: bytes | None = None, legacy: bool = True, name: str = "tcpcam") -> None:
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = global_reactor
        if interval < 0:
            raise ValueError("interval must be 0 or more, not %r" % (interval,))
        self.source = source
        self.pin = pin
        self.keepAlive = tuple(keepAlive) if keepAlive is not None else None
        self.reactor: Any = reactor
        retry = toMilliseconds(sourceRetryDelay)
        device = {"name": name, "firmware": "tcpcam %s" % tcpcam.__version__,
                  "sensor": getattr(source, "sensor", "none"),
                  "framesizes": list(getattr(source, "framesizes", FRAMESIZE_NAMES))}
        settings = getattr(source, "settings", None)
        self.role = ServerRole(
            pin, max_clients=maxClients, interval_ms=toMilliseconds(interval),
            handshake_timeout_ms=toMilliseconds(handshakeTimeout), idle_ms=toMilliseconds(idleTimeout),
            send_timeout_ms=toMilliseconds(sendTimeout), close_timeout_ms=toMilliseconds(closeTimeout),
            source_timeout_ms=None if sourceTimeout is None else toMilliseconds(sourceTimeout),
            capture_retry_ms=max(1, retry), capture_retry_max_ms=max(retry, limits.CAPTURE_RETRY_MAX_MS),
            pin_failures=pinFailures, pin_window_ms=toMilliseconds(pinWindow),
            pin_block_ms=toMilliseconds(pinBlock), pending_per_address=pendingPerAddress,
            first_byte_timeout_ms=toMilliseconds(firstByteTimeout), key=key, legacy=legacy, random=os.urandom,
            device=device, settings=dict(settings) if settings else SETTINGS.defaults())
        self._started = self.now()
        self._timer = DeadlineTimer(self.reactor, self._tick)
        self._capture: tuple[int, Deferred[Any]] | None = None
        self._failure: Failure | None = None

    @property
    def maxClients(self) -> int:
        """Most connections at once."""
        return self.role.max_clients

    def now(self) -> int:
        """The reactor's clock in the core's milliseconds."""
        return toMilliseconds(self.reactor.seconds())

    # From the protocols.

    def connectionMade(self, conn: TCPCamServerProtocol) -> None:
        """A connection came in: the core admits it or not."""
        address = conn.transport.getPeer()
        host = getattr(address, "host", None) or conn.peer
        actions = self.role.connect(conn, host, self.now(), conn.peer)
        refused = any(isinstance(action, Close) and action.conn is conn for action in actions)
        if not refused and self.keepAlive is not None:
            try:
                setKeepAlive(conn.transport, *self.keepAlive)
            except (AttributeError, OSError) as error:
                self.log.debug("keep-alive not set for {peer}: {error}", peer=conn.peer, error=error)
        self.run(actions)

    def dataReceivedFrom(self, conn: TCPCamServerProtocol, data: bytes) -> None:
        """Bytes from a connection."""
        self.run(self.role.receive(conn, data, self.now()))

    def writtenTo(self, conn: TCPCamServerProtocol) -> None:
        """A connection's transport has sent everything written to it."""
        self.run(self.role.written(conn, self.now()))

    def connectionLostFrom(self, conn: TCPCamServerProtocol) -> None:
        """A connection is gone."""
        self.run(self.role.disconnected(conn, self.now()))

    # Twisted's factory life cycle.

    def stopFactory(self) -> None:
        """The last port stopped listening: stop the source and close every connection."""
        self.run(self.role.stop(self.now()))

    def startFactory(self) -> None:
        """Listening again after a stop: frames may be asked for again."""
        self.role.restart()

    # Carrying out what the core says.

    def run(self, actions: list[Any]) -> None:
        """Carry out ``actions`` in order, then set the timer to the core's next deadline."""
        queue = list(actions)
        while queue:
            action = queue.pop(0)
            if isinstance(action, Write):
                # Twisted takes bytes only: the small per-client part (a bytearray) is copied.
                parts = [part if isinstance(part, bytes) else bytes(part) for part in action.parts]
                cast(TCPCamServerProtocol, action.conn).transport.writeSequence(parts)
            elif isinstance(action, Close):
                cast(TCPCamServerProtocol, action.conn).close(action.abort)
            elif isinstance(action, Capture):
                queue.extend(self._startCapture(action.ticket))
            elif isinstance(action, CancelCapture):
                self._cancelCapture(action.ticket)
            elif isinstance(action, Log):
                self.logAction(action)
            elif isinstance(action, ApplySettings):
                queue.extend(self._applySettings(action))
            elif isinstance(action, AskHealth):
                queue.extend(self.role.report_health(self.health(), self.now()))
        self._reschedule()

    def health(self) -> dict[str, Any]:
        """The figures a protocol 2 health message carries, as far as a computer has them.

        A source with a ``health()`` method adds its own figures (as the
        firmware's camera does), over these.
        """
        status = self.role.status()
        figures = {"uptime_s": (self.now() - self._started) // 1000, "clients": status["clients"],
                   "streaming": status["streaming"], "frames": status["frames_captured"],
                   "capture_errors": status["capture_failures"], "reset_cause": "none", "clock_synced": True,
                   "free_heap": None, "largest_free_block": None, "wifi_rssi": None}
        facts = getattr(self.source, "health", None)
        if callable(facts):
            figures.update(facts())
        return figures

    def _applySettings(self, action: ApplySettings) -> list[Any]:
        apply = getattr(self.source, "applySettings", None)
        if apply is None:
            return self.role.settings_applied(action.ticket, None, "this frame source has no camera settings",
                                              self.now())
        try:
            applied = apply(dict(action.settings))
        except ValueError as error:
            return self.role.settings_applied(action.ticket, None, str(error), self.now())
        return self.role.settings_applied(action.ticket, dict(applied or action.settings), None, self.now())

    def logAction(self, action: Log) -> None:
        """Log one line the core asked for (with the source's traceback when it is a bug)."""
        failure, self._failure = self._failure, None
        if action.topic == "source" and failure is not None and action.level == ERROR:
            self.log.failure("{text}", failure, text=action.text)
            return
        self.log.emit(_LEVELS.get(action.level, LogLevel.info), "{text}", text=action.text, topic=action.topic)

    def _reschedule(self) -> None:
        self._timer.set(self.role.next_deadline())

    def _tick(self) -> None:
        self.run(self.role.tick(self.now()))

    def _startCapture(self, ticket: int) -> list[Any]:
        try:
            frame = self.source.nextFrame()
        except Exception:
            return self._captureFailed(ticket, Failure())
        if not isinstance(frame, Deferred):
            return self._captured(ticket, frame)
        self._capture = (ticket, frame)
        frame.addCallbacks(lambda result: self._answered(ticket, result, None),
                           lambda failure: self._answered(ticket, None, failure))
        return []

    def _answered(self, ticket: int, frame: Any, failure: Failure | None) -> None:
        if self._capture is not None and self._capture[0] == ticket:
            self._capture = None
        if failure is not None:
            if failure.check(defer.CancelledError):
                return
            self.run(self._captureFailed(ticket, failure))
        else:
            self.run(self._captured(ticket, frame))

    def _captured(self, ticket: int, frame: Any) -> list[Any]:
        if isinstance(frame, (bytearray, memoryview)):
            frame = bytes(frame)
        elif not isinstance(frame, bytes):
            try:
                raise TypeError("the source gave %s, not bytes" % (type(frame).__name__,))
            except TypeError:
                return self._captureFailed(ticket, Failure())
        return self.role.captured(ticket, frame, self.now(), int(time.time() * 1000))

    def _captureFailed(self, ticket: int, failure: Failure) -> list[Any]:
        expected = failure.check(FrameUnavailable, TimeoutError, defer.TimeoutError) is not None
        kind = failure.type.__name__ if failure.type is not None else "error"
        reason = failure.getErrorMessage() or kind
        if not expected:
            reason = "%s: %s" % (kind, reason)
            self._failure = failure
        actions = self.role.capture_failed(ticket, reason, self.now(), unexpected=not expected)
        if not any(isinstance(action, Log) for action in actions):
            self._failure = None
        return actions

    def _cancelCapture(self, ticket: int) -> None:
        if self._capture is not None and self._capture[0] == ticket:
            _, pending = self._capture
            self._capture = None
            pending.cancel()
