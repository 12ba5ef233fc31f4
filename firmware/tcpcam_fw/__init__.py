"""The tcpcam firmware: the protocol served from an ESP32-CAM with asyncio.

It drives the shared sans-IO core (``tcpcam.core.session``, ``tcpcam.core.broadcast``,
``tcpcam.core.framing``) copied unchanged onto the device.
"""
