"""One client connection: its request through a Session, then its frames.

The connection's own task reads the request, then writes each frame it is
handed as the header and memoryview slices of the one shared frame buffer,
awaiting ``drain()`` after each slice, so no client ever holds a copy of a
frame. While a frame is being written the client is *busy* and skips the
frames published meanwhile: a slow client never holds up the others.
"""

try:
    import asyncio
except ImportError:  # MicroPython before 1.21 calls it uasyncio
    import uasyncio as asyncio
import time

from tcpcam.events import Accepted, Rejected
from tcpcam.framing import encode_header
from tcpcam.session import Session
from tcpcam_fw.log import say


class Client:
    """One connection, as a handle in the server's Broadcast."""

    def __init__(self, server, reader, writer):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.session = Session(server.config["pin"])
        self.peer = _describe(writer)
        #: True while a frame is being written to this connection.
        self.busy = False
        #: True once the connection is going away.
        self.closing = False
        #: True once the N-th frame was handed over.
        self.finished = False
        self._frame = None
        self._wake = asyncio.Event()

    def can_take(self):
        """Whether a frame handed over now would be written at once."""
        return not self.busy and not self.closing

    def give(self, frame):
        """Hand over a frame to write (the Broadcast's ``send``)."""
        self.busy = True
        self._frame = frame
        self._wake.set()

    def finish(self):
        """The Broadcast says this was the last frame: close once it is written."""
        self.finished = True

    async def run(self):
        """Serve the connection from its request to its close."""
        server = self.server
        try:
            if not server.broadcast.add(self, self.session):
                say("client %s refused: server full (%d clients)" % (self.peer, server.broadcast.max_clients))
                return
            server.set_keepalive(self.writer)
            if await self._request():
                watcher = asyncio.create_task(self._watch())
                try:
                    await self._stream()
                finally:
                    watcher.cancel()
        except (OSError, asyncio.CancelledError) as error:
            if self.session.streaming:
                say("client %s dropped after %d frames (%s)" % (self.peer, self.session.frames_sent, _why(error)))
        finally:
            await self._close()

    async def _request(self):
        session = self.session
        config = self.server.config
        deadline = time.ticks_add(time.ticks_ms(), config["handshake_timeout_ms"])
        while session.awaiting_request:
            remaining = time.ticks_diff(deadline, time.ticks_ms())
            if remaining <= 0:
                return self._handle(session.handshake_timed_out())
            idle = session.wants_idle_timer and config["idle_ms"] < remaining
            try:
                data = await asyncio.wait_for_ms(self.reader.read(256), config["idle_ms"] if idle else remaining)
            except asyncio.TimeoutError:
                if idle and self._handle(session.peer_idle()):
                    return True
                continue
            if not data:
                session.connection_lost()
                return False
            if self._handle(session.receive_data(data)):
                return True
        return False

    def _handle(self, events):
        for event in events:
            if isinstance(event, Accepted):
                what = "without end" if event.endless else "%d frames" % event.frames
                say("client %s streams %s" % (self.peer, what))
                self.server.client_ready()
                return True
            if isinstance(event, Rejected):
                say("client %s rejected: %s" % (self.peer, event.reason))
                self.server.pin_result(self, event.error)
        return False

    async def _stream(self):
        timeout = self.server.config["send_timeout_ms"]
        while not self.closing:
            await self._wake.wait()
            self._wake.clear()
            frame = self._frame
            if frame is None:
                continue
            self._frame = None
            try:
                await asyncio.wait_for_ms(self._write_frame(frame), timeout)
            except asyncio.TimeoutError:
                # A peer that is alive (keep-alive cannot tell) but has stopped
                # reading would hold its place among max_clients for ever.
                say("client %s dropped: it took no frame for %d ms after %d frames"
                    % (self.peer, timeout, self.session.frames_sent))
                return
            frame = None
            self.busy = False
            if self.finished:
                say("client %s got its %d frames" % (self.peer, self.session.frames_sent))
                return
            self.server.client_ready()

    async def _write_frame(self, frame):
        writer = self.writer
        chunk = self.server.config["chunk_bytes"]
        writer.write(encode_header(len(frame)))
        view = memoryview(frame)
        for start in range(0, len(view), chunk):
            writer.write(view[start:start + chunk])
            await writer.drain()
        if not len(view):
            await writer.drain()

    async def _watch(self):
        # Bytes after the request are ignored; an empty read means the peer left.
        try:
            while True:
                data = await self.reader.read(64)
                if not data:
                    break
        except OSError:
            pass
        if not self.finished:
            say("client %s left after %d frames" % (self.peer, self.session.frames_sent))
        self.closing = True
        self._wake.set()

    async def _close(self):
        self.closing = True
        self._frame = None
        self.server.broadcast.remove(self)
        self.session.connection_lost()
        try:
            self.writer.close()
            await self.writer.wait_closed()
        except OSError:
            pass
        self.server.client_ready()


def _describe(writer):
    try:
        peer = writer.get_extra_info("peername")
    except (KeyError, AttributeError):
        return "?"
    if isinstance(peer, tuple):
        return "%s:%s" % (peer[0], peer[1])
    try:
        import socket
        family, host, port = socket.sockaddr(peer)[:3]
        return "%s:%s" % (socket.inet_ntop(family, host), port)
    except (AttributeError, ImportError, OSError, TypeError, ValueError):
        return "?"


def _why(error):
    if isinstance(error, asyncio.CancelledError):
        return "cancelled"
    return str(error) or type(error).__name__
