"""One client connection on the board: its bytes to the core, the core's frames to its socket.

The connection's task writes each frame it is handed as the header and
memoryview slices of the one shared frame buffer, awaiting ``drain()``
after each slice, so no client ever holds a copy of a frame. A second task
reads: the request goes to the core, and an empty read means the peer left.
"""

try:
    import asyncio
except ImportError:  # MicroPython before 1.21 calls it uasyncio
    import uasyncio as asyncio

#: Bytes asked of the socket per read.
READ_BYTES = 256
#: Messages that may wait to be written to one connection (a frame and a few
#: protocol 2 messages); a connection that lets more pile up is closed.
MAX_OUTBOX = 16


class Connection:
    """A connection, as the driver handle the core's ServerRole knows it by."""

    def __init__(self, server, reader, writer, peer):
        self.server = server
        self.reader = reader
        self.writer = writer
        self.peer = peer
        #: True once the core closed the connection (or the peer left).
        self.closing = False
        self._abort = False
        self._outbox = []
        self._writing = False
        self._wake = asyncio.Event()
        self._task = None

    def give(self, parts):
        """The core's Write: send ``parts`` after what is already waiting."""
        if len(self._outbox) >= MAX_OUTBOX:
            self.close(True)
            return
        self._outbox.append(parts)
        self._wake.set()

    def close(self, abort):
        """The core's Close: at once (``abort``), or once what was handed over is written."""
        self.closing = True
        if abort:
            self._abort = True
            self._outbox = []
            if self._writing and self._task is not None:
                self._task.cancel()
        self._wake.set()

    async def serve(self):
        """Serve the connection from its request to its close."""
        server = self.server
        self._task = asyncio.current_task()
        reading = asyncio.create_task(self._read()) if not self.closing else None
        try:
            await self._write()
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            if reading is not None:
                reading.cancel()
            self._outbox = []
            try:
                self.writer.close()
                await self.writer.wait_closed()
            except (OSError, asyncio.CancelledError):
                pass
            server.run(server.role.disconnected(self, server.now()))

    async def _write(self):
        server = self.server
        chunk = server.config["chunk_bytes"]
        writer = self.writer
        while True:
            if self._outbox:
                parts = self._outbox.pop(0)
                self._writing = True
                for part in parts[:-1]:
                    writer.write(part)
                view = memoryview(parts[-1])
                for start in range(0, len(view), chunk):
                    writer.write(view[start:start + chunk])
                    await writer.drain()
                if not len(view):
                    await writer.drain()
                view = parts = None
                self._writing = False
                if not self._outbox:
                    server.run(server.role.written(self, server.now()))
                continue
            if self.closing:
                return
            self._wake.clear()
            await self._wake.wait()

    async def _read(self):
        server = self.server
        try:
            while True:
                data = await self.reader.read(READ_BYTES)
                if not data:
                    break
                server.run(server.role.receive(self, data, server.now()))
        except OSError:
            pass
        self.close(True)


def describe(writer):
    """``(peer, host)`` of a connection: ``"192.168.1.9:5120"`` and ``"192.168.1.9"``."""
    try:
        peer = writer.get_extra_info("peername")
    except (KeyError, AttributeError):
        return "?", "?"
    if isinstance(peer, tuple):
        return "%s:%s" % (peer[0], peer[1]), str(peer[0])
    try:
        import socket
        family, host, port = socket.sockaddr(peer)[:3]
        host = socket.inet_ntop(family, host)
        return "%s:%s" % (host, port), host
    except (AttributeError, ImportError, OSError, TypeError, ValueError):
        return "?", "?"
