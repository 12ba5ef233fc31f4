"""tcpcam: get pictures off an ESP32 camera board and onto a computer.

Importing this package imports only the sans-IO core's names; it never
imports Twisted, so the core modules run unchanged on MicroPython.
"""

__version__ = "0.1.0"

#: The modules that make up the sans-IO core, copied as they are onto a device.
CORE_MODULES = ("__init__", "errors", "framing", "events", "request", "session", "broadcast", "throttle")
