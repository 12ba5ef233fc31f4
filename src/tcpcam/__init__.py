"""tcpcam: get pictures off an ESP32 camera board and onto a computer.

The package is a house of rooms, one sub-package each:

- :mod:`tcpcam.core`: the sans-IO protocol core, both roles; no I/O, clock or
  globals. It is the only host code copied to the board, and runs unchanged
  on CPython and MicroPython.
- :mod:`tcpcam.client`: the Twisted client and its output sinks.
- :mod:`tcpcam.server`: the Twisted reference server and its frame sources.
- :mod:`tcpcam.record`: the recorder and its web interface.
- :mod:`tcpcam.fleet`: many recorders sharing many cameras (NATS JetStream,
  S3); its dependencies are the ``fleet`` extra.
- :mod:`tcpcam.board`: host tools that configure, bundle, flash, deploy and
  simulate the firmware (whose own files are :mod:`tcpcam.firmware`).
- :mod:`tcpcam.cli`: the ``tcpcam`` command line.
- :mod:`tcpcam.tap`: the ``twistd`` plugins' options and services.
- :mod:`tcpcam.common`: small host-side pieces several rooms share.

Importing this package imports nothing else, so it runs on MicroPython too.
"""

__version__ = "0.2.0"
