"""One deadline for a web response whose client stopped reading: when it fires, the connection is aborted."""

from __future__ import annotations

from collections.abc import Callable
from typing import cast

from twisted.internet.interfaces import IDelayedCall, IReactorTime, ITCPTransport
from twisted.web.server import Request


class StallWatch:
    """Abort ``request``'s connection ``timeout`` seconds after :meth:`arm`, unless :meth:`cancel` comes first.

    ``onStall`` runs first (to count the stall and let go of the response's
    resources); the abort follows, so nothing more is written to a client
    that takes nothing.
    """

    def __init__(self, clock: IReactorTime, timeout: float, request: Request, onStall: Callable[[], None]) -> None:
        self.clock = clock
        self.timeout = timeout
        self.request = request
        self.onStall = onStall
        self._call: IDelayedCall | None = None

    @property
    def armed(self) -> bool:
        """True while the deadline runs."""
        return self._call is not None

    def arm(self) -> None:
        """Start the deadline, unless it already runs."""
        if self._call is None:
            self._call = self.clock.callLater(self.timeout, self._fire)

    def cancel(self) -> None:
        """Stop the deadline (the client took something, or the response ended)."""
        if self._call is not None:
            if self._call.active():
                self._call.cancel()
            self._call = None

    def _fire(self) -> None:
        self._call = None
        self.onStall()
        channel = self.request.channel
        transport = channel.transport if channel is not None else None
        if transport is not None:
            cast(ITCPTransport, transport).abortConnection()
