"""Two drivers of one core, for tests that play the same scenario against both.

:class:`TwistedDriver` runs the reference server in the test's reactor;
:class:`FirmwareDriver` runs the firmware under the unix MicroPython. Both
serve the JPEG files of a folder through a camera that fails the capture
numbers it is told to, and both show what they logged as lines.
"""

import socket
import time

from firmware_support import Firmware
from server_support import LogCapture, listening
from twisted.internet import defer, reactor
from zope.interface import implementer

from tcpcam.server import IFrameSource, TCPCamServerFactory
from tcpcam.server.sources.base import FrameUnavailable
from tcpcam.server.sources.files import DirectorySource

#: Bound on every socket operation and wait, in seconds.
WAIT = 10.0
#: Bytes of each test frame.
FRAME_BYTES = 3000


@implementer(IFrameSource)
class StandInCamera:
    """The JPEG files of a folder, failing the capture numbers in ``fail``, as the board's stand-in does."""

    def __init__(self, folder, fail=()):
        self.files = DirectorySource(str(folder))
        self.fail = set(fail)
        self.captures = 0

    def nextFrame(self):
        self.captures += 1
        if self.captures in self.fail:
            raise FrameUnavailable("the camera gave no frame")
        return self.files.nextFrame()


class TwistedDriver:
    """The reference server in this process, on the test's reactor."""

    name = "twisted"

    def __init__(self, folder, fail, settings):
        self.source = StandInCamera(folder, fail)
        seconds = {key[:-3]: value / 1000 for key, value in settings.items() if key.endswith("_ms")}
        self.factory = TCPCamServerFactory(
            self.source, pin="1235", reactor=reactor, interval=seconds.get("interval", 0.02),
            maxClients=settings.get("max_clients", 8), sendTimeout=seconds.get("send_timeout", 30),
            handshakeTimeout=seconds.get("handshake_timeout", 3), sourceRetryDelay=0.01,
            firstByteTimeout=seconds.get("first_byte_timeout", 2))
        self.log = LogCapture()
        self.port = None

    @defer.inlineCallbacks
    def start(self):
        self.log.__enter__()
        listeningPort = yield listening(self.factory)
        self._listening = listeningPort
        self.port = listeningPort.getHost().port

    @defer.inlineCallbacks
    def stop(self):
        self.log.__exit__()
        yield self._listening.stopListening()

    def lines(self):
        return list(self.log.messages)


class FirmwareDriver:
    """The firmware under the unix MicroPython, with its stand-in camera."""

    name = "firmware"

    def __init__(self, folder, fail, settings, workdir):
        config = {"interval_ms": 20, "chunk_bytes": 1024}
        config.update(settings)
        env = {"TCPCAM_CAMERA_FAIL": ",".join(str(number) for number in fail)} if fail else {}
        self.firmware = Firmware(workdir, config, frames_dir=folder, env=env)
        self.port = None

    def start(self):
        self.firmware.start()
        self.port = self.firmware.port

    def stop(self):
        self.firmware.stop()

    def lines(self):
        return self.firmware.drain()


def connect(port, request=None, receive_buffer=None, source="127.0.0.1"):
    """A blocking client socket, bound to ``source``, that sends ``request`` if given."""
    sock = socket.socket()
    sock.bind((source, 0))
    if receive_buffer:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, receive_buffer)
    sock.settimeout(WAIT)
    sock.connect(("127.0.0.1", port))
    if request is not None:
        sock.sendall(request)
    return sock


def closed_without_a_byte(sock):
    """True when the server closed ``sock`` without sending anything."""
    try:
        return sock.recv(10) == b""
    except ConnectionResetError:
        return True


def refused(port, request=None, source="127.0.0.1"):
    """True when a new connection (sending ``request``) is closed by the server with nothing sent."""
    try:
        with connect(port, request, source=source) as sock:
            return closed_without_a_byte(sock)
    except (ConnectionResetError, BrokenPipeError):
        return True


def wait_for_line(driver, text):
    """The first line the driver logged that contains ``text``; AssertionError after WAIT seconds."""
    deadline = time.monotonic() + WAIT
    while time.monotonic() < deadline:
        for line in driver.lines():
            if text in line:
                return line
        time.sleep(0.02)
    raise AssertionError("no %r in:\n%s" % (text, "\n".join(driver.lines())))


