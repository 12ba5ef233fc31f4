"""The ESP32 port's ``machine.WDT``, ``reset_cause()`` and ``reset()``, for the unix port, which has none.

This file extends the unix port's own ``machine`` module (everything of
``umachine`` stays), with the ESP32 port's API (MicroPython 1.21 and later,
``ports/esp32/machine_wdt.c`` and ``modmachine.c``):

- ``WDT(id=0, timeout=5000)``: ``timeout`` in milliseconds; ``id`` other
  than 0 is a ``ValueError`` with no message, ``timeout <= 0`` is
  ``ValueError("WDT timeout too short")``. Once started it cannot be
  stopped; a second ``WDT(...)`` sets a new timeout on the same watchdog.
  ``feed()`` returns None. When it is not fed for ``timeout`` ms the
  "board" resets: a line on the console, as the task watchdog prints it,
  then the process is killed with SIGKILL (exit status -9 seen from a
  parent; nothing after it runs, no ``finally``, as in a reset), and the
  next start reports ``WDT_RESET``.
- ``reset_cause()``: ``PWRON_RESET`` (1), ``HARD_RESET`` (2),
  ``WDT_RESET`` (3), ``DEEPSLEEP_RESET`` (4) or ``SOFT_RESET`` (5). There is
  no ``BROWNOUT_RESET``: the ESP32 port reports a brownout as
  ``PWRON_RESET``. The cause survives a reset in the file named by the
  environment variable ``TCPCAM_RESET_CAUSE_FILE`` (the stand-in for the
  chip's reset reason register); without it, every start is a power-on.
- ``reset()``: a hard reset (the next start reports ``HARD_RESET``).

The watchdog runs in a thread, so a frame loop stuck in a blocking call
(a wedged camera driver) cannot stop it, as on the chip. Not part of the
device bundle.
"""

import _thread
import os
import time

from umachine import *  # noqa: F403 - the unix port's own machine functions stay

PWRON_RESET = 1
HARD_RESET = 2
WDT_RESET = 3
DEEPSLEEP_RESET = 4
SOFT_RESET = 5

#: How often the watchdog thread looks at the last feed, in ms.
_CHECK_MS = 20

_watchdog = {"timeout": 0, "fed": 0, "started": False}


def _cause_file():
    getenv = getattr(os, "getenv", None)
    return getenv("TCPCAM_RESET_CAUSE_FILE") if getenv else None


def reset_cause():
    """Why the board started: one of the ``*_RESET`` constants."""
    path = _cause_file()
    if not path:
        return PWRON_RESET
    try:
        with open(path) as handle:
            return int(handle.read().strip() or PWRON_RESET)
    except (OSError, ValueError):
        return PWRON_RESET


def _reset(cause, lines):
    path = _cause_file()
    if path:
        try:
            with open(path, "w") as handle:
                handle.write("%d\n" % cause)
        except OSError:
            pass
    for line in lines:
        print(line)
    # The shell's parent is this process: SIGKILL, as abrupt as a reset.
    os.system("kill -KILL $PPID")
    while True:
        time.sleep_ms(1000)


def reset():
    """Reset the board at once, as ``esp_restart()``."""
    _reset(HARD_RESET, ["Rebooting..."])


def _watch():
    while True:
        time.sleep_ms(_CHECK_MS)
        timeout = _watchdog["timeout"]
        if time.ticks_diff(time.ticks_ms(), _watchdog["fed"]) > timeout:
            _reset(WDT_RESET, [
                "E (%d) task_wdt: Task watchdog got triggered. The following tasks/users did not reset the watchdog"
                " in time:" % time.ticks_ms(),
                "E (%d) task_wdt:  - mpy_machine_wdt" % time.ticks_ms(),
                "Rebooting...",
            ])


class WDT:
    """The hardware watchdog: reset the board unless :meth:`feed` is called every ``timeout`` ms."""

    def __init__(self, id=0, timeout=5000):
        if id != 0:
            raise ValueError
        if timeout <= 0:
            raise ValueError("WDT timeout too short")
        _watchdog["timeout"] = timeout
        _watchdog["fed"] = time.ticks_ms()
        if not _watchdog["started"]:
            _watchdog["started"] = True
            _thread.start_new_thread(_watch, ())

    def feed(self):
        """Start the timeout again."""
        _watchdog["fed"] = time.ticks_ms()
