"""Ctrl-C for the long-running commands, however they were started."""

from __future__ import annotations

import signal


def restoreInterrupt() -> None:
    """Make SIGINT (Ctrl-C) stop the program, even if it was started with SIGINT ignored.

    A non-interactive shell starts background commands with SIGINT ignored,
    and Python keeps it ignored; the Twisted reactor takes SIGINT over only
    from Python's default handler. This puts that handler back, so that the
    reactor (or a ``KeyboardInterrupt`` outside it) stops the program. Call it
    from the main thread, before the reactor runs.
    """
    signal.signal(signal.SIGINT, signal.default_int_handler)
