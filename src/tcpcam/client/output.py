"""Where ``tcpcam get`` puts frames: one stream (stdout or a file) or a file per frame.

Each sink is a ``frameReceived`` callable for :mod:`tcpcam.client` and has a
``close()``. Writes are synchronous, so a slow disk holds the reactor and
with it the socket: the server is slowed down, memory does not grow.
"""

from __future__ import annotations

import datetime
import os
import tempfile
from collections.abc import Callable
from typing import BinaryIO

from tcpcam.common.jpeg import jpegProblem
from tcpcam.core.errors import TCPCamError
from tcpcam.core.text import plural

#: Names of outputs that must hold JPEG pictures only.
JPEG_SUFFIXES = (".jpg", ".jpeg")


class OutputError(TCPCamError):
    """A frame could not be written."""

    def __init__(self, where: str, error: OSError) -> None:
        TCPCamError.__init__(self, "cannot write %s: %s" % (where, error.strerror or error))
        self.where = where
        self.error = error


class OutputLimitReached(TCPCamError):
    """Writing on would pass ``--max-files`` or ``--max-bytes``: ``tcpcam get`` stops."""


class StreamSink:
    """Writes every payload, back to back, to one binary file object."""

    def __init__(self, stream: BinaryIO, name: str) -> None:
        self.stream = stream
        self.name = name

    def __call__(self, view: bytes | memoryview) -> None:
        """Write one payload."""
        try:
            self.stream.write(view)
        except OSError as error:
            raise OutputError(self.name, error) from error

    def close(self) -> None:
        """Flush (and close, unless it is stdout); errors become OutputError."""
        try:
            self.stream.flush()
            if self.name != "stdout":
                self.stream.close()
        except OSError as error:
            raise OutputError(self.name, error) from error


def open_append(path: str) -> StreamSink:
    """Open ``path`` for appending, as the original client did."""
    try:
        return StreamSink(open(path, "ab"), path)
    except OSError as error:
        raise OutputError(path, error) from error


def check_pattern(pattern: str) -> None:
    """Raise ValueError unless ``pattern`` names a distinct file per frame."""
    when = datetime.datetime.now()
    try:
        first = pattern.format(n=1, time=when)
        second = pattern.format(n=2, time=when)
    except (KeyError, IndexError, ValueError, AttributeError) as error:
        raise ValueError("bad pattern %r: %s (fields: {n} and {time})" % (pattern, error)) from error
    if first == second:
        raise ValueError("pattern %r must contain {n} so that every frame gets its own file" % pattern)
    if not os.path.basename(first):
        raise ValueError("pattern %r names a directory, not a file" % pattern)


class SplitSink:
    """Writes each payload to its own file, named by ``pattern.format(n=, time=)``.

    ``n`` counts frames from 1 and ``time`` is the local
    :class:`datetime.datetime` the frame arrived. A file is written under a
    hidden temporary name in the same directory and renamed when complete,
    so a file with the final name is always whole.
    """

    def __init__(self, pattern: str, now: Callable[[], datetime.datetime] = datetime.datetime.now) -> None:
        check_pattern(pattern)
        self.pattern = pattern
        self.now = now
        self.count = 0
        # mkstemp makes files only their owner can read: give them the mode
        # an ordinary open() would, which the umask decides.
        umask = os.umask(0o022)
        os.umask(umask)
        self.mode = 0o666 & ~umask

    def __call__(self, view: bytes | memoryview) -> None:
        """Write one payload to its own file."""
        self.count += 1
        path = self.pattern.format(n=self.count, time=self.now())
        directory = os.path.dirname(path) or "."
        temporary = None
        try:
            os.makedirs(directory, exist_ok=True)
            handle, temporary = tempfile.mkstemp(
                dir=directory, prefix="." + os.path.basename(path) + ".", suffix=".part"
            )
            with os.fdopen(handle, "wb") as stream:
                os.fchmod(stream.fileno(), self.mode)
                stream.write(view)
            os.replace(temporary, path)
        except OSError as error:
            if temporary is not None and os.path.exists(temporary):
                os.unlink(temporary)
            raise OutputError(path, error) from error

    def close(self) -> None:
        """Nothing is left open between frames."""


def wantsJpegs(name: str | None) -> bool:
    """True when the output ``name`` (a file name or a --split pattern) ends in .jpg or .jpeg."""
    return name is not None and name.lower().endswith(JPEG_SUFFIXES)


class BoundedSink:
    """Hands frames to ``sink`` within bounds, skipping the ones that are not JPEGs if ``jpegOnly``.

    ``maxFiles`` (for a sink that writes a file per frame, else None) and
    ``maxBytes`` bound what is written; ``wanted`` is the command N. A frame
    that would take the bytes written past ``maxBytes`` is not written, and
    :class:`OutputLimitReached` ends the fetch; so does the ``maxFiles``-th
    file of a stream (or of more frames than that), once written. Skipped
    frames are counted in :attr:`skipped`; :attr:`firstProblem` says what
    was wrong with the first.
    """

    def __init__(self, sink: StreamSink | SplitSink, maxFiles: int | None, maxBytes: int, wanted: int,
                 jpegOnly: bool) -> None:
        self.sink = sink
        self.maxFiles = maxFiles
        self.maxBytes = maxBytes
        self.wanted = wanted
        self.jpegOnly = jpegOnly
        self.written = 0
        self.bytesWritten = 0
        self.skipped = 0
        self.firstProblem: str | None = None

    def __call__(self, view: bytes | memoryview) -> None:
        """Write one payload, skip it, or raise OutputLimitReached."""
        if self.jpegOnly:
            problem = jpegProblem(view)
            if problem is not None:
                self.skipped += 1
                if self.firstProblem is None:
                    self.firstProblem = problem
                return
        if self.bytesWritten + len(view) > self.maxBytes:
            raise OutputLimitReached(
                "stopped after %s (%s): the next frame would pass --max-bytes %d (raise it to keep more)"
                % (plural(self.written, "frame"), plural(self.bytesWritten, "byte"), self.maxBytes))
        self.sink(view)
        self.written += 1
        self.bytesWritten += len(view)
        if self.maxFiles is not None and self.written >= self.maxFiles and not 0 < self.wanted <= self.written:
            raise OutputLimitReached("stopped after %s: the --max-files bound (raise it to keep more)"
                                     % plural(self.written, "file"))

    def close(self) -> None:
        """Close the sink."""
        self.sink.close()
