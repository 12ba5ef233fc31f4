"""How many bytes to ask the socket for per read: just below glibc's mmap threshold, growing while reads fill up.

Twisted's TCP transports read ``bufferSize`` bytes (64 KiB by default), and
``socket.recv`` allocates a bytes object of that size for every read and
shrinks it to what arrived. 128 KiB and up is glibc's mmap threshold: such a
block is mapped, shrunk with mremap and unmapped again on every read, and
each page that is filled faults, about five times the CPU of a read below
it. So reads start just below it (64 bytes are the bytes object's header and
malloc's own). A read that fills the whole buffer means more data is
waiting: the next read asks for twice as much, up to a bound. A read that
comes back short goes back to the largest size that has come back full:
glibc serves blocks that large from its heap from then on (it raises its
threshold when it unmaps one). Fewer, larger reads cut the reactor's cost
per byte when the sender is fast.
"""

from __future__ import annotations

from typing import Any

#: The first read size.
START = 128 * 1024 - 64
#: The largest.
MAXIMUM = 1024 * 1024


class AdaptiveReadSize:
    """Sets a transport's ``bufferSize`` read by read (transports without one are left alone)."""

    def __init__(self, start: int = START, maximum: int = MAXIMUM) -> None:
        self.start = start
        self.maximum = maximum
        self._transport: Any = None
        self._size = start
        self._filled = start

    def attach(self, transport: Any) -> None:
        """Start with ``transport`` (a TCP transport has ``bufferSize``)."""
        if hasattr(transport, "bufferSize"):
            self._transport = transport
            self._size = self._filled = transport.bufferSize = self.start

    def received(self, count: int) -> None:
        """A read brought ``count`` bytes: set the size of the next one."""
        if self._transport is None:
            return
        if count >= self._size:
            self._filled = self._size
            size = min(2 * self._size, self.maximum)
        else:
            size = self._filled
        if size != self._size:
            self._size = self._transport.bufferSize = size
