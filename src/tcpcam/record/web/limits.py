"""Connection limits of the web interface, so web clients can never stop the recording.

Every web connection goes through :class:`ConnectionLimits`, a wrapping
factory that bounds the connections in all and per address:

- the total is at most ``--web-max-connections`` and never more than the
  file descriptor limit leaves once :data:`FD_RESERVE` descriptors (and
  :data:`FD_PER_CAMERA` per camera) are kept for the cameras, their files,
  the logs and the database (:func:`connectionBudget`);
- when the total is reached, a new connection closes the quietest connection
  of the address holding the most, so a flood from a few addresses makes room
  for everyone else instead of locking them out; when one address has its
  share (``--web-connections-per-address``), its own quietest one goes;
- a connection closed to make room holds its descriptor until the next turn
  of the reactor, so at most :data:`EVICTION_MARGIN` may be closing at once;
  beyond that a new connection is closed at once;
- each connection's kernel send buffer is :data:`SEND_BUFFER_BYTES`, which
  bounds what a client that stops reading holds in the kernel and makes the
  stream's stall deadline start soon.

Idle connections are closed by the HTTP channel's own timeout
(``--web-idle-timeout``, see :mod:`tcpcam.record.web.site`).
"""

from __future__ import annotations

import socket
from typing import TYPE_CHECKING, Any, cast

from twisted.internet.interfaces import IAddress, IReactorTime, ITCPTransport
from twisted.protocols.policies import ProtocolWrapper, WrappingFactory

if TYPE_CHECKING:
    _Factory = WrappingFactory["LimitedConnection"]
else:  # Twisted before 24.7 has no generic WrappingFactory
    _Factory = WrappingFactory

#: Descriptors kept for the process itself: standard streams, the reactor, logs, the index database, retention.
FD_RESERVE = 64
#: Descriptors kept for each camera: its connection, the file being written, its event log, its index.
FD_PER_CAMERA = 8
#: Connections closed to make room that may still hold their descriptor at once.
EVICTION_MARGIN = 8
#: The fewest web connections the interface takes, however low the descriptor limit.
MIN_CONNECTIONS = 4
#: Kernel send buffer of each web connection, in bytes.
SEND_BUFFER_BYTES = 256 * 1024


def descriptorLimit() -> int | None:
    """The soft limit on open file descriptors, or None if there is none (or no way to know)."""
    try:
        import resource
    except ImportError:  # pragma: no cover - not on POSIX
        return None
    soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]
    return None if soft == resource.RLIM_INFINITY else int(soft)


def connectionBudget(configured: int, cameras: int, limit: int | None) -> int:
    """The web connections allowed: ``configured``, fewer if the descriptor ``limit`` needs room for the rest."""
    if limit is None:
        return configured
    room = limit - FD_RESERVE - FD_PER_CAMERA * cameras - EVICTION_MARGIN
    return max(MIN_CONNECTIONS, min(configured, room))


def _hostOf(address: IAddress | None) -> str:
    host = getattr(address, "host", None)
    return host if isinstance(host, str) else type(address).__name__


class LimitedConnection(ProtocolWrapper):
    """One web connection: its address and when it last received or sent anything."""

    factory: ConnectionLimits
    address = ""
    lastActive = 0.0
    closing = False

    def makeConnection(self, transport: Any) -> None:
        """Set the send buffer, note the time, and connect the HTTP channel."""
        self.lastActive = self.factory.clock.seconds()
        try:
            transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER_BYTES)
        except (AttributeError, OSError):  # not a socket (a test transport, TLS over something else)
            pass
        ProtocolWrapper.makeConnection(self, transport)

    def dataReceived(self, data: bytes) -> None:
        """Note the activity and pass the bytes on."""
        self.lastActive = self.factory.clock.seconds()
        ProtocolWrapper.dataReceived(self, data)

    def write(self, data: bytes) -> None:
        """Note the activity and send."""
        self.lastActive = self.factory.clock.seconds()
        ProtocolWrapper.write(self, data)

    def writeSequence(self, data: Any) -> None:
        """Note the activity and send."""
        self.lastActive = self.factory.clock.seconds()
        ProtocolWrapper.writeSequence(self, data)

    def evict(self) -> None:
        """Close the connection at once to make room for a new one."""
        self.closing = True
        cast(ITCPTransport, self.transport).abortConnection()


class ConnectionLimits(_Factory):
    """Wrap the web site's factory: bound the connections in all and per address (see the module)."""

    protocol = LimitedConnection
    noisy = False

    def __init__(self, wrappedFactory: Any, clock: IReactorTime, maxConnections: int, perAddress: int) -> None:
        super().__init__(wrappedFactory)
        self.clock = clock
        self.maxConnections = maxConnections
        self.perAddress = perAddress
        self._byAddress: dict[str, set[LimitedConnection]] = {}
        self._open = 0
        self._closing: set[LimitedConnection] = set()
        #: Connections accepted, closed at once for want of room, and closed to make room.
        self.accepted = 0
        self.refused = 0
        self.evicted = 0

    @property
    def open(self) -> int:
        """Connections open and not being closed."""
        return self._open

    def ofAddress(self, host: str) -> int:
        """Connections ``host`` holds (not counting those being closed)."""
        return len(self._byAddress.get(host, ()))

    def buildProtocol(self, addr: IAddress | None) -> LimitedConnection | None:  # type: ignore[override]
        """A wrapped HTTP channel, after making room; None (close at once) if no room can be made."""
        host = _hostOf(addr)
        mine = self._byAddress.get(host, set())
        victim: LimitedConnection | None = None
        if len(mine) >= self.perAddress:
            victim = self._quietest(mine)
        elif self._open >= self.maxConnections:
            victim = self._quietest(max(self._byAddress.values(), key=len))
        if victim is not None or self._open >= self.maxConnections:
            if victim is None or len(self._closing) >= EVICTION_MARGIN:
                self.refused += 1
                return None
            self._forget(victim)
            self._closing.add(victim)
            self.evicted += 1
            victim.evict()
        wrapper = super().buildProtocol(addr)
        wrapper.address = host
        return wrapper

    @staticmethod
    def _quietest(connections: set[LimitedConnection]) -> LimitedConnection | None:
        return min(connections, key=lambda connection: connection.lastActive, default=None)

    def registerProtocol(self, p: LimitedConnection) -> None:
        """A connection is made: count it."""
        super().registerProtocol(p)
        self._byAddress.setdefault(p.address, set()).add(p)
        self._open += 1
        self.accepted += 1

    def unregisterProtocol(self, p: LimitedConnection) -> None:
        """A connection is gone: forget it."""
        super().unregisterProtocol(p)
        self._forget(p)
        self._closing.discard(p)

    def _forget(self, p: LimitedConnection) -> None:
        mine = self._byAddress.get(p.address)
        if mine is None or p not in mine:
            return
        mine.discard(p)
        self._open -= 1
        if not mine:
            del self._byAddress[p.address]

    def closeAll(self) -> None:
        """Close every connection at once (the web interface is stopping)."""
        for connection in list(self.protocols):
            cast(ITCPTransport, connection.transport).abortConnection()
