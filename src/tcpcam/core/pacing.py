"""When a server asks its frame source for the next frame: pacing, time-outs and back-off.

A frame is asked for only while some client can take one, never while an
earlier request is still out, and no sooner than ``interval_ms`` after the
previous request began. A failed or late frame is skipped, and the next
request waits ``retry_ms``, doubled with every failure in a row up to
``retry_max_ms``, so a broken camera is never asked in a tight loop.
"""

from tcpcam.core.errors import LocalProtocolError
from tcpcam.core.limits import CAPTURE_RETRY_MAX_MS, CAPTURE_RETRY_MS, MAX_INTERVAL_MS, SOURCE_TIMEOUT_MS


class CapturePacer:
    """The pacing rules of one frame source; every method takes ``now`` in milliseconds.

    Each request gets a *ticket* (a number); an answer that quotes an old
    ticket (it came after a time-out) is stale and must be dropped.
    ``timeout_ms`` of ``None`` means the source is never timed out (a board's
    capture blocks until it returns).
    """

    def __init__(self, interval_ms: int = 0, timeout_ms: int | None = SOURCE_TIMEOUT_MS,
                 retry_ms: int = CAPTURE_RETRY_MS, retry_max_ms: int = CAPTURE_RETRY_MAX_MS) -> None:
        if not 0 <= interval_ms <= MAX_INTERVAL_MS:
            raise ValueError("interval_ms must be 0 to %d, not %r" % (MAX_INTERVAL_MS, interval_ms))
        if timeout_ms is not None and timeout_ms <= 0:
            raise ValueError("timeout_ms must be above 0 or None, not %r" % (timeout_ms,))
        if not 0 < retry_ms <= retry_max_ms:
            raise ValueError("need 0 < retry_ms <= retry_max_ms, not %r and %r" % (retry_ms, retry_max_ms))
        self.interval_ms = interval_ms
        self.timeout_ms = timeout_ms
        self.retry_ms = retry_ms
        self.retry_max_ms = retry_max_ms
        #: Requests made, frames received, requests that failed or timed out.
        self.requests = 0
        self.frames = 0
        self.failures = 0
        #: Failures since the last frame.
        self.failures_in_a_row = 0
        self._ticket = 0
        self._pending_since: int | None = None
        self._not_before = 0
        self._stopped = False

    @property
    def pending(self) -> bool:
        """True while a request is out."""
        return self._pending_since is not None

    @property
    def ticket(self) -> int:
        """The ticket of the request that is out, or 0 when none is."""
        return self._ticket if self._pending_since is not None else 0

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called: no request is ever due again."""
        return self._stopped

    def due(self) -> int | None:
        """When the next request may start (if someone wants a frame), or None while one is out."""
        if self._stopped or self._pending_since is not None:
            return None
        return self._not_before

    def timeout_at(self) -> int | None:
        """When the request that is out times out, or None."""
        if self._pending_since is None or self.timeout_ms is None:
            return None
        return self._pending_since + self.timeout_ms

    def start(self, now: int) -> int:
        """A request starts now; returns its ticket."""
        if self._stopped or self._pending_since is not None:
            raise LocalProtocolError("a request is already out, or the pacer is stopped")
        self._ticket += 1
        self.requests += 1
        self._pending_since = now
        self._not_before = now + self.interval_ms
        return self._ticket

    def current(self, ticket: int) -> bool:
        """True when ``ticket`` is the request that is out now."""
        return self._pending_since is not None and ticket == self._ticket

    def succeeded(self, ticket: int) -> int:
        """The frame of ``ticket`` arrived; returns how many failures in a row it ends (-1: stale)."""
        if not self.current(ticket):
            return -1
        self._pending_since = None
        self.frames += 1
        ended = self.failures_in_a_row
        self.failures_in_a_row = 0
        return ended

    def failed(self, ticket: int, now: int) -> int:
        """Request ``ticket`` failed; returns its place in the run of failures (1 = first; 0: stale)."""
        if not self.current(ticket):
            return 0
        self._pending_since = None
        self.failures += 1
        self.failures_in_a_row += 1
        delay = self.retry_ms
        for _ in range(self.failures_in_a_row - 1):
            delay *= 2
            if delay >= self.retry_max_ms:
                delay = self.retry_max_ms
                break
        if self._not_before < now + delay:
            self._not_before = now + delay
        return self.failures_in_a_row

    def stop(self) -> int:
        """Stop for good; returns the ticket that was out (0 if none)."""
        self._stopped = True
        ticket = self.ticket
        self._pending_since = None
        return ticket
