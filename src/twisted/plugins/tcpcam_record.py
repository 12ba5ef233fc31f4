"""The ``twistd tcpcam-record`` plugin: the recorder daemon."""

from twisted.application.service import ServiceMaker

tcpcam_record = ServiceMaker(
    "tcpcam-record",
    "tcpcam.tap.record",
    "Record TCPCam cameras to disk, with a live view in the browser",
    "tcpcam-record",
)
