"""Failed-PIN throttling per source address, with no clock of its own.

The caller passes ``now`` (milliseconds, from any monotonic clock) to every
call, so the same rule runs on a server under Twisted and on a board under
MicroPython. Memory is bounded: at most ``max_addresses`` addresses are
remembered; when a new one arrives and the table is full, forgotten records
(quiet and unblocked) go first, then the least recently seen unblocked one,
and a blocked one only when every remembered address is blocked.
"""

from tcpcam.core.limits import PIN_BLOCK_MS, PIN_FAILURES, PIN_WINDOW_MS, THROTTLE_ADDRESSES

# Slots of a record: [first failure in the window, failures, blocked until, last seen].
_FIRST = 0
_COUNT = 1
_UNTIL = 2
_SEEN = 3


class PinThrottle:
    """Refuse an address for ``block_ms`` after ``max_failures`` wrong PINs.

    Failures are counted in a fixed window of ``window_ms`` that starts at
    the first failure; a correct PIN (:meth:`succeeded`) clears the count. One
    address never affects another, except that the table of addresses is
    bounded (see the module's description).
    """

    def __init__(self, max_failures: int = PIN_FAILURES, window_ms: int = PIN_WINDOW_MS,
                 block_ms: int = PIN_BLOCK_MS, max_addresses: int = THROTTLE_ADDRESSES) -> None:
        if max_failures < 1 or window_ms <= 0 or block_ms <= 0 or max_addresses < 1:
            raise ValueError(
                "throttle needs max_failures >= 1, window_ms > 0, block_ms > 0 and"
                " max_addresses >= 1, not %r, %r, %r, %r"
                % (max_failures, window_ms, block_ms, max_addresses))
        self.max_failures = max_failures
        self.window = window_ms
        self.block = block_ms
        self.max_addresses = max_addresses
        self._records: dict = {}

    def __len__(self) -> int:
        return len(self._records)

    def allowed(self, address: str, now: int) -> bool:
        """True unless ``address`` is refused at time ``now``."""
        record = self._records.get(address)
        return record is None or record[_UNTIL] <= now

    def blocked_for(self, address: str, now: int) -> int:
        """Milliseconds ``address`` is still refused for (0 when it is allowed)."""
        record = self._records.get(address)
        if record is None or record[_UNTIL] <= now:
            return 0
        return record[_UNTIL] - now

    def failed(self, address: str, now: int) -> bool:
        """Count a wrong PIN from ``address``; True if that blocks it now."""
        record = self._records.get(address)
        if record is None:
            self._make_room(now)
            record = [now, 0, 0, now]
            self._records[address] = record
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
        """A correct PIN from ``address``: forget its failures (not a running block)."""
        record = self._records.get(address)
        if record is None:
            return
        if record[_UNTIL] <= now:
            del self._records[address]
        else:
            record[_COUNT] = 0

    def _forgettable(self, record: list, now: int) -> bool:
        return record[_UNTIL] <= now and now - record[_FIRST] >= self.window

    def _make_room(self, now: int) -> None:
        if len(self._records) < self.max_addresses:
            return
        for address in [a for a, r in self._records.items() if self._forgettable(r, now)]:
            del self._records[address]
        if len(self._records) < self.max_addresses:
            return
        oldest = None
        oldest_key: tuple = ()
        for address, record in self._records.items():
            key = (record[_UNTIL] > now, record[_SEEN])
            if oldest is None or key < oldest_key:
                oldest = address
                oldest_key = key
        del self._records[oldest]
