"""Live frames across the fleet: the lease holder answers requests for a camera's newest frame over NATS.

The holder of camera NAME listens on ``tcpcam.live.NAME``; a request's body
is the frame count the asker has (empty for none), and the reply is the
newest frame (headers ``Tcpcam-Frames`` and ``Tcpcam-Time``), or an empty body
when nothing is newer. Frames of 30-100 KB are well inside NATS's 1 MiB
payload limit, and only cameras someone watches cost anything.

:class:`RemoteCamera` stands in for a :class:`~tcpcam.record.camera.CameraRecorder`
of another recorder in the web pages: the same ``latest``, ``frames``,
``lastFrameTime``, viewers and ``status()``.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from tcpcam.fleet.natslink import LIVE_SUBJECT, NatsLink

if TYPE_CHECKING:
    from tcpcam.record.camera import CameraRecorder, Viewer

#: Largest reply accepted (a frame), bytes.
MAX_REPLY_BYTES = 1024 * 1024


class LiveResponder:
    """Answer live requests for the cameras this recorder holds."""

    def __init__(self, link: NatsLink) -> None:
        self.link = link
        self._subscriptions: dict[str, Any] = {}
        self.answered = 0

    async def serve(self, name: str, camera: CameraRecorder) -> None:
        """Answer for ``camera`` from now on."""
        if name in self._subscriptions or self.link.nc is None:
            return

        async def answer(msg: Any) -> None:
            frame = camera.latest
            since = msg.data.decode("ascii", "replace").strip()
            fresh = frame is not None and since != str(camera.frames)
            headers = {"Tcpcam-Frames": str(camera.frames), "Tcpcam-Time": repr(camera.lastFrameTime or 0.0)}
            if msg.reply:
                await self.link.nc.publish(msg.reply, frame if fresh and frame is not None else b"", headers=headers)
                self.answered += 1

        self._subscriptions[name] = await self.link.nc.subscribe(LIVE_SUBJECT % name, cb=answer)

    async def stopServing(self, name: str) -> None:
        """Stop answering for camera ``name``."""
        subscription = self._subscriptions.pop(name, None)
        if subscription is not None:
            try:
                await subscription.unsubscribe()
            except Exception:
                pass


class RemoteCamera:
    """A camera recorded by another recorder, as the web pages see it (see the module docstring).

    While it has viewers it asks for a frame every :attr:`pollSeconds`; an
    access to :attr:`latest` asks for one if the last answer is older than
    :attr:`staleSeconds` (the page gets the previous one meanwhile).
    """

    #: Seconds between requests while someone watches the stream.
    pollSeconds = 0.2
    #: Seconds after which a newest frame is asked for again.
    staleSeconds = 0.5
    #: Seconds a request waits for the holder.
    requestSeconds = 1.0

    def __init__(self, name: str, link: NatsLink, statusOf: Callable[[], dict[str, Any]]) -> None:
        self.name = name
        self.link = link
        self.statusOf = statusOf
        self.frames = 0
        self._latest: bytes | None = None
        self.lastFrameTime: float | None = None
        self._viewers: set[Viewer] = set()
        self._asked = 0.0
        self._asking = False
        self._polling: asyncio.Task[None] | None = None
        self.requests = 0

    @property
    def latest(self) -> bytes | None:
        """The newest frame fetched (fetching a newer one in the background if it is stale)."""
        if time.monotonic() - self._asked > self.staleSeconds:
            self._ask()
        return self._latest

    @property
    def viewers(self) -> int:
        """Viewers of the stream."""
        return len(self._viewers)

    def addViewer(self, viewer: Viewer) -> None:
        """Hand ``viewer`` each new frame."""
        self._viewers.add(viewer)
        if self._polling is None:
            self._polling = asyncio.ensure_future(self._poll())

    def removeViewer(self, viewer: Viewer) -> None:
        """Stop handing frames to ``viewer``."""
        self._viewers.discard(viewer)

    def status(self) -> dict[str, Any]:
        """The camera's state, as its holder last told the fleet."""
        return self.statusOf()

    def _ask(self) -> None:
        if self._asking:
            return
        self._asking = True
        self._asked = time.monotonic()
        asyncio.ensure_future(self._fetch())

    async def _fetch(self) -> None:
        try:
            if self.link.nc is None:
                return
            self.requests += 1
            reply = await self.link.nc.request(LIVE_SUBJECT % self.name, str(self.frames).encode(),
                                               timeout=self.requestSeconds)
        except Exception:
            return
        finally:
            self._asking = False
        self._asked = time.monotonic()
        headers = reply.headers or {}
        if reply.data and len(reply.data) <= MAX_REPLY_BYTES:
            self._latest = bytes(reply.data)
            try:
                self.frames = int(headers.get("Tcpcam-Frames", self.frames + 1))
                self.lastFrameTime = float(headers.get("Tcpcam-Time", time.time()))
            except ValueError:
                self.frames += 1
            for viewer in list(self._viewers):
                viewer.frameAvailable(self._latest)

    async def _poll(self) -> None:
        try:
            while self._viewers:
                if not self._asking:
                    self._asking = True
                    await self._fetch()
                await asyncio.sleep(self.pollSeconds)
        finally:
            self._polling = None
