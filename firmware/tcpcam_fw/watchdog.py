"""The hardware watchdog, fed only while every part of the firmware shows progress.

A :class:`Liveness` knows the parts that must make progress (the frame
loop, the server), each with its allowance: the longest its work may
rightly take between two marks. Parts call :meth:`Liveness.mark`; a part
may also be idle (the frame loop while no client streams), which counts as
progress. :class:`Watchdog` owns ``machine.WDT`` and feeds it from an
asyncio task only while no part is stalled, so a frame loop or server that
stops making progress gets the board reset ``watchdog_ms`` after it went
stale, and a loop blocked in a driver call (the task cannot run at all)
gets it reset ``watchdog_ms`` after the last feed.
"""

try:
    import asyncio
except ImportError:  # MicroPython before 1.21 calls it uasyncio
    import uasyncio as asyncio
import time

from tcpcam_fw.log import say

#: The feeding task looks at the parts at least this often, in ms.
MAX_FEED_PERIOD_MS = 1000


class Liveness:
    """Named parts of the firmware, each marked when it makes progress."""

    def __init__(self):
        self._parts = {}

    def expect(self, name, allowance_ms, idle=None):
        """Watch part ``name``: stalled when not marked for ``allowance_ms`` unless ``idle()`` is true."""
        self._parts[name] = [time.ticks_ms(), allowance_ms, idle]

    def mark(self, name):
        """Part ``name`` made progress now (unknown parts are ignored)."""
        part = self._parts.get(name)
        if part is not None:
            part[0] = time.ticks_ms()

    def marker(self, name):
        """A function of no arguments that marks ``name``."""
        def mark():
            self.mark(name)
        return mark

    def stalled(self):
        """``[(name, ms since its mark)]`` of every part that is stalled now, in name order."""
        now = time.ticks_ms()
        found = []
        for name in sorted(self._parts):
            marked, allowance, idle = self._parts[name]
            if idle is not None and idle():
                self._parts[name][0] = now
                continue
            quiet = time.ticks_diff(now, marked)
            if quiet > allowance:
                found.append((name, quiet))
        return found


class Watchdog:
    """``machine.WDT(timeout=timeout_ms)``, fed while :meth:`Liveness.stalled` is empty.

    With ``timeout_ms`` 0 there is no hardware watchdog; the task still
    watches the parts and says when one stalls. ``machine`` overrides the
    import (tests); ``on_round`` is called at every round.
    """

    def __init__(self, timeout_ms, liveness, machine=None, on_round=None):
        self.timeout_ms = timeout_ms
        self.liveness = liveness
        self.machine = machine
        self.on_round = on_round
        self.wdt = None
        #: Feeds so far.
        self.feeds = 0
        self._said = None

    def start(self):
        """Start the hardware watchdog; False (said once) where the port has none."""
        if not self.timeout_ms:
            say("watchdog: off (watchdog_ms is 0)")
            return False
        machine = self.machine
        try:
            if machine is None:
                import machine
            self.wdt = machine.WDT(0, self.timeout_ms)
        except (ImportError, AttributeError):
            say("watchdog: this port has no machine.WDT; running without a watchdog")
            return False
        except (OSError, ValueError) as error:
            say("watchdog: cannot start machine.WDT (%s); running without a watchdog" % (error,))
            return False
        say("watchdog: started, %d ms" % self.timeout_ms)
        return True

    def period_ms(self):
        """Time between two rounds of the feeding task."""
        if not self.timeout_ms:
            return MAX_FEED_PERIOD_MS
        return max(1, min(MAX_FEED_PERIOD_MS, self.timeout_ms // 4))

    def round(self):
        """Feed the watchdog if no part is stalled; returns the stalled parts."""
        if self.on_round is not None:
            self.on_round()
        stalled = self.liveness.stalled()
        if not stalled:
            if self.wdt is not None:
                self.wdt.feed()
                self.feeds += 1
            if self._said is not None:
                say("watchdog: every part makes progress again; feeding")
                self._said = None
            return stalled
        names = ", ".join(name for name, _ in stalled)
        if names != self._said:
            self._said = names
            detail = ", ".join("%s for %d ms" % part for part in stalled)
            if self.wdt is not None:
                say("watchdog: no progress from %s; not feeding, the board resets within %d ms"
                    % (detail, self.timeout_ms))
            else:
                say("watchdog: no progress from %s (no hardware watchdog to reset the board)" % detail)
        return stalled

    async def run(self, rounds=-1):
        """Feed until the program stops; ``rounds`` >= 0 bounds the loop (tests)."""
        period = self.period_ms()
        while rounds != 0:
            rounds -= 1
            self.round()
            await asyncio.sleep_ms(period)
