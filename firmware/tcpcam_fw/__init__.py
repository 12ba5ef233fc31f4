"""The tcpcam firmware: the protocol served from an ESP32-CAM with asyncio.

It drives the shared sans-IO core (``tcpcam.session``, ``tcpcam.broadcast``,
``tcpcam.framing``) copied unchanged onto the device.
"""
