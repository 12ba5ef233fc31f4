"""What a role asks its driver to do: write, close, capture, log.

The roles in :mod:`tcpcam.core.server_role` and
:mod:`tcpcam.core.client_role` never touch a socket, a clock or a log:
each of their methods returns a list of these actions, which the driver
(the Twisted protocols, the firmware's asyncio tasks) carries out in order.
``conn`` is the driver's own handle for a connection (``None`` on the
client side, which has one connection).
"""

from tcpcam.core.text import plural

#: Log levels of :class:`Log`.
INFO = "info"
WARN = "warn"
ERROR = "error"


class Write:
    """Write ``head`` and then ``payload`` (if not None) to ``conn``.

    ``payload`` is the frame itself, shared by every connection it goes to:
    write it as it is (a view or slices of it), never a copy. When all of it
    has left the process, tell the role (``written``).
    """

    def __init__(self, conn: object, head: bytes, payload: bytes | None = None) -> None:
        self.conn = conn
        self.head = head
        self.payload = payload

    def __repr__(self) -> str:
        size = 0 if self.payload is None else len(self.payload)
        return "Write(%d + %s)" % (len(self.head), plural(size, "byte"))


class Close:
    """Close ``conn``: once what was written is flushed, or at once with ``abort``."""

    def __init__(self, conn: object, abort: bool = False) -> None:
        self.conn = conn
        self.abort = abort

    def __repr__(self) -> str:
        return "Close(abort=%r)" % self.abort


class Capture:
    """Ask the frame source for one frame; answer quoting ``ticket``."""

    def __init__(self, ticket: int) -> None:
        self.ticket = ticket

    def __repr__(self) -> str:
        return "Capture(%d)" % self.ticket


class CancelCapture:
    """Give up on the request ``ticket`` (it timed out, or the server stops)."""

    def __init__(self, ticket: int) -> None:
        self.ticket = ticket

    def __repr__(self) -> str:
        return "CancelCapture(%d)" % self.ticket


class Log:
    """One line for the log: ``level`` (INFO, WARN or ERROR), the ``text``, and its ``topic``.

    ``topic`` says what the line is about (``"client"``, ``"refused"``,
    ``"source"``), so a driver can file or enrich it.
    """

    def __init__(self, level: str, text: str, topic: str = "") -> None:
        self.level = level
        self.text = text
        self.topic = topic

    def __repr__(self) -> str:
        return "Log(%s, %r)" % (self.level, self.text)
