"""Errors, split by fault as in h11 and wsproto.

``RemoteProtocolError`` and its subclasses mean the peer sent bytes that break
the protocol: log them and close the connection. ``LocalProtocolError`` means
this program used the core wrongly: it is a bug to fix, not a peer to blame.
"""


class TCPCamError(Exception):
    """Base class of every error raised by tcpcam."""


class RemoteProtocolError(TCPCamError):
    """The peer sent bytes that break the protocol."""


class FrameTooLarge(RemoteProtocolError):
    """A frame header declared a payload longer than the configured limit."""

    def __init__(self, length, limit):
        super().__init__(
            "peer declared a frame of %d bytes, over the limit of %d bytes"
            " (raise max_frame_bytes if frames this large are expected)"
            % (length, limit),
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


class LocalProtocolError(TCPCamError):
    """The caller used the core in a way it does not allow (a bug to fix)."""
