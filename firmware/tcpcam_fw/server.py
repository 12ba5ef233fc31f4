"""The asyncio server: accepts clients and fans each new frame out to them.

One task takes frames from the source, only while some streaming client can
take one, and publishes each through the core's Broadcast (newest connection
first). ``gc.collect()`` runs after every frame so the heap does not fragment
with frames of different sizes.
"""

try:
    import asyncio
except ImportError:  # MicroPython before 1.21 calls it uasyncio
    import uasyncio as asyncio
import gc
import time

from tcpcam.broadcast import Broadcast
from tcpcam.errors import WrongPin
from tcpcam_fw.client import Client
from tcpcam_fw.keepalive import set_keepalive
from tcpcam_fw.log import say

try:
    from tcpcam.throttle import PinThrottle
except ImportError:
    PinThrottle = None

#: Connections waiting to be accepted, as the original.
BACKLOG = 3


class FrameServer:
    """Serve frames from ``source`` to clients, with the limits in ``config``."""

    def __init__(self, config, source):
        self.config = config
        self.source = source
        self.broadcast = Broadcast(config["max_clients"])
        self.throttle = PinThrottle() if PinThrottle is not None else None
        self.frames = 0
        self.failed_captures = 0
        self._ready = asyncio.Event()
        self._keepalive_said = False
        self._clock_ms = 0
        self._stats_frames = 0
        self._clock_last = time.ticks_ms()

    async def serve(self):
        """Listen and produce frames until the program stops."""
        config = self.config
        try:
            server = await asyncio.start_server(self._accept, config["bind"], config["port"], BACKLOG)
        except OSError as error:
            say("server: cannot listen on %s:%d: %s" % (config["bind"], config["port"], error))
            raise
        say("server: listening on %s:%d, source %s" % (config["bind"], config["port"], config["source"]))
        try:
            await self._produce()
        finally:
            server.close()

    def client_ready(self):
        """A client may take a frame now (or left): wake the frame task."""
        self._ready.set()

    def set_keepalive(self, writer):
        """Keep-alive on a new connection; a port without it is said once."""
        config = self.config
        problem = set_keepalive(getattr(writer, "s", None), config["keepalive_idle"],
                                config["keepalive_interval"], config["keepalive_count"])
        if problem and not self._keepalive_said:
            self._keepalive_said = True
            say("server: " + problem)

    def pin_result(self, client, error):
        """Count a wrong PIN against the client's address."""
        if self.throttle is not None and isinstance(error, WrongPin):
            self.throttle.failed(_host(client.peer), self.now())

    def now(self):
        """Seconds since start, for the PIN throttle; never goes back when ticks_ms wraps."""
        ticks = time.ticks_ms()
        self._clock_ms += max(0, time.ticks_diff(ticks, self._clock_last))
        self._clock_last = ticks
        return self._clock_ms / 1000

    async def _accept(self, reader, writer):
        client = Client(self, reader, writer)
        if self.throttle is not None and not self.throttle.allowed(_host(client.peer), self.now()):
            say("client %s refused: too many wrong PINs" % client.peer)
            try:
                writer.close()
                await writer.wait_closed()
            except OSError:
                pass
            return
        await client.run()

    async def _produce(self):
        interval = self.config["interval_ms"]
        while True:
            if not self.broadcast.wants_frame(_can_take):
                self._ready.clear()
                await self._ready.wait()
                continue
            started = time.ticks_ms()
            frame = self.source.capture()
            if frame is False:
                self.failed_captures += 1
                say("server: capture failed (%d so far); frame skipped" % self.failed_captures)
            else:
                self._publish(frame)
            frame = None
            allocated = gc.mem_alloc() if self._stats_due() else -1
            gc.collect()
            if allocated >= 0:
                self._say_stats(allocated)
            wait = interval - time.ticks_diff(time.ticks_ms(), started)
            await asyncio.sleep_ms(wait if wait > 0 else 0)

    def _publish(self, frame):
        for client in self.broadcast.publish(frame, _can_take, _give):
            client.finish()
        self.frames += 1

    def _stats_due(self):
        every = self.config["stats_every"]
        return every and self.frames % every == 0 and self.frames != self._stats_frames

    def _say_stats(self, allocated):
        self._stats_frames = self.frames
        streaming = 0
        for client in self.broadcast.handles():
            if client.session.streaming:
                streaming += 1
        say("stats: frames=%d streaming=%d alloc_before_gc=%d alloc_after_gc=%d free=%d"
            % (self.frames, streaming, allocated, gc.mem_alloc(), gc.mem_free()))


def _can_take(client):
    return client.can_take()


def _give(client, frame):
    client.give(frame)


def _host(peer):
    return peer.rsplit(":", 1)[0]
