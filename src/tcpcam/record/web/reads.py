"""Disk reads of the web interface, in a thread pool of their own: the reactor never waits on the disk.

Every footage endpoint (the timeline's JSON, thumbnails, frames, playback
streams, export downloads) reads the index and the segments through
:class:`FootageReads`: a :class:`~tcpcam.record.footage.Footage` used only
from :data:`READ_THREADS` worker threads. The work waiting for a thread is
bounded: at most :attr:`FootageReads.maxPending` reads wait or run at once
(503 beyond) and at most :attr:`FootageReads.perAddress` of one address
(429 beyond), so a flood of requests never piles up work or memory. The
recording itself never waits on any of it: the disk writer has its own
thread.

A read returns an :class:`Answer` (code, type, body, headers), made
entirely in the worker thread, JSON encoding included; :func:`answerLater`
writes it once it comes, unless the client left meanwhile.
"""

from __future__ import annotations

import functools
import json
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, BinaryIO

from twisted.internet.defer import Deferred, fail
from twisted.internet.interfaces import IPushProducer
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.server import NOT_DONE_YET, Request
from zope.interface import implementer

from tcpcam.record.footage import Footage
from tcpcam.record.web.plain import NO_CACHE, plainText
from tcpcam.record.web.stall import StallWatch

log = Logger(namespace="tcpcam.record")

#: Worker threads reading footage for the web interface.
READ_THREADS = 4
#: Reads waiting or running at once, all addresses together; more get 503.
MAX_PENDING_READS = 64
#: Reads waiting or running at once for one address; more get 429.
MAX_READS_PER_ADDRESS = 8
#: Bytes a download reads from its file at a time.
CHUNK_BYTES = 256 * 1024
#: Seconds a download waits before reading again when the reads are all taken.
RETRY_SECONDS = 0.05


class ReadsBusy(Exception):
    """No read can be taken now: ``code`` (429 or 503) and a one-line message."""

    def __init__(self, code: int, message: str) -> None:
        Exception.__init__(self, message)
        self.code = code


@dataclass
class Answer:
    """An HTTP answer made in a worker thread."""

    code: int
    body: bytes
    contentType: bytes = b"text/plain; charset=utf-8"
    headers: dict[bytes, bytes] = field(default_factory=dict)

    @classmethod
    def json(cls, value: object, code: int = 200) -> Answer:
        """``value`` as a JSON answer."""
        return cls(code, json.dumps(value, separators=(",", ":")).encode() + b"\n", b"application/json")

    @classmethod
    def text(cls, code: int, message: str) -> Answer:
        """One line of text."""
        return cls(code, message.encode("utf-8") + b"\n")


class FootageReads:
    """The web interface's footage reader: a bounded thread pool around one :class:`Footage`."""

    #: Reads waiting or running at once (all addresses).
    maxPending = MAX_PENDING_READS
    #: Reads waiting or running at once for one address.
    perAddress = MAX_READS_PER_ADDRESS

    def __init__(self, root: str, reactor: Any, threads: int = READ_THREADS,
                 opener: Callable[[], Footage] | None = None) -> None:
        self.root = root
        #: Makes a footage reader: the one of these reads, and one per export (a fleet's reads the object store).
        self.opener: Callable[[], Footage] = opener if opener is not None else functools.partial(Footage, root)
        self.footage = self.opener()
        self.pool = ThreadPool(0, threads, name="tcpcam-web-reads")
        self.reactor = reactor
        self._byAddress: dict[str, int] = {}
        self.pending = 0
        #: Reads refused because too many were waiting.
        self.refused = 0
        #: Downloads dropped because their client took nothing for too long.
        self.stalled = 0

    def start(self) -> None:
        """Start the worker threads."""
        self.pool.start()

    def stop(self) -> None:
        """Stop the worker threads (waiting for the reads they are doing) and close the index connections."""
        self.pool.stop()
        self.footage.close()

    def check(self, address: str) -> None:
        """Raise :class:`ReadsBusy` if ``address`` (or everybody) has as many reads waiting as allowed."""
        if self.pending >= self.maxPending:
            self.refused += 1
            raise ReadsBusy(503, "the recorder is busy reading footage; try again in a moment")
        if self._byAddress.get(address, 0) >= self.perAddress:
            self.refused += 1
            raise ReadsBusy(429, "too many footage requests from your address at once (at most %d)"
                            % self.perAddress)

    def run(self, address: str, function: Callable[..., Any], *args: Any) -> Deferred[Any]:
        """``function(footage, *args)`` in a worker thread; fails with :class:`ReadsBusy` beyond the bounds."""
        try:
            self.check(address)
        except ReadsBusy:
            return fail()
        self.pending += 1
        self._byAddress[address] = self._byAddress.get(address, 0) + 1

        def done(result: object) -> object:
            self.pending -= 1
            left = self._byAddress[address] - 1
            if left:
                self._byAddress[address] = left
            else:
                del self._byAddress[address]
            return result

        return deferToThreadPool(self.reactor, self.pool, function, self.footage, *args).addBoth(done)


def writeAnswer(request: Request, answer: Answer) -> None:
    """Send ``answer`` and finish the request."""
    request.setResponseCode(answer.code)
    request.setHeader(b"content-type", answer.contentType)
    request.setHeader(b"cache-control", answer.headers.pop(b"cache-control", NO_CACHE))
    for name, value in answer.headers.items():
        request.setHeader(name, value)
    request.setHeader(b"content-length", b"%d" % len(answer.body))
    if request.method != b"HEAD":
        request.write(answer.body)
    request.finish()


def answerLater(request: Request, reads: FootageReads, address: str, function: Callable[..., Answer],
                *args: Any) -> bytes | int:
    """Render ``function(footage, *args)`` (run by ``reads``) as this request's answer: ``NOT_DONE_YET``.

    A refusal is answered at once. If the client leaves before the answer
    is ready, the answer is dropped.
    """
    try:
        reads.check(address)
    except ReadsBusy as busy:
        return plainText(request, busy.code, str(busy), retryAfter=1)
    gone: list[bool] = []
    request.notifyFinish().addErrback(lambda _: gone.append(True))

    def answer(result: Answer) -> None:
        if not gone:
            writeAnswer(request, result)

    def failed(failure: Failure) -> None:
        if failure.check(ReadsBusy):
            result = Answer.text(failure.value.code, str(failure.value))
        else:
            log.failure("web interface: reading footage failed", failure)
            result = Answer.text(500, "reading the footage failed")
        if not gone:
            writeAnswer(request, result)

    reads.run(address, function, *args).addCallbacks(answer, failed)
    return NOT_DONE_YET


@implementer(IPushProducer)
class FileSender:
    """Send a file as a response body, one chunk at a time read in the worker threads.

    A push producer on the request: while the connection is full, no more is
    read, so a download holds at most one chunk in memory. A client that
    takes nothing for :attr:`stallTimeout` seconds is dropped. The file is
    opened by the caller (in a worker thread) and closed here.
    """

    #: Seconds a download may stay paused (the client reads nothing) before it is dropped.
    stallTimeout = 30.0

    def __init__(self, request: Request, reads: FootageReads, handle: BinaryIO, address: str) -> None:
        self.request = request
        self.reads = reads
        self.handle = handle
        self.address = address
        self.sent = 0
        self.stalled = False
        self._paused = False
        self._reading = False
        self._done = False
        self._watch = StallWatch(reads.reactor, self.stallTimeout, request, self._stall)

    def start(self) -> None:
        """Begin sending (the headers are set by the caller)."""
        self.request.registerProducer(self, True)
        self.request.notifyFinish().addBoth(lambda _: self._finish())
        self._readMore()

    def _readMore(self) -> None:
        if self._done or self._paused or self._reading:
            return
        self._reading = True
        self.reads.run(self.address, _readChunk, self.handle).addCallbacks(self._got, self._failed)

    def _got(self, chunk: bytes) -> None:
        self._reading = False
        if self._done:
            self._close()
            return
        if not chunk:
            self._finish()
            self.request.unregisterProducer()
            self.request.finish()
            return
        self.sent += len(chunk)
        self.request.write(chunk)
        self._readMore()

    def _failed(self, failure: Failure) -> None:
        self._reading = False
        if failure.check(ReadsBusy) and not self._done:
            self.reads.reactor.callLater(RETRY_SECONDS, self._readMore)
            return
        if not self._done:
            log.failure("web interface: sending a file failed", failure)
            transport = self.request.channel.transport if self.request.channel is not None else None
            if transport is not None:
                transport.loseConnection()
        self._finish()

    def pauseProducing(self) -> None:
        """The connection is full: read no more for now."""
        self._paused = True
        if not self._done:
            self._watch.arm()

    def resumeProducing(self) -> None:
        """The connection has room: read the next chunk."""
        self._paused = False
        self._watch.cancel()
        self._readMore()

    def stopProducing(self) -> None:
        """The client left."""
        self._finish()

    def _stall(self) -> None:
        if self._done:
            return
        self.stalled = True
        self.reads.stalled += 1
        self._finish()

    def _finish(self) -> None:
        self._done = True
        self._watch.cancel()
        if not self._reading:
            self._close()

    def _close(self) -> None:
        if not self._reading and not self.handle.closed:
            self.handle.close()


def _readChunk(footage: Footage, handle: BinaryIO) -> bytes:
    return handle.read(CHUNK_BYTES)


def openForReading(footage: Footage, path: str) -> tuple[BinaryIO, int] | None:
    """``(open file, size)`` of ``path``, or None if it is not there (for a worker thread)."""
    try:
        handle = open(path, "rb")
    except OSError:
        return None
    return handle, os.fstat(handle.fileno()).st_size
