"""The Twisted reference server and its frame sources."""

from tcpcam.server.protocol import TCPCamServerFactory, TCPCamServerProtocol
from tcpcam.server.sources import IFrameSource, sourceFromSpec

__all__ = ["IFrameSource", "TCPCamServerFactory", "TCPCamServerProtocol", "sourceFromSpec"]
