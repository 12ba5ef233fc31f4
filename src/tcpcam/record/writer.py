"""The disk writer: one thread per recorder that does every disk write, fed by a bounded queue.

The reactor thread never touches the disk for frames: each camera hands its
frames to :meth:`CameraSink.write`, which only queues them (or, when the
queue holds :attr:`DiskWriter.maxQueueBytes` bytes or
:attr:`DiskWriter.maxQueueItems` items, refuses them: the camera counts and
logs the drop). The writer thread

- opens each camera's store first, which repairs what a crash left (see
  :mod:`tcpcam.record.segments`), and logs what it repaired;
- before each batch, makes room for it under the quota and the free-space
  floor (:class:`~tcpcam.record.retention.Retention`), so both hold between
  retention passes;
- appends the frames, and commits their index rows every
  :attr:`DiskWriter.commitSeconds` (after ``fdatasync`` of the segments);
- writes ``events.jsonl`` lines and motion events, in order with the frames;
- runs the age pass of retention every minute;
- on disk errors, drops that camera's frames for :attr:`diskRetrySeconds`
  and tries again, reporting each change of state to the camera once.

The writer owns the only connection that writes each camera's index.
Everything it reports goes back to the reactor with ``callFromThread``.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from twisted.internet.defer import Deferred
from twisted.logger import Logger

from tcpcam.record.index import IndexProblem
from tcpcam.record.retention import Retention, RetentionPolicy

if TYPE_CHECKING:
    from tcpcam.record.eventlog import EventLog
    from tcpcam.record.segments import SegmentStore
    from tcpcam.record.storage import JpegTreeStore

    Store = SegmentStore | JpegTreeStore

log = Logger(namespace="tcpcam.record")

#: Bytes of frames the queue holds at most (about 8 s of 16 cameras at 10 frames/s of 50 KB).
QUEUE_BYTES = 64 * 1024 * 1024
#: Items the queue holds at most.
QUEUE_ITEMS = 8192
#: Control items (event lines, motion events) the queue takes beyond :data:`QUEUE_ITEMS`.
CONTROL_ITEMS = 1024
#: Seconds between commits of index rows (each one after an fdatasync of the segments written).
COMMIT_SECONDS = 1.0
#: Seconds a camera's frames are dropped after a failed write before trying again.
DISK_RETRY_SECONDS = 5.0
#: Frames taken off the queue at a time.
BATCH_ITEMS = 256
#: What counts as the disk failing: logged once, retried after DISK_RETRY_SECONDS.
DISK_ERRORS = (OSError, sqlite3.Error, IndexProblem)


@dataclass
class WriteStats:
    """One camera's writing counters; the writer thread updates them, anyone may read them."""

    written: int = 0
    writtenBytes: int = 0
    diskDropped: int = 0
    diskErrors: int = 0
    failing: bool = False
    eventLogFailing: bool = False


class CameraSink:
    """What a camera writes to: its store, its event log and its counters, behind the writer's queue.

    ``onDiskState(failing, reason, dropped)`` and ``onEventLogState(failing,
    reason)`` are called in the reactor thread when writing starts failing or
    works again.
    """

    def __init__(self, writer: DiskWriter, name: str, store: Store, events: EventLog) -> None:
        self.writer = writer
        self.name = name
        self.store = store
        self.events = events
        self.stats = WriteStats()
        self.onDiskState: Callable[[bool, str, int], object] = lambda failing, reason, dropped: None
        self.onEventLogState: Callable[[bool, str], object] = lambda failing, reason: None
        #: Called as ``onEvent(kind, fields)`` in the reactor thread with each ``events.jsonl`` line queued.
        self.onEvent: Callable[[str, dict[str, object]], object] | None = None
        self._retryAt = 0.0

    @property
    def directory(self) -> str:
        """The camera's folder."""
        return self.store.directory

    @property
    def openPaths(self) -> tuple[str, ...]:
        """Files being written (read from another thread: a snapshot)."""
        return self.store.openPaths

    def write(self, frame: bytes, when: float, seq: int | None = None, cameraSeq: int | None = None,
              captureMs: int | None = None) -> bool:
        """Queue one frame; False (and nothing queued) if the queue is full.

        ``seq`` is the recorder's count (it names the files of the ``jpg``
        format); ``cameraSeq`` and ``captureMs`` are the camera's sequence
        number and capture time (device milliseconds), for the index's
        ``seq`` and ``capture_ms`` columns (protocol 2; None otherwise).
        """
        return self.writer.put((self, "frame", frame, when, seq, cameraSeq, captureMs), len(frame))

    def event(self, kind: str, **fields: object) -> bool:
        """Queue one ``events.jsonl`` line, stamped now."""
        if self.onEvent is not None:
            self.onEvent(kind, fields)
        return self.writer.put((self, "event", kind, time.time(), fields), 0, control=True)

    def call(self, function: Callable[[Store], object], done: Callable[[object], object] | None = None) -> bool:
        """Run ``function(store)`` in the writer thread, in order with the frames.

        ``done(result)`` is called after, in the reactor thread.
        """
        return self.writer.put((self, "call", function, done), 0, control=True)


class DiskWriter:
    """The writer thread and its queue (see the module docstring)."""

    #: Bytes of frames the queue holds at most.
    maxQueueBytes = QUEUE_BYTES
    #: Items the queue holds at most.
    maxQueueItems = QUEUE_ITEMS
    #: Seconds between commits.
    commitSeconds = COMMIT_SECONDS
    #: Seconds a failing camera's frames are dropped before a new try.
    diskRetrySeconds = DISK_RETRY_SECONDS

    def __init__(self, root: str, policy: RetentionPolicy, reactor: Any,
                 clock: Callable[[], float] = time.time) -> None:
        self.root = root
        self.sinks: dict[str, CameraSink] = {}
        self.retention = Retention(root, policy, {})
        self._reactor = reactor
        self._clock = clock
        self._queue: deque[tuple[Any, ...]] = deque()
        self._queuedBytes = 0
        self._condition = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._stopped: Deferred[None] | None = None
        self.batches = 0
        self.commits = 0
        self.peakQueueBytes = 0
        self.peakTotalBytes = 0

    def addCamera(self, name: str, store: Store, events: EventLog) -> CameraSink:
        """The sink of one camera; once the thread runs, the thread adds it and opens its store first."""
        sink = CameraSink(self, name, store, events)
        if self._thread is None:
            self.sinks[name] = sink
            self.retention.stores[name] = store
        elif not self.put((sink, "add"), 0, control=True):
            raise RuntimeError("the disk writer is stopping or its queue is full: cannot add camera %s" % name)
        return sink

    def removeCamera(self, sink: CameraSink) -> Deferred[None]:
        """Close a camera's store (after what is queued for it) and forget it; fires in the reactor once done."""
        done: Deferred[None] = Deferred()
        if self._thread is None or not self.put((sink, "remove", done), 0, control=True):
            self._forget(sink)
            done.callback(None)
        return done

    def _forget(self, sink: CameraSink) -> None:
        if self.sinks.get(sink.name) is sink:
            del self.sinks[sink.name]
            self.retention.stores.pop(sink.name, None)
        try:
            sink.store.close()
        except Exception as error:
            self._report(log.error, "camera {name}: cannot close its store: {error}", name=sink.name, error=error)

    @property
    def queuedBytes(self) -> int:
        """Bytes of frames waiting."""
        return self._queuedBytes

    @property
    def queuedItems(self) -> int:
        """Items waiting."""
        return len(self._queue)

    def put(self, item: tuple[Any, ...], size: int, control: bool = False) -> bool:
        """Queue ``item`` of ``size`` frame bytes; False if it does not fit."""
        with self._condition:
            if self._stopping:
                return False
            if control:
                if len(self._queue) >= self.maxQueueItems + CONTROL_ITEMS:
                    return False
            elif len(self._queue) >= self.maxQueueItems or self._queuedBytes + size > self.maxQueueBytes:
                return False
            self._queue.append(item)
            self._queuedBytes += size
            self.peakQueueBytes = max(self.peakQueueBytes, self._queuedBytes)
            self._condition.notify()
        return True

    def start(self) -> None:
        """Start the thread."""
        self._thread = threading.Thread(target=self._run, name="tcpcam-disk-writer", daemon=True)
        self._thread.start()

    def stop(self) -> Deferred[None]:
        """Write what is queued, close every store; the Deferred fires (in the reactor) once done."""
        if self._stopped is not None:
            return self._stopped
        self._stopped = Deferred()
        with self._condition:
            self._stopping = True
            self._condition.notify()
        if self._thread is None:
            self._closeAll()
            self._stopped.callback(None)
        return self._stopped

    # -- the thread -----------------------------------------------------

    def _run(self) -> None:
        try:
            self._openAll()
            self._loop()
        except BaseException:
            self._report(log.failure, "the disk writer stopped on an unexpected error")
        finally:
            self._closeAll()
            stopped = self._stopped
            if stopped is not None:
                self._reactor.callFromThread(stopped.callback, None)

    def _report(self, method: Callable[..., None], format: str, **fields: object) -> None:
        if method is log.failure:
            from twisted.python.failure import Failure

            failure = Failure()
            self._reactor.callFromThread(log.failure, format, failure, **fields)
        else:
            self._reactor.callFromThread(method, format, **fields)

    def _openAll(self) -> None:
        for sink in self.sinks.values():
            self._openStore(sink)

    def _openStore(self, sink: CameraSink) -> bool:
        try:
            report = sink.store.open()
        except DISK_ERRORS as error:
            self._diskFailed(sink, error)
            return False
        if report.repaired:
            self._report(log.warn, "camera {name}: repaired what the last run left: {what}",
                         name=sink.name, what=report.describe())
        for problem in report.problems:
            self._report(log.warn, "camera {name}: {problem}", name=sink.name, problem=problem)
        return True

    def _take(self, timeout: float) -> list[tuple[Any, ...]] | None:
        with self._condition:
            if not self._queue and not self._stopping:
                self._condition.wait(timeout)
            if not self._queue:
                return None if self._stopping else []
            batch: list[tuple[Any, ...]] = []
            while self._queue and len(batch) < BATCH_ITEMS:
                batch.append(self._queue.popleft())
            return batch

    def _loop(self) -> None:
        retention = self.retention
        nextCommit = self._clock() + self.commitSeconds
        retention.maybeAgePass(self._clock())
        while True:
            batch = self._take(max(0.0, min(nextCommit - self._clock(), self.commitSeconds)))
            if batch is None:
                return
            if batch:
                self.batches += 1
                incoming = sum(len(item[2]) for item in batch if item[1] == "frame")
                now = self._clock()
                if incoming:
                    try:
                        retention.makeRoom(incoming, now)
                    except Exception:
                        self._report(log.failure, "retention: cannot make room under {root}", root=self.root)
                for item in batch:
                    self._handle(item)
                with self._condition:
                    self._queuedBytes -= incoming
                self.peakTotalBytes = max(self.peakTotalBytes, retention.totalBytes())
            now = self._clock()
            if now >= nextCommit:
                self._commitAll()
                nextCommit = now + self.commitSeconds
                try:
                    retention.maybeAgePass(now)
                except Exception:
                    self._report(log.failure, "retention: pass over {root} failed", root=self.root)

    def _handle(self, item: tuple[Any, ...]) -> None:
        sink: CameraSink = item[0]
        kind = item[1]
        if kind == "frame":
            self._writeFrame(sink, item[2], item[3], item[4], item[5], item[6])
        elif kind == "event":
            self._writeEvent(sink, item[2], item[3], item[4])
        elif kind == "add":
            self.sinks[sink.name] = sink
            self.retention.stores[sink.name] = sink.store
            self._openStore(sink)
        elif kind == "remove":
            self._forget(sink)
            self._reactor.callFromThread(item[2].callback, None)
        elif kind == "call":
            function, done = item[2], item[3]
            try:
                result = function(sink.store)
            except Exception:
                self._report(log.failure, "camera {name}: a task of the disk writer failed", name=sink.name)
                return
            if done is not None:
                self._reactor.callFromThread(done, result)

    def _writeFrame(self, sink: CameraSink, frame: bytes, when: float, seq: int | None, cameraSeq: int | None,
                    captureMs: int | None) -> None:
        stats = sink.stats
        now = self._clock()
        if stats.failing and now < sink._retryAt:
            stats.diskDropped += 1
            return
        if stats.failing and getattr(sink.store, "recovery", None) is None and not self._openStore(sink):
            stats.diskDropped += 1
            return
        try:
            # The recorder's own frame count names JPEG files; the index's seq column is
            # for the camera's sequence number (protocol 2; None for a legacy camera).
            if sink.store.format == "jpg":
                sink.store.write(frame, when, seq)
            else:
                sink.store.write(frame, when, cameraSeq, captureMs)
        except DISK_ERRORS as error:
            self._diskFailed(sink, error)
            stats.diskDropped += 1
            return
        stats.written += 1
        stats.writtenBytes += len(frame)
        if sink.store.format == "jpg":
            self.retention.accountWritten(len(frame))
        if stats.failing:
            stats.failing = False
            self._reactor.callFromThread(sink.onDiskState, False, "", stats.diskDropped)

    def _diskFailed(self, sink: CameraSink, error: Exception) -> None:
        stats = sink.stats
        stats.diskErrors += 1
        sink._retryAt = self._clock() + self.diskRetrySeconds
        if not stats.failing:
            stats.failing = True
            self._reactor.callFromThread(sink.onDiskState, True, describeError(error), stats.diskDropped)

    def _writeEvent(self, sink: CameraSink, kind: str, when: float, fields: dict[str, object]) -> None:
        stats = sink.stats
        try:
            sink.events.appendAt(when, kind, **fields)
        except OSError as error:
            if not stats.eventLogFailing:
                stats.eventLogFailing = True
                self._reactor.callFromThread(sink.onEventLogState, True, describeError(error))
            return
        if stats.eventLogFailing:
            stats.eventLogFailing = False
            self._reactor.callFromThread(sink.onEventLogState, False, "")

    def _commitAll(self) -> None:
        for sink in self.sinks.values():
            if not sink.store.pendingFrames:
                continue
            try:
                sink.store.commit()
                self.commits += 1
            except DISK_ERRORS as error:
                self._diskFailed(sink, error)

    def _closeAll(self) -> None:
        for sink in self.sinks.values():
            try:
                sink.store.close()
            except Exception as error:
                self._report(log.error, "camera {name}: cannot close its store: {error}",
                             name=sink.name, error=error)


def describeError(error: BaseException) -> str:
    """An OSError (or another error) in a few words."""
    if isinstance(error, OSError) and error.strerror:
        return "%s (%s)" % (error.strerror, error.filename) if error.filename else error.strerror
    return str(error) or type(error).__name__
