"""Repeated log lines summarised: one line per address and reason per interval, with a count.

A flood of refused connections must not become a flood of log lines. The
first refusal of an address for a reason is logged as it happens; the ones
after it within ``interval_ms`` are only counted, and one line at the end of
the interval says how many there were. Memory is bounded: at most
``max_keys`` (address, reason) pairs are tracked; the rest are counted
together under one key.
"""

from tcpcam.core.actions import Log
from tcpcam.core.limits import LOG_SUMMARY_KEYS, LOG_SUMMARY_MS

#: The address under which pairs beyond ``max_keys`` are counted.
OTHERS = "other addresses"


class LogSummary:
    """Decide which repeated lines to log now and which to count (``now`` in milliseconds)."""

    def __init__(self, interval_ms: int = LOG_SUMMARY_MS, max_keys: int = LOG_SUMMARY_KEYS) -> None:
        if interval_ms <= 0 or max_keys < 1:
            raise ValueError("interval_ms must be above 0 and max_keys at least 1")
        self.interval_ms = interval_ms
        self.max_keys = max_keys
        #: Lines counted instead of logged, in all.
        self.suppressed = 0
        # (address, reason) -> [interval end, lines counted, level, topic]
        self._open: dict = {}

    def line(self, address: str, reason: str, action: Log, now: int) -> list:
        """The actions for one more ``action`` about ``address`` for ``reason``: itself, or nothing."""
        key = (address, reason)
        entry = self._open.get(key)
        if entry is None and len(self._open) >= self.max_keys:
            key = (OTHERS, reason)
            entry = self._open.get(key)
        if entry is None:
            self._open[key] = [now + self.interval_ms, 0, action.level, action.topic]
            return [action]
        entry[1] += 1
        self.suppressed += 1
        return []

    def due(self) -> int | None:
        """When the next interval ends, or None."""
        due = None
        for entry in self._open.values():
            if due is None or entry[0] < due:
                due = entry[0]
        return due

    def tick(self, now: int) -> list:
        """Close the intervals that ended: one line for each that counted anything."""
        actions = []
        for key in [key for key, entry in self._open.items() if entry[0] <= now]:
            address, reason = key
            _, count, level, topic = self._open.pop(key)
            if count:
                actions.append(Log(level, "%s: %d more refused in the last %d s (%s)"
                                   % (address, count, self.interval_ms // 1000, reason), topic))
        return actions
