"""Set the clock over NTP when the network allows, so capture times are wall times.

After each WiFi join, while the clock is not set, ``ntptime.settime()``
(frozen into ESP32 images; it sets the RTC in UTC) is tried at most
``NTP_ATTEMPTS`` times, ``NTP_RETRY_MS`` apart; a set clock is set again
every ``NTP_RESYNC_MS``. Each try blocks for at most ntptime's own socket
timeout (1 s). A port without ``ntptime`` (the unix port) is said once and
skipped; its clock is the host's.
"""

try:
    import asyncio
except ImportError:  # MicroPython before 1.21 calls it uasyncio
    import uasyncio as asyncio
import time

from tcpcam_fw.health import clock_is_set
from tcpcam_fw.log import say

from tcpcam.core.limits import NTP_ATTEMPTS, NTP_RESYNC_MS, NTP_RETRY_MS

#: How often the task looks whether WiFi is joined, in ms.
CHECK_MS = 2000


async def sync_once(ntptime, host, attempts=NTP_ATTEMPTS, pause_ms=NTP_RETRY_MS):
    """Try ``ntptime.settime()`` up to ``attempts`` times; True once it worked. Said in one line either way."""
    if host:
        ntptime.host = host
    problem = None
    for attempt in range(attempts):
        if attempt:
            await asyncio.sleep_ms(pause_ms)
        try:
            ntptime.settime()
        except (OSError, OverflowError, IndexError, ValueError) as error:
            problem = error
            continue
        now = time.gmtime()
        say("ntp: clock set from %s: %04d-%02d-%02d %02d:%02d:%02d UTC" % ((host,) + tuple(now[:6])))
        return True
    say("ntp: no time from %s after %d tries (%s); the clock is not set, trying again after the next join"
        % (host, attempts, problem))
    return False


async def keep_synced(config, link, health, ntptime=None, rounds=-1, attempts=NTP_ATTEMPTS,
                      pause_ms=NTP_RETRY_MS):
    """Set the clock after each join and every ``NTP_RESYNC_MS``; ``rounds`` >= 0 bounds the loop (tests)."""
    host = config["ntp_host"]
    if not host:
        say("ntp: no ntp_host in config.json; the clock is not set")
        return
    if ntptime is None:
        try:
            import ntptime
        except ImportError:
            health.clock_synced = clock_is_set()
            say("ntp: no ntptime module here; %s" % (
                "the clock is the host's" if health.clock_synced else "the clock is not set"))
            return
    tried_for = None
    synced_at = None
    while rounds != 0:
        rounds -= 1
        if link.joined and link.joins != tried_for:
            due = synced_at is None or time.ticks_diff(time.ticks_ms(), synced_at) >= NTP_RESYNC_MS
            if due:
                tried_for = link.joins
                if await sync_once(ntptime, host, attempts, pause_ms):
                    health.clock_synced = True
                    synced_at = time.ticks_ms()
        if synced_at is not None and time.ticks_diff(time.ticks_ms(), synced_at) >= NTP_RESYNC_MS:
            tried_for = None
        await asyncio.sleep_ms(CHECK_MS)
