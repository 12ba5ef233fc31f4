"""What the board knows about its own health, in one place; :meth:`Health.snapshot` is a plain dict.

Protocol 2's health messages read :meth:`Health.snapshot`: uptime, why the
board started (``machine.reset_cause()``), free heap and the largest free
block (where the port says), whether the board has PSRAM, the WiFi signal
(where there is WiFi), whether the clock was set over NTP, frames, capture
errors, frames per second and streaming clients.

Reset causes are the ESP32 port's: it has no brownout constant and
reports a brownout (the usual reason a board "reboots for nothing" when
WiFi and camera start together) as ``PWRON_RESET``; the watchdog's reset is
``WDT_RESET``; a crash (panic) is ``HARD_RESET``.
"""

import gc
import time

from tcpcam_fw.clock import Clock

#: ``machine.reset_cause()`` of the ESP32 port: number -> (name, meaning).
RESET_CAUSES = {
    1: ("PWRON_RESET", "power-on, or a brownout: the ESP32 port reports both as power-on"),
    2: ("HARD_RESET", "a hard reset: the reset button, machine.reset() or a crash"),
    3: ("WDT_RESET", "the watchdog reset the board"),
    4: ("DEEPSLEEP_RESET", "woke from deep sleep"),
    5: ("SOFT_RESET", "a soft reset (Ctrl-D or machine.soft_reset())"),
}
#: A heap region or Python heap above this means the board has PSRAM (without, both are below 300 KB).
PSRAM_BYTES = 1024 * 1024
#: Frames per second are counted over windows of this length.
FPS_WINDOW_MS = 10000
#: A clock that reads a year before this was never set (the ESP32 starts at 2000-01-01).
CLOCK_SET_AFTER_YEAR = 2024


def reset_cause():
    """``(name, meaning)`` of why the board started; ``("unknown", ...)`` where the port does not say."""
    try:
        import machine

        cause = machine.reset_cause()
    except (ImportError, AttributeError):
        return "unknown", "this port does not say why it started"
    return RESET_CAUSES.get(cause, ("unknown", "reset cause %r" % (cause,)))


def _heap_regions():
    try:
        import esp32

        return esp32.idf_heap_info(esp32.HEAP_DATA)
    except (ImportError, AttributeError):
        return None


def has_psram():
    """True when the board has PSRAM: a heap region, or the Python heap itself, above :data:`PSRAM_BYTES`."""
    for region in _heap_regions() or ():
        if region[0] > PSRAM_BYTES:
            return True
    return gc.mem_free() + gc.mem_alloc() > PSRAM_BYTES


def largest_free_block():
    """The largest free block the Python heap can grow into (ESP32), or None where the port does not say."""
    regions = _heap_regions()
    if not regions:
        return None
    return max(region[2] for region in regions)


def clock_is_set():
    """True when the wall clock reads a plausible date (it was set by NTP, or it is a host's clock)."""
    return time.gmtime()[0] >= CLOCK_SET_AFTER_YEAR


class Health:
    """The board's health figures; the firmware's parts tell it what happens."""

    def __init__(self):
        self.clock = Clock()
        self.reset_cause, self.reset_meaning = reset_cause()
        self.psram = has_psram()
        #: True once NTP set the clock (or the port's clock is the host's).
        self.clock_synced = False
        self.frames = 0
        self.capture_errors = 0
        #: The WiFi link (:class:`tcpcam_fw.wifi.WifiLink`), for the signal strength.
        self.link = None
        #: A function returning the number of streaming clients.
        self.clients = None
        self._window_start = 0
        self._window_frames = 0
        self._fps = 0.0

    def now(self):
        """Milliseconds since boot (read at least every minute, see :class:`tcpcam_fw.clock.Clock`)."""
        return self.clock.now()

    def captured(self, ok):
        """One capture happened: a frame when ``ok``, else a capture error."""
        if not ok:
            self.capture_errors += 1
            return
        self.frames += 1
        now = self.now()
        if not self._window_frames:
            self._window_start = now
        self._window_frames += 1
        elapsed = now - self._window_start
        if elapsed >= FPS_WINDOW_MS:
            self._fps = self._window_frames * 1000 / elapsed
            self._window_start = now
            self._window_frames = 0

    def fps(self):
        """Frames per second over the last whole window (0 until one has passed, or when frames stop)."""
        if self.now() - self._window_start > 2 * FPS_WINDOW_MS:
            return 0.0
        return self._fps

    def rssi(self):
        """The WiFi signal in dBm, or None (no WiFi, or not joined)."""
        link = self.link
        if link is None or not link.joined or link.station is None:
            return None
        try:
            return link.station.status("rssi")
        except (OSError, ValueError, TypeError, AttributeError):
            return None

    def snapshot(self):
        """Every figure, as a plain dict of ints, floats, strings, booleans and None."""
        clients = self.clients
        return {
            "uptime_ms": self.now(),
            "reset_cause": self.reset_cause,
            "free_heap": gc.mem_free(),
            "allocated_heap": gc.mem_alloc(),
            "largest_free_block": largest_free_block(),
            "psram": self.psram,
            "wifi_rssi": self.rssi(),
            "clock_synced": self.clock_synced,
            "frames": self.frames,
            "capture_errors": self.capture_errors,
            "fps": round(self.fps(), 2),
            "clients": clients() if clients is not None else 0,
        }
