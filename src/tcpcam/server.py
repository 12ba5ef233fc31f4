"""The reference TCPCam server: frames from one source to many clients.

Listen with any endpoint::

    from twisted.internet.endpoints import serverFromString
    from tcpcam.server import TCPCamServerFactory
    from tcpcam.sources import sourceFromSpec

    factory = TCPCamServerFactory(sourceFromSpec("pattern:VGA"), pin="1235")
    serverFromString(reactor, "tcp:3333").listen(factory)

Each connection runs a :class:`~tcpcam.session.Session`; the factory owns one
:class:`~tcpcam.broadcast.Broadcast` and a
:class:`~tcpcam.server_pump.FramePump` that asks the source for frames only
while a streaming client can take one.
"""

import socket

from twisted.internet.interfaces import IPullProducer
from twisted.internet.protocol import Factory, Protocol
from twisted.logger import Logger
from zope.interface import implementer

from tcpcam.broadcast import DEFAULT_MAX_CLIENTS, Broadcast
from tcpcam.errors import WrongPin
from tcpcam.events import Accepted, Finished, Rejected
from tcpcam.request import DEFAULT_IDLE_MS, check_pin
from tcpcam.server_pump import FramePump
from tcpcam.session import Session
from tcpcam.throttle import PinThrottle

#: The original's PIN (menuconfig default).
DEFAULT_PIN = "1235"
#: Seconds a client has to send its PIN and command.
DEFAULT_HANDSHAKE_TIMEOUT = 10.0
#: TCP keep-alive: idle seconds, seconds between probes, probes (as the original).
DEFAULT_KEEPALIVE = (5, 5, 3)
#: Seconds the source may take for one frame before it is skipped.
DEFAULT_SOURCE_TIMEOUT = 30.0
#: Seconds a closing connection may take to flush its last frame.
DEFAULT_CLOSE_TIMEOUT = 30.0
#: Seconds a streaming connection may take to accept one frame.
DEFAULT_SEND_TIMEOUT = 30.0

_DEFAULT = object()

# Socket options for keep-alive idle, interval and count; the first name the
# platform has is used (macOS calls the idle time TCP_KEEPALIVE).
_KEEPALIVE_OPTIONS = (("TCP_KEEPIDLE", "TCP_KEEPALIVE"), ("TCP_KEEPINTVL",), ("TCP_KEEPCNT",))


def describePeer(address):
    """``host:port`` for an address, or its ``str`` when it has no host."""
    host = getattr(address, "host", None)
    if host is None:
        return str(address)
    return "%s:%s" % (host, getattr(address, "port", "?"))


def setKeepAlive(transport, idle, interval, count):
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
    """One client connection: its request, then the frames it is owed.

    It registers itself as a pull producer on its transport, so the
    transport says when everything written so far has gone to the kernel
    (:meth:`resumeProducing`). Until then the connection takes no new frame:
    at most one frame per client waits in the server's memory, and a slow
    client skips frames instead of holding up the others.
    """

    log = Logger()

    def __init__(self):
        self.session = None
        self.peer = "?"
        #: Frames written to the transport and not yet handed to the kernel (0 or 1).
        self.pendingFrames = 0
        self._ready = False
        self._producing = False
        self._handshakeCall = None
        self._idleCall = None
        self._abortCall = None
        self._stallCall = None
        self._closing = False

    def connectionMade(self):
        """Register with the broadcast, set keep-alive, start the handshake clock."""
        factory = self.factory
        self.peer = describePeer(self.transport.getPeer())
        self.session = Session(factory.pin)
        if not factory.broadcast.add(self, self.session):
            self._reject("server full: %d clients already" % (factory.maxClients,))
            return
        if factory.keepAlive is not None:
            try:
                setKeepAlive(self.transport, *factory.keepAlive)
            except (AttributeError, OSError) as error:
                self.log.debug("keep-alive not set for {peer}: {error}", peer=self.peer, error=error)
        self._producing = True
        self.transport.registerProducer(self, False)
        self._handshakeCall = factory.reactor.callLater(factory.handshakeTimeout, self._handshakeTimedOut)

    def dataReceived(self, data):
        """Feed the request to the session; bytes after the request are ignored."""
        if self._closing or not self.session.awaiting_request:
            return
        self._handle(self.session.receive_data(data))
        self._armIdle()

    def connectionLost(self, reason):
        """Forget the connection and stop its timers."""
        self._cancelTimers()
        self._ready = False
        if self.session is not None:
            if self.session.streaming:
                self.log.info("{peer} left after {frames} frames", peer=self.peer, frames=self.session.frames_sent)
            self.session.connection_lost()
        self.factory.broadcast.remove(self)

    def resumeProducing(self):
        """The transport has sent everything written so far: take a frame again."""
        self._ready = True
        self.pendingFrames = 0
        if self._stallCall is not None and self._stallCall.active():
            self._stallCall.cancel()
        self._stallCall = None
        if self.session.streaming and not self._closing:
            self.factory.pump.kick(ready=True)

    def stopProducing(self):
        """The connection is going away."""
        self._ready = False

    def canTakeFrame(self):
        """True when nothing this connection was sent still waits in our buffers."""
        return self._ready and not self._closing

    def sendFrame(self, header, payload):
        """Write one frame; the same payload object goes to every client."""
        self._ready = False
        self.pendingFrames += 1
        self.transport.writeSequence((header, payload))
        if self._stallCall is None:
            self._stallCall = self.factory.reactor.callLater(self.factory.sendTimeout, self._stalled)

    def finishStream(self):
        """All N frames are written: close once they are flushed."""
        self.log.info("{peer} got its {frames} frames", peer=self.peer, frames=self.session.frames_sent)
        self._close()

    def disconnect(self):
        """Close this connection once what was written to it is flushed."""
        self.log.info("closing {peer}: the server is stopping", peer=self.peer)
        self._close()

    def _handle(self, events):
        for event in events:
            if isinstance(event, Accepted):
                self._accepted(event)
            elif isinstance(event, Rejected):
                reason = event.reason
                if isinstance(event.error, WrongPin):
                    blocked = self.factory.pinFailed(self.transport.getPeer())
                    if blocked:
                        reason = "%s; %s" % (reason, blocked)
                self._reject(reason)
            elif isinstance(event, Finished):
                self.finishStream()

    def _accepted(self, event):
        self._cancelTimers()
        self.factory.pinSucceeded(self.transport.getPeer())
        self.log.info("{peer} streams {what}", peer=self.peer,
                      what="without end" if event.endless else "%d frames" % event.frames)
        self.factory.pump.kick()

    def _reject(self, reason):
        self.factory.connectionRejected(self.peer, reason)
        self._close()

    def _close(self):
        self._cancelTimers()
        self._closing = True
        self.factory.broadcast.remove(self)
        if self._producing:
            self._producing = False
            self.transport.unregisterProducer()
        self.transport.loseConnection()
        # A peer that stops reading would keep the connection open forever,
        # outside maxClients, while its last frame waits to be flushed.
        self._abortCall = self.factory.reactor.callLater(self.factory.closeTimeout, self.transport.abortConnection)

    def _armIdle(self):
        if self._idleCall is not None and self._idleCall.active():
            self._idleCall.cancel()
        self._idleCall = None
        if self.session.wants_idle_timer and not self._closing:
            self._idleCall = self.factory.reactor.callLater(self.factory.idleTimeout, self._peerIdle)

    def _peerIdle(self):
        self._idleCall = None
        self._handle(self.session.peer_idle())
        self._armIdle()

    def _stalled(self):
        # The peer is alive (keep-alive cannot tell) but has stopped reading:
        # it would hold its place among maxClients for ever.
        self._stallCall = None
        self.log.warn("dropping {peer}: it took no frame for {seconds:g} s after {frames} frames",
                      peer=self.peer, seconds=self.factory.sendTimeout, frames=self.session.frames_sent)
        self._closing = True
        self.factory.broadcast.remove(self)
        self.transport.abortConnection()

    def _handshakeTimedOut(self):
        self._handshakeCall = None
        self._handle(self.session.handshake_timed_out())

    def _cancelTimers(self):
        for name in ("_handshakeCall", "_idleCall", "_abortCall", "_stallCall"):
            call = getattr(self, name)
            if call is not None and call.active():
                call.cancel()
            setattr(self, name, None)


class TCPCamServerFactory(Factory):
    """Serve frames from ``source`` (an :class:`~tcpcam.sources.IFrameSource`).

    The limits below are class attributes, overridden per server by the
    keyword arguments of the same names. ``throttle`` is a
    :class:`~tcpcam.throttle.PinThrottle` (default: five wrong PINs a minute
    from one address refuse it for a minute), or ``None`` for no throttling.
    Every refused connection goes through :meth:`connectionRejected`, which
    logs it; override it to do more.
    """

    protocol = TCPCamServerProtocol
    log = Logger()
    noisy = False

    #: Most connections at once (streaming or still sending their request).
    maxClients = DEFAULT_MAX_CLIENTS
    #: Seconds between frames (0: as fast as the clients take them).
    interval = 0.0
    #: Seconds a connection has to send PIN and command.
    handshakeTimeout = DEFAULT_HANDSHAKE_TIMEOUT
    #: Seconds of quiet after which an unterminated PIN or command is complete.
    idleTimeout = DEFAULT_IDLE_MS / 1000.0
    #: TCP keep-alive (idle seconds, interval seconds, probe count), or None.
    keepAlive = DEFAULT_KEEPALIVE
    #: Seconds the source may take for a frame before the frame is skipped.
    sourceTimeout = DEFAULT_SOURCE_TIMEOUT
    #: Seconds to wait before asking a failed source again.
    sourceRetryDelay = 0.25
    #: Seconds a closing connection has to take what was written to it
    #: (its last frames) before it is aborted.
    closeTimeout = DEFAULT_CLOSE_TIMEOUT
    #: Seconds a streaming connection may take to accept one frame before it
    #: is dropped: a peer that stops reading would otherwise keep its place.
    sendTimeout = DEFAULT_SEND_TIMEOUT

    def __init__(self, source, pin=DEFAULT_PIN, interval=0.0, maxClients=DEFAULT_MAX_CLIENTS,
                 handshakeTimeout=DEFAULT_HANDSHAKE_TIMEOUT, idleTimeout=DEFAULT_IDLE_MS / 1000.0,
                 keepAlive=DEFAULT_KEEPALIVE, reactor=None, throttle=_DEFAULT,
                 sourceTimeout=DEFAULT_SOURCE_TIMEOUT, sourceRetryDelay=0.25, closeTimeout=DEFAULT_CLOSE_TIMEOUT,
                 sendTimeout=DEFAULT_SEND_TIMEOUT):
        if reactor is None:
            from twisted.internet import reactor
        check_pin(pin)
        if interval < 0 or min(handshakeTimeout, idleTimeout, closeTimeout, sendTimeout) <= 0:
            raise ValueError("interval must be >= 0 and the timeouts > 0")
        self.source = source
        self.pin = pin
        self.interval = interval
        self.maxClients = maxClients
        self.handshakeTimeout = handshakeTimeout
        self.idleTimeout = idleTimeout
        self.keepAlive = tuple(keepAlive) if keepAlive is not None else None
        self.sourceTimeout = sourceTimeout
        self.sourceRetryDelay = sourceRetryDelay
        self.closeTimeout = closeTimeout
        self.sendTimeout = sendTimeout
        self.reactor = reactor
        self.throttle = PinThrottle() if throttle is _DEFAULT else throttle
        self.broadcast = Broadcast(maxClients)
        self.pump = self._makePump()

    def buildProtocol(self, addr):
        """Refuse throttled addresses and connections beyond ``maxClients`` at once."""
        host = getattr(addr, "host", None)
        if self.throttle is not None and host is not None:
            wait = self.throttle.blocked_for(host, self.reactor.seconds())
            if wait > 0:
                self.connectionRejected(describePeer(addr), "too many wrong PINs from %s: refused for %d s more"
                                        % (host, wait + 0.999))
                return None
        if self.broadcast.full:
            self.connectionRejected(describePeer(addr), "server full: %d clients already" % (self.maxClients,))
            return None
        return Factory.buildProtocol(self, addr)

    def stopFactory(self):
        """The last port stopped listening: stop the source and close every connection."""
        self.pump.stop()
        for handle in self.broadcast.handles():
            handle.disconnect()

    def startFactory(self):
        """Listening again after a stop: frames may be asked for again."""
        if self.pump.stopped:
            self.pump = self._makePump()

    def _makePump(self):
        return FramePump(self.source, self.broadcast, self.reactor, self.interval,
                         self.sourceTimeout, self.sourceRetryDelay)

    def connectionRejected(self, peer, reason):
        """Hook called once for every refused connection; logs ``reason``."""
        self.log.warn("rejected {peer}: {reason}", peer=peer, reason=reason)

    def pinFailed(self, address):
        """A wrong PIN came from ``address``: count it against the address.

        Returns ``None``, or the words for the log line of this rejection when
        this failure gets the address refused.
        """
        host = getattr(address, "host", None)
        if self.throttle is None or host is None:
            return None
        if not self.throttle.failed(host, self.reactor.seconds()):
            return None
        return "%d wrong PINs: %s is refused for %g s" % (self.throttle.max_failures, host, self.throttle.block)

    def pinSucceeded(self, address):
        """The right PIN came from ``address``; forgets its failures."""
        host = getattr(address, "host", None)
        if self.throttle is not None and host is not None:
            self.throttle.succeeded(host, self.reactor.seconds())
