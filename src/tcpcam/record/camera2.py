"""The connections of a camera that has a device key: protocol 2, or the legacy request where it speaks only that.

:class:`CameraLinkFactory` is the factory a camera's ClientService connects
with. For each connection it asks the recorder's
:class:`~tcpcam.core.client_role2.ProtocolMemory` which protocol the
endpoint speaks:

- protocol 2: a :class:`~tcpcam.client.camera.Camera2Protocol` that proves
  the key, then applies the camera's configured settings (one signed ``set``,
  waited for), then asks for an endless stream; its frames, health figures,
  settings and the camera's reason before a close go to the listener (the
  :class:`~tcpcam.record.camera.CameraRecorder`);
- the legacy protocol: a connection of the legacy factory (the PIN, then an
  endless stream), for ``recheck_ms`` (a day) after the endpoint was found
  to speak only that. Each try of protocol 2 costs such a camera one wrong
  PIN against its throttle, so it is not tried on every reconnect.

A camera that closes the protocol 2 opening unanswered is remembered as
legacy, and the listener hears of it (:meth:`Link2Listener.legacyFound`) so
it can reconnect at once, with the legacy request.
"""

from __future__ import annotations

from typing import Any, Protocol

from twisted.internet.interfaces import IAddress, IProtocol, IProtocolFactory, IReactorTime
from twisted.python.failure import Failure
from zope.interface import implementer

from tcpcam.client.camera import Camera2Protocol, CameraFrame
from tcpcam.core.client_role2 import ProtocolMemory
from tcpcam.core.errors import LegacyServer
from tcpcam.record.health import printable


class Link2Listener(Protocol):
    """What a :class:`CameraLinkFactory` tells its camera."""

    def connecting(self, version: int) -> None:
        """A connection is being made with protocol ``version`` (1: legacy, 2)."""

    def sessionReady(self, connection: Camera2Protocol) -> None:
        """Both sides proved the key: ``connection.hello``, ``settings`` and ``health`` are the camera's."""

    def settingsOutcome(self, settings: dict[str, Any], error: str | None) -> None:
        """The camera applied the configured ``settings`` (``error`` None) or refused them, saying why."""

    def frame2Received(self, frame: CameraFrame) -> None:
        """A stream frame with its facts (``seq``, ``capture_ms``, ``missed``...)."""

    def healthReceived(self, facts: dict[str, Any]) -> None:
        """The camera's health figures."""

    def settingsReceived(self, settings: dict[str, Any]) -> None:
        """The camera's settings changed (by any client)."""

    def closingTold(self, reason: str, text: str) -> None:
        """The camera says why it closes the connection."""

    def legacyFound(self) -> None:
        """The camera closed the protocol 2 opening unanswered: it speaks only the legacy protocol."""


#: Seconds the camera has to answer the settings (then the stream is asked for anyway).
SETTINGS_TIMEOUT = 10.0
#: Characters of the camera's reason for refusing the settings that are kept.
MAX_ERROR_CHARS = 200


def milliseconds(clock: IReactorTime) -> int:
    """The clock's time in the core's integer milliseconds."""
    return int(round(clock.seconds() * 1000))


@implementer(IProtocolFactory)
class CameraLinkFactory:
    """Build each connection of a camera with a key (see the module).

    ``address`` names the endpoint in ``memory``; ``legacy`` builds the
    legacy connections; ``settings`` (possibly empty) are applied on every
    protocol 2 connect before the stream is asked for.
    """

    #: Seconds the camera has to answer the settings before the stream is asked for anyway
    #: (at most the frame timeout).
    settingsTimeout = SETTINGS_TIMEOUT

    def __init__(self, key: bytes, address: str, memory: ProtocolMemory, clock: IReactorTime,
                 legacy: IProtocolFactory, listener: Link2Listener, settings: dict[str, Any],
                 maxFrameBytes: int, frameTimeout: float | None) -> None:
        self.key = key
        self.address = address
        self.memory = memory
        self.clock = clock
        self.legacy = legacy
        self.listener = listener
        self.settings = dict(settings)
        self.maxFrameBytes = maxFrameBytes
        self.frameTimeout = frameTimeout

    def doStart(self) -> None:
        """Nothing to start."""

    def doStop(self) -> None:
        """Nothing to stop."""

    def protocolNow(self) -> int:
        """The protocol the next connection opens with: 2, or 1 while the endpoint is remembered as legacy."""
        return int(self.memory.protocol(self.address, milliseconds(self.clock)))

    def buildProtocol(self, addr: IAddress) -> IProtocol | None:
        """A protocol 2 connection, or the legacy factory's."""
        if self.protocolNow() != 2:
            self.listener.connecting(1)
            return self.legacy.buildProtocol(addr)
        self.listener.connecting(2)
        listener = self.listener
        connection = Camera2Protocol(self.key, self.clock, self.frameTimeout, self.maxFrameBytes)
        connection.onFrame = listener.frame2Received
        connection.onHealth = listener.healthReceived
        connection.onSettings = listener.settingsReceived
        connection.onClosing = listener.closingTold
        # Failures of the handshake reach the recorder through ``finished``.
        connection.ready.addCallbacks(self._ready, lambda failure: None)
        connection.finished.addErrback(self._ended)
        return connection

    def _ended(self, failure: Failure) -> Failure:
        if failure.check(LegacyServer):
            self.memory.found_legacy(self.address, milliseconds(self.clock))
            self.listener.legacyFound()
        return failure

    def _ready(self, connection: Camera2Protocol) -> None:
        self.memory.found_protocol2(self.address)
        self.listener.sessionReady(connection)
        if not self.settings:
            self._stream(connection)
            return
        settings = dict(self.settings)
        settled: list[str | None] = []

        def settle(error: str | None) -> None:
            if settled:
                return
            settled.append(error)
            if timer.active():
                timer.cancel()
            if not connection.role.done:
                self.listener.settingsOutcome(settings, error)
            self._stream(connection)

        wait = self.settingsTimeout if self.frameTimeout is None else min(self.settingsTimeout, self.frameTimeout)
        timer = self.clock.callLater(wait, settle, "no answer in %g s" % wait)
        asked = connection.request("set", settings=settings)
        asked.addCallbacks(lambda result: settle(None),
                           lambda failure: settle(printable(failure.getErrorMessage(), MAX_ERROR_CHARS)))

    def _stream(self, connection: Camera2Protocol) -> None:
        if connection.role.ready:
            # How the stream ends reaches the recorder through ``finished``.
            connection.stream(0).addErrback(lambda failure: None)
