"""Failed-PIN throttling per source address, with no clock of its own.

The caller passes ``now`` (seconds, from any monotonic-enough clock) to every
call, so the same rule runs on a server under Twisted and on a board under
MicroPython. Memory is bounded: at most ``max_addresses`` addresses are
remembered; when a new one arrives and the table is full, forgotten records
(quiet and unblocked) go first, then the least recently seen unblocked one,
and a blocked one only when every remembered address is blocked.
"""

from tcpcam.errors import LocalProtocolError

#: Wrong PINs from one address within :data:`DEFAULT_WINDOW` that block it.
DEFAULT_MAX_FAILURES = 5
#: Seconds over which failures are counted, from the first of them.
DEFAULT_WINDOW = 60.0
#: Seconds an address is refused once it has failed too often.
DEFAULT_BLOCK = 60.0
#: Most addresses remembered at once.
DEFAULT_MAX_ADDRESSES = 256

# Slots of a record: [first failure in the window, failures, blocked until, last seen].
_FIRST = 0
_COUNT = 1
_UNTIL = 2
_SEEN = 3


class PinThrottle:
    """Refuse an address for ``block`` seconds after ``max_failures`` wrong PINs.

    Failures are counted in a fixed window of ``window`` seconds that starts at
    the first failure; a correct PIN (:meth:`succeeded`) clears the count. One
    address never affects another, except that the table of addresses is
    bounded (see the module's description).
    """

    def __init__(self, max_failures=DEFAULT_MAX_FAILURES, window=DEFAULT_WINDOW,
                 block=DEFAULT_BLOCK, max_addresses=DEFAULT_MAX_ADDRESSES):
        if max_failures < 1 or window <= 0 or block <= 0 or max_addresses < 1:
            raise LocalProtocolError(
                "throttle needs max_failures >= 1, window > 0, block > 0 and"
                " max_addresses >= 1, not %r, %r, %r, %r"
                % (max_failures, window, block, max_addresses))
        self.max_failures = max_failures
        self.window = window
        self.block = block
        self.max_addresses = max_addresses
        self._records = {}

    def __len__(self):
        return len(self._records)

    def allowed(self, address, now):
        """True unless ``address`` is refused at time ``now``."""
        record = self._records.get(address)
        return record is None or record[_UNTIL] <= now

    def blocked_for(self, address, now):
        """Seconds ``address`` is still refused for (0 when it is allowed)."""
        record = self._records.get(address)
        if record is None or record[_UNTIL] <= now:
            return 0
        return record[_UNTIL] - now

    def failed(self, address, now):
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

    def succeeded(self, address, now):
        """A correct PIN from ``address``: forget its failures (not a running block)."""
        record = self._records.get(address)
        if record is None:
            return
        if record[_UNTIL] <= now:
            del self._records[address]
        else:
            record[_COUNT] = 0

    def _forgettable(self, record, now):
        return record[_UNTIL] <= now and now - record[_FIRST] >= self.window

    def _make_room(self, now):
        if len(self._records) < self.max_addresses:
            return
        for address in [a for a, r in self._records.items() if self._forgettable(r, now)]:
            del self._records[address]
        if len(self._records) < self.max_addresses:
            return
        oldest = None
        oldest_key = None
        for address, record in self._records.items():
            key = (record[_UNTIL] > now, record[_SEEN])
            if oldest is None or key < oldest_key:
                oldest = address
                oldest_key = key
        del self._records[oldest]
