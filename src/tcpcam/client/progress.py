"""The progress line ``tcpcam get`` keeps on a terminal's stderr."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import TextIO

#: Width of the bar drawn when the number of frames is known.
BAR_WIDTH = 24
#: Shortest time between two redraws, in seconds.
REDRAW_SECONDS = 0.1


def human_bytes(count: float) -> str:
    """``1234567`` -> ``'1.2 MB'``."""
    for unit in ("B", "kB", "MB", "GB"):
        if count < 1000 or unit == "GB":
            return ("%d %s" if unit == "B" else "%.1f %s") % (count, unit)
        count /= 1000.0
    raise AssertionError("unreachable")


def progress_text(frames: int, wanted: int, total_bytes: int, seconds: float) -> str:
    """The line for ``frames`` received (of ``wanted``, if > 0) in ``seconds``."""
    rate = frames / seconds if seconds > 0 else 0.0
    if wanted > 0:
        done = min(frames, wanted)
        filled = BAR_WIDTH * done // wanted
        head = "frames %d/%d [%s%s] %3d%%" % (
            frames, wanted, "#" * filled, "." * (BAR_WIDTH - filled), 100 * done // wanted,
        )
    else:
        head = "frames %d" % frames
    return "%s  %.1f frames/s  %s" % (head, rate, human_bytes(total_bytes))


class ProgressLine:
    """Redraws one line on ``stream`` (a terminal) at most every REDRAW_SECONDS."""

    def __init__(self, stream: TextIO, wanted: int, clock: Callable[[], float] = time.monotonic) -> None:
        self.stream = stream
        self.wanted = wanted
        self.clock = clock
        self.started = clock()
        self.last: float | None = None
        self.shown = False

    def update(self, frames: int, total_bytes: int, force: bool = False) -> None:
        """Show the counts, unless the line was redrawn too recently."""
        now = self.clock()
        if not force and self.last is not None and now - self.last < REDRAW_SECONDS:
            return
        self.last = now
        self.shown = True
        self.stream.write("\r" + progress_text(frames, self.wanted, total_bytes, now - self.started) + "\x1b[K")
        self.stream.flush()

    def finish(self, frames: int, total_bytes: int) -> None:
        """Draw the final counts and end the line."""
        self.update(frames, total_bytes, force=True)
        self.stream.write("\n")
        self.stream.flush()
