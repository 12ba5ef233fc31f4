"""Client endpoints for the recorder: one that reports failed attempts, one that waits."""

from twisted.internet.defer import Deferred
from twisted.internet.interfaces import IStreamClientEndpoint
from zope.interface import implementer


@implementer(IStreamClientEndpoint)
class WatchedEndpoint:
    """Wrap an endpoint and call ``onFailure(failure)`` for every failed connect.

    The failure still reaches the caller (ClientService, which retries).
    """

    def __init__(self, endpoint, onFailure):
        self._endpoint = endpoint
        self._onFailure = onFailure

    def connect(self, protocolFactory):
        """Connect through the wrapped endpoint."""
        connecting = self._endpoint.connect(protocolFactory)

        def failed(failure):
            self._onFailure(failure)
            return failure

        return connecting.addErrback(failed)

    def __repr__(self):
        return repr(self._endpoint)


@implementer(IStreamClientEndpoint)
class LaterEndpoint:
    """An endpoint known only later: ``connect`` waits until :meth:`resolve` is called.

    The built-in simulated camera listens on a port chosen by the system, so
    the endpoint that reaches it is known once it listens.
    """

    def __init__(self, description):
        self.description = description
        self._endpoint = None
        self._waiting = []

    def resolve(self, endpoint):
        """Use ``endpoint`` from now on, and for the connects already waiting."""
        self._endpoint = endpoint
        waiting, self._waiting = self._waiting, []
        for d in waiting:
            d.callback(endpoint)

    def connect(self, protocolFactory):
        """Connect through the resolved endpoint, once there is one."""
        if self._endpoint is not None:
            return self._endpoint.connect(protocolFactory)
        d = Deferred(lambda d: self._waiting.remove(d))
        self._waiting.append(d)
        return d.addCallback(lambda endpoint: endpoint.connect(protocolFactory))

    def __repr__(self):
        return self.description
