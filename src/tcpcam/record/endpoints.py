"""Client endpoints for the recorder: one that reports failed attempts, one that waits."""

from __future__ import annotations

from collections.abc import Callable

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IProtocol, IProtocolFactory, IStreamClientEndpoint
from twisted.python.failure import Failure
from zope.interface import implementer


@implementer(IStreamClientEndpoint)
class WatchedEndpoint:
    """Wrap an endpoint and call ``onFailure(failure)`` for every failed connect.

    The failure still reaches the caller (ClientService, which retries).
    """

    def __init__(self, endpoint: IStreamClientEndpoint, onFailure: Callable[[Failure], object]) -> None:
        self._endpoint = endpoint
        self._onFailure = onFailure

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """Connect through the wrapped endpoint."""
        connecting = self._endpoint.connect(protocolFactory)

        def failed(failure: Failure) -> Failure:
            self._onFailure(failure)
            return failure

        return connecting.addErrback(failed)

    def __repr__(self) -> str:
        return repr(self._endpoint)


@implementer(IStreamClientEndpoint)
class LaterEndpoint:
    """An endpoint known only later: ``connect`` waits until :meth:`resolve` is called.

    The built-in simulated camera listens on a port chosen by the system, so
    the endpoint that reaches it is known once it listens.
    """

    def __init__(self, description: str) -> None:
        self.description = description
        self._endpoint: IStreamClientEndpoint | None = None
        self._waiting: list[Deferred[IStreamClientEndpoint]] = []

    def resolve(self, endpoint: IStreamClientEndpoint) -> None:
        """Use ``endpoint`` from now on, and for the connects already waiting."""
        self._endpoint = endpoint
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(endpoint)

    def connect(self, protocolFactory: IProtocolFactory) -> Deferred[IProtocol]:
        """Connect through the resolved endpoint, once there is one."""
        if self._endpoint is not None:
            return self._endpoint.connect(protocolFactory)
        d: Deferred[IStreamClientEndpoint] = Deferred(lambda d: self._waiting.remove(d))
        self._waiting.append(d)
        return d.addCallback(lambda endpoint: endpoint.connect(protocolFactory))

    def __repr__(self) -> str:
        return self.description
