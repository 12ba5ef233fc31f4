"""The recorder: keep recording from cameras and show them live in a browser.

``tcpcam.record.service.RecorderService`` ties the parts together: one
:class:`~tcpcam.record.camera.CameraRecorder` per camera, the storage and
event log it writes to, retention, and the twisted.web live view.
"""
