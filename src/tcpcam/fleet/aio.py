"""Twisted and asyncio on one loop: install Twisted's asyncio reactor, and turn coroutines into Deferreds.

nats-py is an asyncio library; the recorder is Twisted. Both run on one
asyncio event loop through :mod:`twisted.internet.asyncioreactor`, in one
thread: no thread per camera, no locks between the two.
"""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Coroutine
from typing import Any, TypeVar

from twisted.internet.defer import Deferred

from tcpcam.fleet.config import FleetConfigError

T = TypeVar("T")


def installAsyncioReactor() -> Any:
    """Install Twisted's asyncio reactor on a new loop (unless it is installed already) and return it.

    Raises FleetConfigError if another reactor is installed already.
    """
    if "twisted.internet.reactor" in sys.modules:
        from twisted.internet import reactor
        from twisted.internet.asyncioreactor import AsyncioSelectorReactor

        if not isinstance(reactor, AsyncioSelectorReactor):
            raise FleetConfigError("the fleet needs Twisted's asyncio reactor, not %s: run twistd --reactor=asyncio"
                                   % type(reactor).__name__)
        return reactor
    from twisted.internet import asyncioreactor

    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    asyncioreactor.install(loop)
    from twisted.internet import reactor

    return reactor


def asDeferred(coroutine: Coroutine[Any, Any, T]) -> Deferred[T]:
    """Run ``coroutine`` on the loop; the Deferred fires with its result."""
    return Deferred.fromFuture(asyncio.ensure_future(coroutine))


async def wait(deferred: Deferred[T]) -> T:
    """Await a Deferred inside a coroutine."""
    return await deferred.asFuture(asyncio.get_event_loop())
