"""The ``twistd tcpcam`` plugin: the recorder daemon, under the project's own name."""

from twisted.application.service import ServiceMaker

tcpcam = ServiceMaker(
    "tcpcam",
    "tcpcam.tap.record",
    "Record TCPCam cameras to disk, with a live view in the browser (same as tcpcam-record)",
    "tcpcam",
)
