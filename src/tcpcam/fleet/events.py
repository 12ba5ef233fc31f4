"""The fleet's events on a JetStream stream: ``tcpcam.events.CAMERA.KIND``, JSON, any process can follow them.

Kinds: ``connect``, ``disconnect``, ``connect_failed``, ``bad_frame``,
``disk_error``, ``motion_start``, ``motion_end``, ``gap`` (frames of a
held camera stopped for longer than the segment gap, with ``start`` and
``end``), ``lease_taken``, ``lease_released``, ``lease_lost``. Each body
holds ``ts`` (the recorder's Unix seconds), ``recorder``, ``camera``,
``event`` and the event's fields.

Events wait in a bounded queue (:attr:`EventPublisher.maxQueued`) while NATS
is unreachable and go out in order when it is back; each carries a
``Nats-Msg-Id`` so a publish repeated after a lost answer is stored once.
When the queue is full the oldest event is dropped and counted.
"""

from __future__ import annotations

import asyncio
import json
import secrets
import time
from collections import deque
from typing import Any

from twisted.logger import Logger

from tcpcam.fleet.natslink import EVENTS_PREFIX, NatsLink

log = Logger(namespace="tcpcam.fleet")


class EventPublisher:
    """Queue events and publish them in order (see the module docstring)."""

    #: Events queued at most while NATS is unreachable.
    maxQueued = 10_000
    #: Seconds between attempts while publishing fails.
    retrySeconds = 0.5

    def __init__(self, link: NatsLink, recorder: str) -> None:
        self.link = link
        self.recorder = recorder
        self._queue: deque[tuple[str, str, bytes]] = deque()
        self._wake = asyncio.Event()
        self._boot = secrets.token_hex(4)
        self._seq = 0
        self._stopped = False
        self.published = 0
        self.dropped = 0

    @property
    def queued(self) -> int:
        """Events waiting."""
        return len(self._queue)

    def publish(self, camera: str, kind: str, **fields: Any) -> None:
        """Queue one event (it goes out as soon as NATS takes it)."""
        self._seq += 1
        body = {"ts": round(time.time(), 3), "recorder": self.recorder, "camera": camera, "event": kind}
        body.update(fields)
        if len(self._queue) >= self.maxQueued:
            self._queue.popleft()
            self.dropped += 1
        subject = "%s.%s.%s" % (EVENTS_PREFIX, camera, kind)
        self._queue.append(("%s-%s-%d" % (self.recorder, self._boot, self._seq), subject,
                            json.dumps(body, default=str).encode()))
        self._wake.set()

    def stop(self) -> None:
        """Stop publishing (what is queued is dropped with the process)."""
        self._stopped = True
        self._wake.set()

    async def run(self) -> None:
        """Publish until :meth:`stop`."""
        while not self._stopped:
            if not self._queue:
                self._wake.clear()
                await self._wake.wait()
                continue
            msgId, subject, body = self._queue[0]
            try:
                await asyncio.wait_for(self.link.js.publish(subject, body, headers={"Nats-Msg-Id": msgId}),
                                       self.link.requestTimeout)
            except Exception:
                await asyncio.sleep(self.retrySeconds)
                continue
            if self._queue and self._queue[0][0] == msgId:
                self._queue.popleft()
            self.published += 1

    async def flush(self, timeout: float) -> bool:
        """Wait (at most ``timeout`` seconds) until every queued event went out; True if they did."""
        deadline = time.monotonic() + timeout
        while self._queue and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        return not self._queue
