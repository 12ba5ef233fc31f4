"""Remote control of a camera over protocol 2, with a fall back to the legacy protocol.

A few lines do everything::

    from twisted.internet import defer, task
    from tcpcam.client.camera import connectCamera

    @defer.inlineCallbacks
    def main(reactor):
        camera = yield connectCamera(reactor, "tcp:host=192.168.4.1:port=3333", key="ABCD-...", pin="1235")
        print(camera.device, camera.settings)
        yield camera.set(framesize="SVGA", quality=80)
        picture = yield camera.snapshot()
        camera.onFrame = lambda frame: print(frame.seq, frame.missed, len(frame.payload))
        yield camera.stream(10)
        yield camera.close()

    task.react(main)

Against a server that speaks only the legacy protocol (the original
firmware), :func:`connectCamera` falls back to the legacy request by itself,
says so once in the log, and remembers it for the endpoint
(:class:`~tcpcam.core.client_role2.ProtocolMemory`: each try costs that
server one failed request, so it is tried again only after a day). A legacy
camera streams and takes snapshots (one-frame requests); settings, rate and
pause need protocol 2 and raise :class:`NotSupported`.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from typing import Any, cast

from twisted.internet import defer, protocol
from twisted.internet.interfaces import IReactorTime, IStreamClientEndpoint
from twisted.logger import Logger
from twisted.python.failure import Failure

from tcpcam.client.connecting import connectTo, endpointFor
from tcpcam.client.protocol import fetch
from tcpcam.client.readsize import AdaptiveReadSize
from tcpcam.common.deadline import DeadlineTimer, toMilliseconds
from tcpcam.core import limits
from tcpcam.core.actions import Close, Write
from tcpcam.core.client_role2 import Client2Role, Closing, Frame, Health, Hello, ProtocolMemory, Ready, Result, Settings
from tcpcam.core.errors import LegacyServer, TCPCamError
from tcpcam.core.mac import parse_key

log = Logger(namespace="tcpcam.client")

#: The memory shared by every camera of this process, unless one is given.
MEMORY = ProtocolMemory()


class NotSupported(TCPCamError):
    """What was asked needs protocol 2, and the camera speaks only the legacy protocol."""


class RequestRefused(TCPCamError):
    """The camera answered a request with an error."""


class CameraFrame:
    """A frame and what is known of it: ``payload`` (a view valid during the call), ``seq``,
    ``capture_ms`` (the device's clock), ``wall_time`` (Unix seconds, or None when the device's
    clock is not set), ``missed`` (frames it wanted and did not get since the last one) and
    ``snapshot``. A legacy camera gives only the payload and a local count as ``seq``."""

    def __init__(self, payload: memoryview, seq: int, capture_ms: int | None = None, wall_ms: int = 0,
                 missed: int = 0, snapshot: bool = False) -> None:
        self.payload = payload
        self.seq = seq
        self.capture_ms = capture_ms
        self.wall_time = wall_ms / 1000 if wall_ms else None
        self.missed = missed
        self.snapshot = snapshot



class Camera2Protocol(protocol.Protocol):
    """One protocol 2 connection, driving the core's :class:`~tcpcam.core.client_role2.Client2Role`.

    :attr:`ready` fires with the protocol once both sides proved the key (or
    fails with LegacyServer, WrongKey, ServerClosed...); :attr:`finished` when
    the connection is gone (with None, or the failure that ended it).
    """

    def __init__(self, key: bytes, clock: IReactorTime, frameTimeout: float | None = None,
                 maxFrameBytes: int = limits.MAX_FRAME_BYTES) -> None:
        self.role = Client2Role(key, os.urandom, maxFrameBytes,
                                None if frameTimeout is None else max(1, toMilliseconds(frameTimeout)))
        self.clock: Any = clock
        self.ready: defer.Deferred[Camera2Protocol] = defer.Deferred()
        self.finished: defer.Deferred[None] = defer.Deferred()
        #: Called with each stream frame (a CameraFrame); if it returns a Deferred, reading stops until it fires.
        self.onFrame: Callable[[CameraFrame], Any] | None = None
        #: Called with each new health dict, and each new settings dict.
        self.onHealth: Callable[[dict], Any] | None = None
        self.onSettings: Callable[[dict], Any] | None = None
        #: Called with the reason word and text the camera gives before it closes (None: they are logged).
        self.onClosing: Callable[[str, str], Any] | None = None
        self.hello: dict = {}
        self._results: dict[int, defer.Deferred[Result]] = {}
        self._snapshots: list[defer.Deferred[bytes]] = []
        self._streamDone: defer.Deferred[int] | None = None
        self._streamFrames = 0
        self._streamWanted = 0
        self._holding = False
        self._timer = DeadlineTimer(self.clock, self._tick)
        self._reads = AdaptiveReadSize()

    @property
    def holding(self) -> bool:
        """True while a Deferred from :attr:`onFrame` holds the stream."""
        return self._holding

    @property
    def settings(self) -> dict:
        """The camera's settings as it last sent them."""
        return self.role.settings

    @property
    def health(self) -> dict:
        """The device's health figures as it last sent them."""
        return self.role.health

    def now(self) -> int:
        """The clock in the core's milliseconds."""
        return toMilliseconds(self.clock.seconds())

    # Requests.

    def request(self, op: str, **arguments: Any) -> defer.Deferred[Result]:
        """Send one signed request; fires with its Result, or fails RequestRefused with the camera's words."""
        if not self.role.ready:
            return defer.fail(RequestRefused("the camera is not ready for requests"))
        counter, write = self.role.request(op, self.now(), **arguments)
        answered: defer.Deferred[Result] = defer.Deferred()
        self._results[counter] = answered
        self._write(write)
        return answered

    def stream(self, frames: int = 0) -> defer.Deferred[int]:
        """Stream ``frames`` frames (0 or less: without end) to :attr:`onFrame`; fires with the count at the end."""
        self._streamDone = defer.Deferred()
        self._streamFrames = 0
        self._streamWanted = frames if frames > 0 else 0
        done = self._streamDone
        self.request("stream", frames=frames).addErrback(lambda failure: None if done.called else done.errback(failure))
        return done

    def snapshot(self) -> defer.Deferred[bytes]:
        """One picture, also while the stream is paused."""
        picture: defer.Deferred[bytes] = defer.Deferred()

        def asked(result: Result) -> None:
            self._snapshots.append(picture)

        self.request("snapshot").addCallbacks(asked, picture.errback)
        return picture

    def close(self) -> defer.Deferred[None]:
        """Close the connection; fires when it is gone."""
        if self.transport is not None and not self.finished.called:
            self.transport.loseConnection()
        return self.finished

    # Twisted.

    def connectionMade(self) -> None:
        """Open protocol 2."""
        self._reads.attach(self.transport)
        self._run(self.role.connected(self.now()))

    def dataReceived(self, data: bytes) -> None:
        """Hand the bytes to the role and act on what they bring."""
        self._reads.received(len(data))
        self.role.receive_data(data, self.now())
        self._drain()

    def connectionLost(self, reason: Failure = protocol.connectionDone) -> None:
        """Take what is left, then say how it ended."""
        self._stopTimer()
        self.role.connection_lost(self.now())
        self._drain()

    # Carrying out.

    def _write(self, write: Write) -> None:
        if self.transport is not None:
            self.transport.write(bytes(write.head))

    def _run(self, actions: list[Any]) -> None:
        for action in actions:
            if isinstance(action, Write):
                self._write(action)
            elif isinstance(action, Close) and self.transport is not None:
                cast(Any, self.transport).abortConnection()
        self._reschedule()

    def _drain(self) -> None:
        now = self.now()
        while not self._holding:
            item = self.role.next_item(now)
            if item is None:
                break
            if isinstance(item, Frame):
                self._frame(item)
            elif isinstance(item, (Write, Close)):
                self._run([item])
            else:
                self._event(item)
        if self.role.done:
            self._ended()
        self._reschedule()

    def _event(self, item: object) -> None:
        if isinstance(item, Hello):
            self.hello = item.info
        elif isinstance(item, Ready):
            pass
        elif isinstance(item, Settings):
            if not self.ready.called:
                self.ready.callback(self)
            elif self.onSettings is not None:
                self.onSettings(item.settings)
        elif isinstance(item, Health):
            if self.onHealth is not None:
                self.onHealth(item.facts)
        elif isinstance(item, Result):
            answered = self._results.pop(item.id, None)
            if answered is not None:
                if item.ok:
                    answered.callback(item)
                else:
                    answered.errback(RequestRefused(item.error or "refused"))
        elif isinstance(item, Frame):
            self._frame(item)
        elif isinstance(item, Closing):
            if self.onClosing is not None:
                self.onClosing(item.reason, item.text)
                return
            log.info("the camera closes the connection: {text}", text=item.text or item.reason)

    def _frame(self, frame: Frame) -> None:
        if frame.snapshot and self._snapshots:
            self._snapshots.pop(0).callback(bytes(frame.payload))
        if not frame.stream:
            return
        self._streamFrames += 1
        if self.onFrame is not None:
            try:
                outcome = self.onFrame(CameraFrame(frame.payload, frame.seq, frame.capture_ms, frame.wall_ms,
                                                   frame.missed))
            except Exception:
                self.role.cancel(Failure().value)
                return
            if isinstance(outcome, defer.Deferred):
                self._holding = True
                self.role.hold(self.now())
                if self.transport is not None:
                    cast(Any, self.transport).pauseProducing()
                outcome.addBoth(self._released)
        if self._streamWanted and self._streamFrames >= self._streamWanted:
            self._streamWanted = 0
            done, self._streamDone = self._streamDone, None
            if done is not None and not done.called:
                done.callback(self._streamFrames)

    def _released(self, outcome: object) -> None:
        self._holding = False
        self.role.release(self.now())
        if isinstance(outcome, Failure):
            self.role.cancel(outcome.value)
        elif self.transport is not None and not self.role.peer_closed:
            cast(Any, self.transport).resumeProducing()
        self._drain()

    def _ended(self) -> None:
        self._stopTimer()
        error = self.role.error
        if not self.role.peer_closed and self.transport is not None:
            cast(Any, self.transport).abortConnection()
            return
        waiting: list[defer.Deferred[Any]] = [self.ready, *self._results.values(), *self._snapshots]
        stream = self._streamDone
        if stream is not None and not stream.called:
            if error is not None:
                stream.errback(Failure(error))
            else:
                stream.callback(self._streamFrames)
        for pending in waiting:
            if not pending.called:
                pending.errback(Failure(error if error is not None else RequestRefused("the connection closed")))
        self._results.clear()
        self._snapshots = []
        if not self.finished.called:
            if error is not None:
                self.finished.errback(Failure(error))
            else:
                self.finished.callback(None)

    def _reschedule(self) -> None:
        self._timer.set(None if self.role.done else self.role.next_deadline())

    def _tick(self) -> None:
        self._run(self.role.tick(self.now()))
        self._drain()

    def _stopTimer(self) -> None:
        self._timer.cancel()


class _Factory(protocol.Factory):
    noisy = False

    def __init__(self, build: Callable[[], protocol.Protocol]) -> None:
        self._build = build

    def buildProtocol(self, addr: object) -> protocol.Protocol:
        return self._build()


class Camera:
    """A camera, over protocol 2 or (after a fall back) the legacy protocol."""

    def __init__(self, reactor: Any, endpoint: IStreamClientEndpoint, address: str, pin: str,
                 connection: Camera2Protocol | None, connectTimeout: float | None,
                 frameTimeout: float | None) -> None:
        self._reactor = reactor
        self._endpoint = endpoint
        self.address = address
        self._pin = pin
        self.connection = connection
        self._connectTimeout = connectTimeout
        self._frameTimeout = frameTimeout
        self._legacyCount = 0
        #: Called with each stream frame (a CameraFrame).
        self.onFrame: Callable[[CameraFrame], Any] | None = None

    @property
    def legacy(self) -> bool:
        """True when the camera speaks only the legacy protocol."""
        return self.connection is None

    @property
    def device(self) -> dict:
        """What the camera's hello told (empty for a legacy camera)."""
        if self.connection is None:
            return {}
        device = self.connection.hello.get("device")
        return device if isinstance(device, dict) else {}

    @property
    def settings(self) -> dict:
        """The camera's settings (empty for a legacy camera)."""
        return {} if self.connection is None else self.connection.settings

    @property
    def health(self) -> dict:
        """The device's last health figures (empty for a legacy camera)."""
        return {} if self.connection is None else self.connection.health

    def _protocol2(self, what: str) -> Camera2Protocol:
        if self.connection is None:
            raise NotSupported("%s needs protocol 2; %s speaks only the legacy protocol" % (what, self.address))
        return self.connection

    def set(self, **settings: Any) -> defer.Deferred[dict]:
        """Change camera settings (``framesize="SVGA", quality=80``); fires with all settings as applied."""
        connection = self._protocol2("changing settings")
        return connection.request("set", settings=settings).addCallback(lambda _: dict(connection.settings))

    def rate(self, fps: float | None = None, every: int | None = None) -> defer.Deferred[Result]:
        """This client's own rate: at most ``fps`` frames a second, or every ``every``-th frame (neither: all)."""
        arguments: dict[str, Any] = {}
        if fps is not None:
            arguments["fps"] = fps
        if every is not None:
            arguments["every"] = every
        return self._protocol2("a rate").request("rate", **arguments)

    def pause(self) -> defer.Deferred[Result]:
        """Stop the stream frames (snapshots still come)."""
        return self._protocol2("pausing").request("pause")

    def resume(self) -> defer.Deferred[Result]:
        """Start the stream frames again."""
        return self._protocol2("resuming").request("resume")

    def snapshot(self) -> defer.Deferred[bytes]:
        """One picture now (a legacy camera: a request for one frame)."""
        if self.connection is not None:
            return self.connection.snapshot()
        pictures: list[bytes] = []
        done = fetch(self._reactor, self._endpoint, self._pin, 1, lambda view: pictures.append(bytes(view)),
                     connectTimeout=self._connectTimeout, address=self.address, frameTimeout=self._frameTimeout)
        return done.addCallback(lambda _: pictures[0])

    def stream(self, frames: int = 0) -> defer.Deferred[int]:
        """Stream ``frames`` frames (0 or less: without end) to :attr:`onFrame`; fires with the count."""
        if self.connection is not None:
            self.connection.onFrame = self._deliver
            return self.connection.stream(frames)

        def received(view: memoryview) -> Any:
            self._legacyCount += 1
            return self._deliver(CameraFrame(view, self._legacyCount))

        done = fetch(self._reactor, self._endpoint, self._pin, frames, received, connectTimeout=self._connectTimeout,
                     address=self.address, frameTimeout=self._frameTimeout)
        return done.addCallback(lambda summary: summary.frames)

    def _deliver(self, frame: CameraFrame) -> Any:
        return self.onFrame(frame) if self.onFrame is not None else None

    def close(self) -> defer.Deferred[None]:
        """Close the protocol 2 connection (nothing to close for a legacy camera)."""
        if self.connection is None:
            return defer.succeed(None)
        return self.connection.close()


@defer.inlineCallbacks
def connectCamera(reactor: Any, endpoint: str | IStreamClientEndpoint, key: str | bytes | None = None,
                  pin: str = limits.DEFAULT_PIN, memory: ProtocolMemory | None = None,
                  connectTimeout: float | None = limits.CONNECT_TIMEOUT_S, frameTimeout: float | None = None,
                  address: str | None = None, maxFrameBytes: int = limits.MAX_FRAME_BYTES) -> Any:
    """Connect to a camera: protocol 2 with ``key``, else (or after a fall back) the legacy protocol.

    Fires with a :class:`Camera`. ``key`` is the device key as text or bytes.
    Without one, the camera is used with the legacy protocol and ``pin``.
    ``maxFrameBytes`` bounds a protocol 2 frame.
    """
    endpoint, address = endpointFor(reactor, endpoint, address)
    memory = MEMORY if memory is None else memory
    if key is None:
        return Camera(reactor, endpoint, address, pin, None, connectTimeout, frameTimeout)
    keyBytes = parse_key(key) if isinstance(key, str) else bytes(key)
    now = toMilliseconds(time.monotonic())
    if memory.protocol(address, now) == 2:
        factory = _Factory(lambda: Camera2Protocol(keyBytes, reactor, frameTimeout, maxFrameBytes))
        started = time.monotonic()
        connection = yield connectTo(reactor, endpoint, factory, connectTimeout, address)
        try:
            yield connection.ready
        except BaseException as error:
            # The failure that ended the handshake is the one reported; the
            # connection's own end says the same and is not waited for.
            connection.finished.addErrback(lambda _: None)
            if not isinstance(error, LegacyServer):
                raise
            memory.found_legacy(address, now)
            log.info("{address} speaks only the legacy protocol: using the legacy request (noticed in {ms:.0f} ms;"
                     " protocol 2 is tried there again in {hours:g} h)", address=address,
                     ms=(time.monotonic() - started) * 1000, hours=memory.recheck_ms / 3600000)
        else:
            memory.found_protocol2(address)
            return Camera(reactor, endpoint, address, pin, connection, connectTimeout, frameTimeout)
    return Camera(reactor, endpoint, address, pin, None, connectTimeout, frameTimeout)
