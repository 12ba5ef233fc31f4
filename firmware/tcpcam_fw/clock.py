"""Milliseconds since start for the core's ``now``: never goes back when ``ticks_ms`` wraps."""

import time

#: Longest the firmware may go without reading the clock: well inside half
#: of ``ticks_ms``'s period, so every wrap is seen.
MAX_GAP_MS = 60000


class Clock:
    """A monotonic millisecond count, read with :meth:`now` at least every :data:`MAX_GAP_MS`.

    ``on_read``, when given, is called at every read: the firmware's
    watchdog counts the server's reads of its clock as the server's progress.
    """

    def __init__(self, on_read=None):
        self._ms = 0
        self._last = time.ticks_ms()
        self._on_read = on_read

    def now(self):
        """Milliseconds since this clock was made."""
        ticks = time.ticks_ms()
        step = time.ticks_diff(ticks, self._last)
        if step > 0:
            self._ms += step
        self._last = ticks
        if self._on_read is not None:
            self._on_read()
        return self._ms
