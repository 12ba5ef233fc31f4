"""Errors a fetch can end with; each message is one line a user can act on.

This module does not import Twisted; :mod:`tcpcam.client` re-exports every
name here.
"""

from tcpcam.errors import FrameTooLarge, RemoteProtocolError, TCPCamError

__all__ = [
    "ClosedBeforeFirstFrame",
    "ConnectFailed",
    "FrameTimeout",
    "FrameTooLarge",
    "TooFewFrames",
    "TruncatedFrame",
]


class ConnectFailed(TCPCamError):
    """The TCP connection could not be made: refused, unreachable or timed out."""

    def __init__(self, address, reason):
        TCPCamError.__init__(
            self,
            "cannot connect to %s: %s (check the address, the port and that the camera is on)"
            % (address, reason),
        )
        self.address = address
        self.reason = reason


class ClosedBeforeFirstFrame(RemoteProtocolError):
    """The server closed the connection before sending any byte of a frame."""

    def __init__(self):
        RemoteProtocolError.__init__(
            self,
            "the server closed the connection before the first frame"
            " (the PIN may be wrong or the server refused the request)",
        )


class TruncatedFrame(RemoteProtocolError):
    """The connection ended in the middle of a frame."""

    def __init__(self, frames, received, declared):
        if declared is None:
            where = "in the header of frame %d" % (frames + 1)
        else:
            where = "after %d of the %d payload bytes of frame %d" % (received, declared, frames + 1)
        RemoteProtocolError.__init__(
            self, "the connection closed %s (the frame is truncated)" % where
        )
        self.frames = frames
        self.received = received
        self.declared = declared


class TooFewFrames(RemoteProtocolError):
    """The server closed the connection after fewer frames than asked for."""

    def __init__(self, received, wanted):
        RemoteProtocolError.__init__(
            self,
            "the server closed the connection after %d of the %d frames asked for"
            % (received, wanted),
        )
        self.received = received
        self.wanted = wanted


class FrameTimeout(RemoteProtocolError):
    """Nothing arrived for longer than the allowed silence."""

    def __init__(self, seconds, frames):
        RemoteProtocolError.__init__(
            self,
            "nothing received for %g s after %d frames (raise the timeout if the camera is slow)"
            % (seconds, frames),
        )
        self.seconds = seconds
        self.frames = frames
