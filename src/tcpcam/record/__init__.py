"""The recorder: keep recording from cameras and show them live in a browser.

``tcpcam.record.service.RecorderService`` ties the parts together: one
:class:`~tcpcam.record.camera.CameraRecorder` per camera, the disk writer
thread (:mod:`tcpcam.record.writer`) with retention
(:mod:`tcpcam.record.retention`) and the stores it writes
(:mod:`tcpcam.record.segments` with its SQLite index
:mod:`tcpcam.record.index`, or JPEG files, :mod:`tcpcam.record.storage`),
the motion thread (:mod:`tcpcam.record.motion`), and the twisted.web live
view. :mod:`tcpcam.record.footage` is the read API of recorded footage (for
the web pages, export and replay); :mod:`tcpcam.record.export` makes MP4s
and time-lapses; :mod:`tcpcam.record.convert` turns old recordings into
segments.
"""
