"""twistd plugin ``tcpcam-server``: the TCPCam reference server."""

from twisted.application.service import ServiceMaker

tcpcam_server = ServiceMaker(
    "tcpcam-server",
    "tcpcam.tap.server",
    "TCPCam reference server: frames from a source (simulated camera, files, replay) to TCPCam clients",
    "tcpcam-server",
)
