"""Connecting to a camera: an endpoint string or object, a bound on the time, errors a user can act on."""

from __future__ import annotations

import errno
from typing import Any, cast

from twisted.internet import defer, error
from twisted.internet.endpoints import clientFromString
from twisted.internet.interfaces import IDelayedCall, IProtocolFactory, IStreamClientEndpoint
from twisted.python.failure import Failure

from tcpcam.core.errors import ClosedBeforeFirstFrame, ConnectFailed


def endpointFor(reactor: Any, endpoint: str | IStreamClientEndpoint, address: str | None = None
                ) -> tuple[IStreamClientEndpoint, str]:
    """``(endpoint, the words that name it)`` for an endpoint string or object."""
    if isinstance(endpoint, str):
        return cast(IStreamClientEndpoint, clientFromString(reactor, endpoint)), address or endpoint
    return endpoint, address or repr(endpoint)


def connectReason(failure: Failure) -> str:
    """Why a connection attempt failed, in a few words."""
    if failure.check(error.ConnectionRefusedError):
        return "connection refused"
    if failure.check(error.DNSLookupError):
        return "host name not found"
    if failure.check(error.TimeoutError):
        return "timed out"
    return failure.getErrorMessage()


def connectTo(reactor: Any, endpoint: IStreamClientEndpoint, factory: IProtocolFactory,
              connectTimeout: float | None, address: str) -> defer.Deferred[Any]:
    """Connect ``factory`` through ``endpoint`` within ``connectTimeout`` seconds (None: no bound).

    Fires with the protocol, or fails with
    :class:`~tcpcam.core.errors.ConnectFailed` (refused, unreachable, timed
    out) or ``CancelledError``. Cancelling it stops the attempt.
    """
    timedOut: list[bool] = []
    result: defer.Deferred[Any] = defer.Deferred(lambda _: connecting.cancel())

    def made(proto: Any) -> None:
        if timer is not None and timer.active():
            timer.cancel()
        result.callback(proto)

    def failed(failure: Failure) -> None:
        if timer is not None and timer.active():
            timer.cancel()
        if timedOut:
            failure = Failure(ConnectFailed(address, "timed out after %g s" % (connectTimeout or 0)))
        elif failure.check(defer.CancelledError, error.ConnectingCancelledError):
            failure = Failure(defer.CancelledError())
        elif failure.check(error.ConnectError) and getattr(failure.value, "osError", None) == errno.ECONNRESET:
            # The server accepted the connection and reset it at once (a server
            # turning this address away), before the connection was reported made.
            failure = Failure(ClosedBeforeFirstFrame())
        elif failure.check(error.ConnectError):
            failure = Failure(ConnectFailed(address, connectReason(failure)))
        if not result.called:
            result.errback(failure)

    def timeUp() -> None:
        timedOut.append(True)
        connecting.cancel()

    timer: IDelayedCall | None = None
    connecting = endpoint.connect(factory)
    if connectTimeout is not None and not connecting.called:
        timer = reactor.callLater(connectTimeout, timeUp)
    connecting.addCallbacks(made, failed)
    return result
