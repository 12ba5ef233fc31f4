"""The sans-IO protocol core: bytes and ``now`` in, events and actions out.

Every protocol rule lives here, for both roles: framing
(:mod:`~tcpcam.core.framing`), the request (:mod:`~tcpcam.core.request`,
:mod:`~tcpcam.core.session`), the server role with admission, pacing and
fan-out (:mod:`~tcpcam.core.server_role`, :mod:`~tcpcam.core.pacing`,
:mod:`~tcpcam.core.throttle`), the client role
(:mod:`~tcpcam.core.client_role`), updates over WiFi
(:mod:`~tcpcam.core.update`), every default and bound
(:mod:`~tcpcam.core.limits`) and the settings tables
(:mod:`~tcpcam.core.options`, :mod:`~tcpcam.core.device_config`).

Nothing here does I/O, reads a clock or keeps global state, and nothing
imports anything outside this package, so these files are copied as they
are onto a board and run there under MicroPython. Annotations use plain
built-in types only; MicroPython ignores them.
"""
