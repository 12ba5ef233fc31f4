"""Throttling of failed requests: per address, for new addresses together, and in total.

The caller passes ``now`` (milliseconds, from any monotonic clock) to every
call, so the same rule runs on a server under Twisted and on a board under
MicroPython. Three limits hold whatever the requests look like:

- **Per address.** ``max_failures`` failed requests within ``window_ms`` get
  the address refused for ``block_ms``. A right PIN clears its count (not a
  running block).
- **New addresses together.** At most ``max_addresses`` addresses have a
  record. When the table is full, quiet unblocked records make room, oldest
  first; blocked addresses are never evicted. A failure from an address that
  finds no room is counted in one shared record for all such addresses,
  with the same limit: once it is blocked, every address without a record of
  its own is refused.
- **In total.** Failures from every address together are counted in windows
  of ``total_window_ms``; past ``total_failures`` in one window, addresses
  that have not given the right PIN lately are refused until the window
  ends. Up to ``max_trusted`` addresses that gave the right PIN are
  remembered (for ``trust_ms``) and let through, within their own limit.

So a guesser gets at most ``max_failures`` guesses per ``block_ms`` from one
address, and the server answers at most ``total_failures`` failed guesses
per ``total_window_ms`` from all addresses together.
"""

from tcpcam.core.limits import (
    PIN_BLOCK_MS,
    PIN_FAILURES,
    PIN_TOTAL_FAILURES,
    PIN_TOTAL_WINDOW_MS,
    PIN_WINDOW_MS,
    THROTTLE_ADDRESSES,
    TRUST_MS,
    TRUSTED_ADDRESSES,
)

# Slots of a record: [first failure in the window, failures, blocked until, last seen].
_FIRST = 0
_COUNT = 1
_UNTIL = 2
_SEEN = 3

#: The key of the record shared by addresses that found the table full.
OVERFLOW = "(new addresses)"


class PinThrottle:
    """Refuse addresses that fail too often (see the module's description)."""

    def __init__(self, max_failures: int = PIN_FAILURES, window_ms: int = PIN_WINDOW_MS,
                 block_ms: int = PIN_BLOCK_MS, max_addresses: int = THROTTLE_ADDRESSES,
                 total_failures: int = PIN_TOTAL_FAILURES, total_window_ms: int = PIN_TOTAL_WINDOW_MS,
                 max_trusted: int = TRUSTED_ADDRESSES, trust_ms: int = TRUST_MS) -> None:
        if (max_failures < 1 or window_ms <= 0 or block_ms <= 0 or max_addresses < 1 or total_failures < 1
                or total_window_ms <= 0 or max_trusted < 0 or trust_ms <= 0):
            raise ValueError(
                "throttle needs max_failures >= 1, window_ms > 0, block_ms > 0, max_addresses >= 1,"
                " total_failures >= 1, total_window_ms > 0, max_trusted >= 0 and trust_ms > 0")
        self.max_failures = max_failures
        self.window = window_ms
        self.block = block_ms
        self.max_addresses = max_addresses
        self.total_failures = total_failures
        self.total_window = total_window_ms
        self.max_trusted = max_trusted
        self.trust = trust_ms
        #: Failed requests counted since the start, and refusals of each kind.
        self.failures = 0
        self._records: dict = {}
        self._trusted: dict = {}
        self._total_start = 0
        self._total_count = 0

    def __len__(self) -> int:
        return len(self._records)

    def blocked_for(self, address: str, now: int) -> int:
        """Milliseconds ``address`` is still refused for (0 when it is allowed)."""
        wait = self._own_wait(address, now)
        if wait:
            return wait
        if self._total_exceeded(now) and not self._trusted_now(address, now):
            return self._total_start + self.total_window - now
        return 0

    def why(self, address: str, now: int) -> str:
        """Why ``address`` is refused now, in words for a log line (empty when it is allowed)."""
        record = self._records.get(address)
        if record is not None and record[_UNTIL] > now:
            return "too many failed requests from %s" % address
        if record is None and self._overflow_blocked(now):
            return "too many failed requests from new addresses"
        if self._total_exceeded(now) and not self._trusted_now(address, now):
            return "too many failed requests in total"
        return ""

    def allowed(self, address: str, now: int) -> bool:
        """True unless ``address`` is refused at time ``now``."""
        return self.blocked_for(address, now) == 0

    def failed(self, address: str, now: int) -> bool:
        """Count a failed request from ``address``; True if that gets it refused now."""
        self.failures += 1
        if not self._total_count or now - self._total_start >= self.total_window:
            self._total_start = now
            self._total_count = 0
        self._total_count += 1
        record = self._records.get(address)
        if record is None:
            if self._make_room(now):
                record = [now, 0, 0, now]
                self._records[address] = record
            else:
                record = self._overflow(now)
        if now - record[_FIRST] >= self.window:
            record[_FIRST] = now
            record[_COUNT] = 0
        record[_COUNT] += 1
        record[_SEEN] = now
        if record[_COUNT] >= self.max_failures:
            record[_UNTIL] = now + self.block
            record[_FIRST] = now
            record[_COUNT] = 0
            return True
        return False

    def succeeded(self, address: str, now: int) -> None:
        """The right PIN from ``address``: forget its failures (not a running block) and trust it."""
        record = self._records.get(address)
        if record is not None:
            if record[_UNTIL] <= now:
                del self._records[address]
            else:
                record[_COUNT] = 0
        if self.max_trusted:
            self._trusted.pop(address, None)
            if len(self._trusted) >= self.max_trusted:
                oldest = None
                for known, since in self._trusted.items():
                    if oldest is None or since < self._trusted[oldest]:
                        oldest = known
                del self._trusted[oldest]
            self._trusted[address] = now

    def _own_wait(self, address: str, now: int) -> int:
        record = self._records.get(address)
        if record is None:
            record = self._records.get(OVERFLOW) if len(self._records) >= self.max_addresses else None
        if record is None or record[_UNTIL] <= now:
            return 0
        return record[_UNTIL] - now

    def _overflow_blocked(self, now: int) -> bool:
        record = self._records.get(OVERFLOW)
        return len(self._records) >= self.max_addresses and record is not None and record[_UNTIL] > now

    def _total_exceeded(self, now: int) -> bool:
        return self._total_count >= self.total_failures and now - self._total_start < self.total_window

    def _trusted_now(self, address: str, now: int) -> bool:
        since = self._trusted.get(address)
        return since is not None and now - since < self.trust

    def _overflow(self, now: int) -> list:
        record = self._records.get(OVERFLOW)
        if record is None:
            record = [now, 0, 0, now]
            self._records[OVERFLOW] = record
        return record

    def _forgettable(self, record: list, now: int) -> bool:
        return record[_UNTIL] <= now and now - record[_FIRST] >= self.window

    def _make_room(self, now: int) -> bool:
        """Room for one more record: quiet records go, then the least recently seen unblocked one."""
        if len(self._records) < self.max_addresses:
            return True
        for address in [a for a, r in self._records.items() if a != OVERFLOW and self._forgettable(r, now)]:
            del self._records[address]
        if len(self._records) < self.max_addresses:
            return True
        oldest = None
        oldest_seen = 0
        for address, record in self._records.items():
            if address == OVERFLOW or record[_UNTIL] > now:
                continue
            if oldest is None or record[_SEEN] < oldest_seen:
                oldest = address
                oldest_seen = record[_SEEN]
        if oldest is None:
            return False
        del self._records[oldest]
        return True
