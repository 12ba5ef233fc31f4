"""Helpers for the server tests: raw loopback clients, scripted sources, log capture."""

import socket

from twisted.internet import defer, reactor
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, serverFromString
from twisted.internet.protocol import Protocol
from twisted.logger import formatEvent, globalLogPublisher
from zope.interface import implementer

from tcpcam.core.framing import FrameDecoder
from tcpcam.server import TCPCamServerFactory
from tcpcam.server.sources import IFrameSource
from tcpcam.server.sources.files import HelloSource

#: Bound on every wait in the server tests, in seconds.
WAIT = 10.0
#: The PIN the test servers use.
PIN = "1235"


def quickFactory(source=None, **settings):
    """A server factory with short timers, serving ``Hello World`` by default."""
    settings.setdefault("idleTimeout", 0.05)
    settings.setdefault("handshakeTimeout", 5.0)
    settings.setdefault("sourceRetryDelay", 0.01)
    return TCPCamServerFactory(source or HelloSource(), pin=PIN, reactor=reactor, **settings)


@defer.inlineCallbacks
def listening(factory):
    """Listen on a free loopback port; returns the port (call stopListening after)."""
    port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    return port


class RawClient(Protocol):
    """Sends the given byte segments, a pause before each, and records what comes back.

    ``segments`` is a list of ``(delay seconds, bytes)``. With ``reading``
    false the client never reads (its kernel buffer fills up).
    """

    def __init__(self, segments=(), reading=True, receiveBuffer=None):
        self.segments = list(segments)
        self.reading = reading
        self.receiveBuffer = receiveBuffer
        self.decoder = FrameDecoder()
        self.frames = []
        self.received = 0
        self.done = defer.Deferred()

    def connectionMade(self):
        self.localPort = self.transport.getHost().port
        if self.receiveBuffer is not None:
            self.transport.getHandle().setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, self.receiveBuffer)
        if not self.reading:
            self.transport.pauseProducing()
        self._sendNext()

    def _sendNext(self):
        if not self.segments:
            return
        delay, data = self.segments.pop(0)

        def send():
            if self.transport.connected:
                self.transport.write(data)
                self._sendNext()

        reactor.callLater(delay, send)

    def dataReceived(self, data):
        self.received += len(data)
        self.frames.extend(self.decoder.feed(data))

    def connectionLost(self, reason):
        self.done.callback(self)


@defer.inlineCallbacks
def connect(port, segments=(), reading=True, receiveBuffer=None, bindAddress=None):
    """Connect a :class:`RawClient` to the listening ``port``; fires when connected."""
    endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", port.getHost().port, timeout=WAIT,
                                  bindAddress=bindAddress)
    client = RawClient(segments, reading, receiveBuffer)
    yield connectProtocol(endpoint, client)
    return client


def finished(client, timeout=WAIT):
    """Deferred firing with ``client`` once the server closed it (bounded)."""
    return client.done.addTimeout(timeout, reactor)


@defer.inlineCallbacks
def fetch(port, *segments, **options):
    """Connect, send ``segments`` (bytes, sent 0.01 s apart), wait for the close."""
    client = yield connect(port, [(0.01, data) for data in segments], **options)
    yield finished(client)
    return client


def sleep(seconds):
    """A Deferred firing after ``seconds``."""
    from twisted.internet.task import deferLater

    return deferLater(reactor, seconds, lambda: None)


@implementer(IFrameSource)
class ScriptedSource:
    """A source whose answers the test chooses.

    Each element of ``script`` is bytes (returned), an exception (raised), or
    ``"wait"``: a Deferred the test fires through :meth:`release`. After the
    script it returns ``fallback``.
    """

    def __init__(self, script=(), fallback=b"frame"):
        self.script = list(script)
        self.fallback = fallback
        self.calls = 0
        self.waiting = []

    def nextFrame(self):
        self.calls += 1
        step = self.script.pop(0) if self.script else self.fallback
        if isinstance(step, BaseException):
            raise step
        if step == "wait":
            waiting = defer.Deferred()
            self.waiting.append(waiting)
            return waiting
        return step

    def release(self, frame):
        """Fire the oldest waiting request with ``frame``."""
        self.waiting.pop(0).callback(frame)


class LogCapture:
    """Collects formatted log messages while installed (use as a context manager)."""

    def __init__(self):
        self.messages = []
        self.failures = []

    def __call__(self, event):
        self.messages.append(formatEvent(event) or "")
        if event.get("log_failure") is not None:
            self.failures.append(event["log_failure"])
            self.messages.append(str(event["log_failure"].getErrorMessage()))

    def __enter__(self):
        globalLogPublisher.addObserver(self)
        return self

    def __exit__(self, *exc):
        globalLogPublisher.removeObserver(self)

    def matching(self, *words):
        """Messages that contain every one of ``words``."""
        return [message for message in self.messages if all(word in message for word in words)]


@defer.inlineCallbacks
def waitFor(predicate, timeout=WAIT, step=0.01):
    """Poll ``predicate`` until true; raises AssertionError after ``timeout`` seconds."""
    for _ in range(int(timeout / step)):
        if predicate():
            return
        yield sleep(step)
    raise AssertionError("condition not met within %.1f s" % timeout)
