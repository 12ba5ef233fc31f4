"""Events that a :class:`~tcpcam.core.session.Session` hands to whoever drives it."""

from tcpcam.core.text import plural

#: Name of the only frame format so far: a bare 4-byte length and the payload.
LEGACY_FRAMING = "legacy"


class Accepted:
    """The request is complete and valid: start sending frames.

    ``frames`` is the N the client asked for; ``endless`` is true for N <= 0.
    ``framing`` names the frame format agreed for this session; it is always
    :data:`LEGACY_FRAMING` until a negotiated extension exists.
    """

    def __init__(self, frames: int, framing: str = LEGACY_FRAMING) -> None:
        self.frames = frames
        self.framing = framing

    @property
    def endless(self) -> bool:
        """True when the client asked for a stream with no end."""
        return self.frames <= 0

    def __repr__(self) -> str:
        return "Accepted(frames=%d)" % self.frames


class Rejected:
    """The request was refused: close the connection and log ``reason``.

    Nothing is ever written back to the peer; the protocol has no replies.
    """

    def __init__(self, error: Exception) -> None:
        self.error = error
        self.reason = str(error)

    def __repr__(self) -> str:
        return "Rejected(%r)" % self.reason


class Finished:
    """The client received the N frames it asked for: close the connection."""

    def __init__(self, frames_sent: int) -> None:
        self.frames_sent = frames_sent

    def __repr__(self) -> str:
        return "Finished(frames_sent=%d)" % self.frames_sent


class Upgrade:
    """The peer's first line asks for protocol 2; ``rest`` holds the bytes that came after it."""

    def __init__(self, rest: bytes = b"") -> None:
        self.rest = rest

    def __repr__(self) -> str:
        return "Upgrade(%s after)" % plural(len(self.rest), "byte")


class Authenticated:
    """A protocol 2 peer proved it holds the device key."""

    def __repr__(self) -> str:
        return "Authenticated()"


class Request:
    """A signed protocol 2 request: ``counter`` (its id) and ``body`` (a dict with ``op``)."""

    def __init__(self, counter: int, body: dict) -> None:
        self.counter = counter
        self.body = body

    @property
    def op(self) -> str:
        """The request's operation, such as ``"set"``."""
        return str(self.body.get("op"))

    def __repr__(self) -> str:
        return "Request(%d, %r)" % (self.counter, self.op)
