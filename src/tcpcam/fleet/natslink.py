"""The fleet's NATS connection: connect (and keep reconnecting), and the buckets and stream the fleet uses.

::

    KV  tcpcam-cameras     the camera registry: NAME -> JSON (endpoint, PIN or its reference, options, pin)
    KV  tcpcam-leases      one lease per camera: cam.NAME -> JSON (recorder, token); TTL = the lease time
    KV  tcpcam-recorders   one presence key per live recorder: ID -> JSON (cameras held, web URL); same TTL
    stream TCPCAM_EVENTS   tcpcam.events.CAMERA.KIND -> JSON (connect, disconnect, motion, gap, lease ...)
    subject tcpcam.live.CAMERA   request -> reply: the newest frame of a camera, from its lease holder

The lease time is the lease bucket's TTL, chosen by whoever makes the bucket
first (``--lease-seconds``); every recorder reads it back from the bucket, so
the whole fleet counts with one value.
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable
from typing import Any

from twisted.logger import Logger

log = Logger(namespace="tcpcam.fleet")

#: The camera registry bucket.
REGISTRY_BUCKET = "tcpcam-cameras"
#: The lease bucket.
LEASE_BUCKET = "tcpcam-leases"
#: The presence bucket of live recorders.
PRESENCE_BUCKET = "tcpcam-recorders"
#: The event stream and its subjects.
EVENTS_STREAM = "TCPCAM_EVENTS"
EVENTS_PREFIX = "tcpcam.events"
#: Request subject of a camera's newest frame (``%s``: the camera).
LIVE_SUBJECT = "tcpcam.live.%s"
#: Bytes a value of each bucket may hold (the server refuses larger ones).
REGISTRY_VALUE_BYTES = 64 * 1024
LEASE_VALUE_BYTES = 1024
PRESENCE_VALUE_BYTES = 512 * 1024
#: Bytes the event stream keeps at most, and seconds.
EVENTS_MAX_BYTES = 256 * 1024 * 1024
EVENTS_MAX_AGE = 7 * 24 * 3600.0
#: Seconds within which a repeated event id is dropped by the server.
EVENTS_DUPLICATE_WINDOW = 120.0


class FleetUnavailable(Exception):
    """NATS cannot be reached (one line for the user)."""


class NatsLink:
    """One NATS connection with its JetStream context, reconnecting forever once connected.

    ``onState(connected)`` is called (in the loop) when the connection drops
    and when it comes back.
    """

    #: Seconds one connection attempt may take.
    connectTimeout = 2.0
    #: Seconds between reconnection attempts.
    reconnectWait = 0.5
    #: Seconds a JetStream request (KV put, publish) waits for its answer.
    requestTimeout = 2.0
    #: Bytes of publishes buffered while disconnected (nats-py sends them after reconnecting).
    pendingBytes = 2 * 1024 * 1024
    #: Seconds between pings, and pings unanswered before the connection counts as dead.
    pingInterval = 2.0
    maxOutstandingPings = 2

    def __init__(self, urls: list[str], name: str, onState: Callable[[bool], object] | None = None) -> None:
        self.urls = urls
        self.name = name
        self.onState = onState
        self.nc: Any = None
        self.js: Any = None
        self.connected = False
        self.disconnects = 0
        self.reconnects = 0

    async def connect(self, attempts: int = 0) -> None:
        """Connect; ``attempts`` > 0 tries that many times then raises FleetUnavailable, 0 tries forever."""
        import nats

        async def disconnected() -> None:
            if self.connected:
                self.connected = False
                self.disconnects += 1
                log.warn("fleet: lost the connection to NATS; reconnecting every {wait:g} s", wait=self.reconnectWait)
                self._state(False)

        async def reconnected() -> None:
            self.connected = True
            self.reconnects += 1
            log.info("fleet: connected to NATS again")
            self._state(True)

        async def error(exception: Exception) -> None:
            pass  # every failed attempt would be a line; the state changes above are logged once

        tries = 0
        while True:
            tries += 1
            try:
                # nats-py's first connect, told to reconnect forever, would also wait forever: reach a server first.
                await self._probe()
                self.nc = await nats.connect(
                    self.urls, name=self.name, connect_timeout=self.connectTimeout,
                    reconnect_time_wait=self.reconnectWait, max_reconnect_attempts=-1, allow_reconnect=True,
                    ping_interval=self.pingInterval, max_outstanding_pings=self.maxOutstandingPings,
                    pending_size=self.pendingBytes, disconnected_cb=disconnected, reconnected_cb=reconnected,
                    error_cb=error)
                break
            except Exception as failure:
                if attempts and tries >= attempts:
                    raise FleetUnavailable("cannot reach NATS at %s: %s" % (", ".join(self.urls),
                                                                          describe(failure))) from None
                if tries == 1:
                    log.warn("fleet: cannot reach NATS at {urls} ({error}); trying again every {wait:g} s",
                             urls=", ".join(self.urls), error=describe(failure), wait=self.reconnectWait)
                await asyncio.sleep(self.reconnectWait)
        self.js = self.nc.jetstream(timeout=self.requestTimeout)
        self.connected = True

    async def _probe(self) -> None:
        """Return once a TCP connection to one of the servers opens; raise the last error otherwise."""
        from urllib.parse import urlsplit

        error: Exception = OSError("no server")
        for url in self.urls:
            parts = urlsplit(url)
            try:
                _, writer = await asyncio.wait_for(asyncio.open_connection(parts.hostname, parts.port or 4222),
                                                   self.connectTimeout)
            except (OSError, asyncio.TimeoutError) as failure:
                error = failure
                continue
            writer.close()
            return
        raise error

    def _state(self, connected: bool) -> None:
        if self.onState is not None:
            self.onState(connected)

    async def bucket(self, name: str, ttl: float | None = None, history: int = 1, maxValueBytes: int = 0) -> Any:
        """Open bucket ``name``, making it (with ``ttl`` seconds, values of ``maxValueBytes`` at most) if need be."""
        from nats.js.errors import BucketNotFoundError

        try:
            return await self.js.key_value(name)
        except BucketNotFoundError:
            pass
        kwargs: dict[str, Any] = {"bucket": name, "history": history}
        if ttl:
            kwargs["ttl"] = ttl
        if maxValueBytes:
            kwargs["max_value_size"] = maxValueBytes
        try:
            return await self.js.create_key_value(**kwargs)
        except Exception:
            return await self.js.key_value(name)  # another process made it at the same moment

    async def bucketTtl(self, kv: Any) -> float:
        """The bucket's TTL in seconds (0 for none)."""
        status = await kv.status()
        return float(status.ttl or 0)

    async def eventStream(self) -> None:
        """Make the event stream if it does not exist."""
        from nats.js.errors import NotFoundError

        try:
            await self.js.stream_info(EVENTS_STREAM)
            return
        except NotFoundError:
            pass
        try:
            await self.js.add_stream(name=EVENTS_STREAM, subjects=[EVENTS_PREFIX + ".>"], max_bytes=EVENTS_MAX_BYTES,
                                     max_age=EVENTS_MAX_AGE, duplicate_window=EVENTS_DUPLICATE_WINDOW)
        except Exception:
            await self.js.stream_info(EVENTS_STREAM)  # made meanwhile by another process; else this raises

    async def close(self) -> None:
        """Close the connection at once (nothing waits for a drain)."""
        nc, self.nc = self.nc, None
        self.connected = False
        if nc is not None:
            try:
                await nc.close()
            except Exception:
                pass


def describe(error: BaseException) -> str:
    """An exception in a few words."""
    text = str(error)
    return "%s: %s" % (type(error).__name__, text) if text else type(error).__name__


async def bounded(awaitable: Awaitable[Any], seconds: float) -> Any:
    """``awaitable``, or asyncio.TimeoutError after ``seconds``."""
    return await asyncio.wait_for(awaitable, seconds)
