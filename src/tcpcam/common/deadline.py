"""One reactor timer kept at a sans-IO role's next deadline (the core's integer milliseconds)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from twisted.internet.interfaces import IDelayedCall


def toMilliseconds(seconds: float) -> int:
    """Seconds (a reactor's clock) as the core's integer milliseconds."""
    return int(round(seconds * 1000))


class DeadlineTimer:
    """Calls ``fire()`` when the deadline given to :meth:`set` comes; a deadline already due fires at once.

    Deadlines are compared in the core's milliseconds, so one that is due is
    due now, whatever the float rounding of the reactor's clock. Setting the
    same deadline again keeps the timer; None cancels it.
    """

    def __init__(self, clock: Any, fire: Callable[[], object]) -> None:
        self.clock = clock
        self._fire = fire
        self._call: IDelayedCall | None = None
        self._due: int | None = None

    def now(self) -> int:
        """The clock in milliseconds."""
        return toMilliseconds(self.clock.seconds())

    def set(self, due: int | None) -> None:
        """Fire at ``due`` (milliseconds), or never (None)."""
        if due == self._due and (due is None or (self._call is not None and self._call.active())):
            return
        self.cancel()
        self._due = due
        if due is not None:
            self._call = self.clock.callLater(max(0, due - self.now()) / 1000, self._fired)

    def cancel(self) -> None:
        """No deadline any more."""
        if self._call is not None and self._call.active():
            self._call.cancel()
        self._call = None
        self._due = None

    def _fired(self) -> None:
        self._call = None
        self._due = None
        self._fire()
