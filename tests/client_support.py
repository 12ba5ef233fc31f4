"""Test helpers for the client: a scripted raw-bytes server and a process runner.

The server is not tcpcam's own: it reads the two request tokens and then
writes exactly the bytes a test tells it to, so the client is tested against
the wire format rather than against our server.
"""

import os
import socket
import sys

import pytest
from twisted.internet import defer, protocol, task
from twisted.internet.endpoints import serverFromString

from tcpcam.core.framing import encode_frame

#: Seconds any single wait in these tests may take before it fails.
WAIT = 10


def frames_bytes(payloads):
    """Return the wire bytes of ``payloads`` as consecutive frames."""
    return b"".join(encode_frame(payload) for payload in payloads)


class ScriptedServer(protocol.Protocol):
    """Collects the request, then calls ``factory.script(self)`` once.

    ``lost`` fires when the connection is closed, from either side.
    """

    def connectionMade(self):
        self.received = b""
        self.started = False
        self.lost = defer.Deferred()
        self.transport.setTcpNoDelay(True)
        self.factory.connections.append(self)
        if not self.factory.connected.called:
            self.factory.connected.callback(self)

    def dataReceived(self, data):
        self.received += data
        if not self.started and self.received.count(b"\n") >= 2:
            self.started = True
            self.factory.script(self)

    def connectionLost(self, reason=protocol.connectionDone):
        self.lost.callback(None)

    def sendAndClose(self, data):
        """Write ``data`` and close the connection once it is sent."""
        self.transport.write(data)
        self.transport.loseConnection()

    def trickle(self, clock, data, delay=0.002):
        """Write ``data`` one byte per ``delay`` seconds; fires when all is written."""
        chunks = iter([data[index:index + 1] for index in range(len(data))])
        return task.cooperate(_paced(clock, self.transport, chunks, delay)).whenDone()


def _paced(clock, transport, chunks, delay):
    for chunk in chunks:
        transport.write(chunk)
        yield task.deferLater(clock, delay, lambda: None)


class ScriptedFactory(protocol.Factory):
    """Factory of :class:`ScriptedServer`; ``script(server)`` runs after the request."""

    protocol = ScriptedServer
    noisy = False

    def __init__(self, script):
        self.script = script
        self.connections = []
        self.connected = defer.Deferred()


def get_reactor():
    """The global reactor, which pytest-twisted runs."""
    from twisted.internet import reactor

    return reactor


# Test modules import these two fixtures under their function names, and
# tests ask for them by the fixture names.


@pytest.fixture(name="reactor")
def reactor_fixture():
    """The global reactor."""
    return get_reactor()


@pytest.fixture(name="ports")
def ports_fixture():
    """A list for the listening ports a test opens; each stops listening after the test."""
    started = []
    yield started
    for port in started:
        port.stopListening()


@defer.inlineCallbacks
def listen(reactor, script):
    """Listen on a loopback port; returns ``(port, factory, client endpoint string)``.

    ``factory.port`` is the port number as text, for command lines.
    """
    factory = ScriptedFactory(script)
    port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    factory.port = str(port.getHost().port)
    address = "tcp:host=127.0.0.1:port=%s" % factory.port
    return port, factory, address


@defer.inlineCallbacks
def serve(reactor, ports, script):
    """As :func:`listen`, closing the port after the test (``ports`` fixture); returns ``(factory, address)``."""
    port, factory, address = yield listen(reactor, script)
    ports.append(port)
    return factory, address


def unused_port():
    """Return a loopback port that nothing listens on (bound, never listening)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port


class Collected(protocol.ProcessProtocol):
    """Collects a child's stdout, stderr and exit status; ``ended`` fires with self."""

    def __init__(self):
        self.out = b""
        self.err = b""
        self.status = None
        self.ended = defer.Deferred()
        self.started = defer.Deferred()

    def connectionMade(self):
        self.started.callback(self)

    def outReceived(self, data):
        self.out += data

    def errReceived(self, data):
        self.err += data

    def processEnded(self, reason):
        self.status = reason.value.exitCode
        if self.status is None:
            self.status = -reason.value.signal
        self.ended.callback(self)


def spawn(reactor, args, cwd=None, usePTY=False):
    """Run ``python args...`` as a child process; returns its :class:`Collected`.

    With ``usePTY`` the child's stdio is a terminal and all of it arrives in ``out``.
    """
    collected = Collected()
    env = dict(os.environ)
    env["PYTHONUNBUFFERED"] = "1"
    reactor.spawnProcess(collected, sys.executable, [sys.executable, *args], env=env, path=cwd, usePTY=usePTY)
    return collected


@defer.inlineCallbacks
def run_python(reactor, args, cwd=None, timeout=WAIT, usePTY=False):
    """Run ``python args...`` to the end (killed after ``timeout`` s); returns Collected."""
    collected = spawn(reactor, args, cwd, usePTY)
    ended = collected.ended
    ended.addTimeout(timeout, reactor)
    try:
        yield ended
    except defer.TimeoutError:
        collected.transport.signalProcess("KILL")
        raise
    return collected
