"""Send a new application bundle to a camera over protocol 2: a thin driver of the core's UpdateSender.

The rules (what a bundle may hold, its chunks, the digest) are
:mod:`tcpcam.core.update`'s; this module sends its requests one at a time,
each once the previous one was answered, and bounds the wait for every
answer.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet import defer

from tcpcam.core import limits
from tcpcam.core.update import UpdateSender


@defer.inlineCallbacks
def sendUpdate(connection: Any, sender: UpdateSender, reactor: Any,
               answerTimeout: float = limits.UPDATE_ANSWER_TIMEOUT_S,
               onProgress: Callable[[int, int], Any] | None = None) -> Any:
    """Send ``sender``'s bundle on ``connection`` (a Camera2Protocol); fires with None once the board stored it.

    Fails with the board's refusal (RequestRefused), the connection's end,
    or ``defer.TimeoutError`` when an answer takes longer than ``answerTimeout``.
    """

    def ask(op: str, **arguments: Any) -> defer.Deferred[Any]:
        return connection.request(op, **arguments).addTimeout(answerTimeout, reactor)

    yield ask("update-begin", **sender.begin)
    while True:
        chunk = sender.next_chunk()
        if chunk is None:
            break
        yield ask("update-chunk", **chunk)
        if onProgress is not None:
            onProgress(sender.sent, sender.total)
    yield ask("update-commit")
    return None
