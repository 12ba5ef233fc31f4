"""The Twisted client: :func:`fetch`, its protocol and factory, and the sinks of ``tcpcam get``.

Every error a fetch ends with is in the core's error tree
(:mod:`tcpcam.core.errors`) and re-exported here.
"""

from tcpcam.client.protocol import (
    FetchSummary,
    TCPCamClientFactory,
    TCPCamClientProtocol,
    fetch,
)
from tcpcam.core.errors import (
    ClosedBeforeFirstFrame,
    ConnectFailed,
    FrameTimeout,
    FrameTooLarge,
    TooFewFrames,
    TruncatedFrame,
)

__all__ = [
    "ClosedBeforeFirstFrame",
    "ConnectFailed",
    "FetchSummary",
    "FrameTimeout",
    "FrameTooLarge",
    "TCPCamClientFactory",
    "TCPCamClientProtocol",
    "TooFewFrames",
    "TruncatedFrame",
    "fetch",
]
