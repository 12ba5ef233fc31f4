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
    """Write ``parts`` to ``conn``, in order.

    The last part of a frame is the frame itself, shared by every connection
    it goes to: write it as it is (a view or slices of it), never a copy. The
    parts before it are small (headers; a per-connection part the role
    reuses, so write it before the role is told the write is done). When all
    of it has left the process, tell the role (``written``).
    """

    def __init__(self, conn: object, *parts: bytes | bytearray | memoryview) -> None:
        self.conn = conn
        self.parts = parts

    @property
    def head(self) -> bytes | bytearray | memoryview:
        """The first part (the only one of a message that is not a frame)."""
        return self.parts[0]

    @property
    def payload(self) -> bytes | bytearray | memoryview | None:
        """The last part when there are several (the frame), else None."""
        return self.parts[-1] if len(self.parts) > 1 else None

    def __repr__(self) -> str:
        return "Write(%s)" % " + ".join(plural(len(part), "byte") for part in self.parts)


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


class ApplySettings:
    """Apply ``settings`` (every camera setting, checked) to the camera; answer quoting ``ticket``."""

    def __init__(self, ticket: int, settings: dict) -> None:
        self.ticket = ticket
        self.settings = settings

    def __repr__(self) -> str:
        return "ApplySettings(%d)" % self.ticket


class AskHealth:
    """Gather the device's health figures and hand them to the role (``report_health``)."""

    def __repr__(self) -> str:
        return "AskHealth()"


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
