"""The built-in simulated camera: the reference server with the ``pattern`` source.

It listens on a loopback port chosen by the system, so a recorder started
with no camera has real JPEG frames to record and show within seconds. Given
a device key it speaks protocol 2 (beside the legacy protocol), so the
default recorder records with sequence numbers, capture times and health.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any, cast

from twisted.application.service import Service
from twisted.internet.address import IPv4Address
from twisted.internet.defer import Deferred
from twisted.internet.endpoints import TCP4ClientEndpoint, serverFromString
from twisted.internet.interfaces import IListeningPort
from twisted.logger import Logger
from twisted.python.failure import Failure

if TYPE_CHECKING:
    from tcpcam.record.endpoints import LaterEndpoint
    from tcpcam.server import TCPCamServerFactory

log = Logger(namespace="tcpcam.record")


class SimulatedCamera(Service):
    """Run the reference server with a synthetic source, in this process, on loopback.

    ``endpoint`` is a :class:`~tcpcam.record.endpoints.LaterEndpoint` that is
    resolved to the listening port once it listens; ``key`` (None: legacy
    only) is the device key of protocol 2.
    """

    #: Where the simulated camera listens: loopback, a free port.
    listen = "tcp:0:interface=127.0.0.1"
    #: The frame source spec.
    source = "pattern"
    #: Seconds between frames.
    interval = 0.2

    def __init__(self, reactor: Any, pin: str, endpoint: LaterEndpoint, key: bytes | None = None) -> None:
        self._reactor = reactor
        self.pin = pin
        self.key = key
        self.endpoint = endpoint
        self.port: IListeningPort | None = None
        self._factory: TCPCamServerFactory | None = None
        self._listening: Deferred[IListeningPort] | None = None

    def startService(self) -> None:
        """Start listening."""
        from tcpcam.server import TCPCamServerFactory
        from tcpcam.server.sources import sourceFromSpec

        Service.startService(self)
        self._factory = TCPCamServerFactory(
            sourceFromSpec(self.source, self._reactor), pin=self.pin, interval=self.interval, key=self.key,
            name="simulated", reactor=self._reactor,
        )
        self._listening = serverFromString(self._reactor, self.listen).listen(self._factory)
        self._listening.addCallbacks(self._listened, self._failed)

    def _listened(self, port: IListeningPort) -> None:
        self.port = port
        address = cast(IPv4Address, port.getHost())
        self.endpoint.description = "tcp:host=%s:port=%d (built-in simulated camera)" % (
            address.host, address.port)
        self.endpoint.resolve(TCP4ClientEndpoint(self._reactor, address.host, address.port))

    def _failed(self, failure: Failure) -> None:
        log.failure("the built-in simulated camera cannot listen on {listen}", failure,
                    listen=self.listen)

    def stopService(self) -> Deferred[None] | None:
        """Stop listening and drop the simulated camera's clients."""
        Service.stopService(self)
        if self.port is None:
            return None
        port, self.port = self.port, None
        return port.stopListening()
