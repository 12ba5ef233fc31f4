"""Every error tcpcam raises, split by fault as in h11 and wsproto.

- :class:`RemoteProtocolError` and its subclasses: the peer sent bytes (or
  behaved in a way) that break the protocol. Log the one-line message and
  close the connection.
- :class:`Refused`: a server turned a connection away for a reason of its
  own (full, the address is blocked), not because of the bytes it sent.
- :class:`LocalProtocolError`: this program drove a state machine in a way
  it does not allow: a bug to fix, not a peer to blame.
- Bad arguments raise the built-in ``ValueError``, as everywhere in Python.

Every class here derives from :class:`TCPCamError`, so one ``except``
catches whatever tcpcam raises on purpose.
"""

from tcpcam.core.text import plural


class TCPCamError(Exception):
    """Base class of every error raised by tcpcam."""


class RemoteProtocolError(TCPCamError):
    """The peer sent bytes that break the protocol."""


class FrameTooLarge(RemoteProtocolError):
    """A frame header declared a payload longer than the configured limit."""

    def __init__(self, length: int, limit: int) -> None:
        super().__init__(
            "peer declared a frame of %s, over the limit of %s"
            " (raise max_frame_bytes if frames this large are expected)"
            % (plural(length, "byte"), plural(limit, "byte")),
        )
        self.length = length
        self.limit = limit


class TokenTooLong(RemoteProtocolError):
    """A request token (PIN or command) ran past the token limit."""


class BadCommand(RemoteProtocolError):
    """The command token is not a decimal integer in the 32-bit signed range."""


class WrongPin(RemoteProtocolError):
    """The PIN sent by the peer does not match the configured PIN."""


class HandshakeTimeout(RemoteProtocolError):
    """The peer did not finish its request within the handshake time."""


class PeerLeft(RemoteProtocolError):
    """The peer closed the connection before its request was complete."""


class LegacyRefused(RemoteProtocolError):
    """A legacy request to a server configured for protocol 2 only."""


class BadMessage(RemoteProtocolError):
    """A protocol 2 message is malformed, too large, unsigned, badly signed or replayed."""


class WrongKey(RemoteProtocolError):
    """The peer's proof of the device key does not match: it does not hold the key."""


class LegacyServer(RemoteProtocolError):
    """The server closed the protocol 2 opening unanswered: it speaks only the legacy protocol."""

    def __init__(self) -> None:
        super().__init__("the server does not speak protocol 2 (it closed the opening unanswered)")


class ServerClosed(RemoteProtocolError):
    """A protocol 2 server said why it closes the connection."""

    def __init__(self, reason: str, text: str) -> None:
        super().__init__("the server closed the connection: %s" % (text or reason))
        self.reason = reason
        self.text = text


class ClosedBeforeFirstFrame(RemoteProtocolError):
    """The server closed the connection before sending any byte of a frame."""

    def __init__(self) -> None:
        super().__init__(
            "the server closed the connection before the first frame (the PIN may be"
            " wrong, or this address blocked for a while after wrong PINs, even with the"
            " right PIN now; or the server is full)"
        )


class TruncatedFrame(RemoteProtocolError):
    """The connection ended in the middle of a frame."""

    def __init__(self, frames: int, received: int, declared: int | None) -> None:
        if declared is None:
            where = "in the header of frame %d" % (frames + 1)
        else:
            where = "after %d of the %d payload bytes of frame %d" % (received, declared, frames + 1)
        super().__init__("the connection closed %s (the frame is truncated)" % where)
        self.frames = frames
        self.received = received
        self.declared = declared


class TooFewFrames(RemoteProtocolError):
    """The server closed the connection after fewer frames than asked for."""

    def __init__(self, received: int, wanted: int) -> None:
        super().__init__(
            "the server closed the connection after %d of the %s asked for"
            % (received, plural(wanted, "frame")),
        )
        self.received = received
        self.wanted = wanted


class FrameTimeout(RemoteProtocolError):
    """Nothing arrived for longer than the allowed silence, or a frame took too long."""

    def __init__(self, seconds: float, frames: int, trickling: bool = False) -> None:
        if trickling:
            what = "frame %d did not arrive whole within %g s" % (frames + 1, seconds)
        else:
            what = "nothing received for %g s after %s" % (seconds, plural(frames, "frame"))
        super().__init__("%s (raise the timeout if the camera is slow)" % what)
        self.seconds = seconds
        self.frames = frames
        self.trickling = trickling


class Refused(TCPCamError):
    """A server turned a connection away before its request (full, blocked)."""


class ServerFull(Refused):
    """Every connection slot is taken."""


class AddressBlocked(Refused):
    """The address failed too often and is refused for a while."""


class ConnectFailed(TCPCamError):
    """The TCP connection could not be made: refused, unreachable or timed out."""

    def __init__(self, address: str, reason: str) -> None:
        super().__init__(
            "cannot connect to %s: %s (check the address, the port and that the camera is on)"
            % (address, reason),
        )
        self.address = address
        self.reason = reason


class LocalProtocolError(TCPCamError):
    """The caller drove the core in a way it does not allow (a bug to fix)."""
