"""Retention: delete the oldest recordings by age and by disk quota."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from typing import Any

from twisted.application.service import Service
from twisted.internet import task, threads
from twisted.internet.defer import Deferred
from twisted.logger import Logger
from twisted.python.failure import Failure

from tcpcam.common.atomic import isTemporary, removeQuietly
from tcpcam.record.layout import isDayName

log = Logger(namespace="tcpcam.record")

#: A temporary file older than this is a leftover of a crash, not a write in progress.
STALE_TEMP_SECONDS = 3600.0


def dayFolders(root: str) -> dict[str, list[str]]:
    """Return ``{day: [folder, ...]}`` for every ``ROOT/CAMERA/YYYY-MM-DD/`` folder.

    Recordings are the files in those folders; events.jsonl and anything
    else are left alone.
    """
    days: dict[str, list[str]] = {}
    for camera in _entries(root):
        if not camera.is_dir(follow_symlinks=False):
            continue
        for day in _entries(camera.path):
            if isDayName(day.name) and day.is_dir(follow_symlinks=False):
                days.setdefault(day.name, []).append(day.path)
    return days


def recordings(folder: str) -> Iterator[tuple[float, int, str]]:
    """Yield ``(mtime, size, path)`` for every file in ``folder``."""
    for entry in _entries(folder):
        try:
            if not entry.is_file(follow_symlinks=False):
                continue
            info = entry.stat(follow_symlinks=False)
        except OSError:
            continue
        yield info.st_mtime, info.st_size, entry.path


def prune(root: str, keepDays: float, maxBytes: int, now: float, keep: Iterable[str] = ()) -> tuple[int, int]:
    """Delete recordings older than ``keepDays`` and, oldest first, beyond ``maxBytes``.

    Zero turns either limit off. Paths in ``keep`` (files being written) are
    never deleted; temporary files never count, and stale ones are deleted
    in the day folders visited. Day folders are visited oldest first, and
    the pass stops at the first file that may stay, so memory holds one
    day's file list at a time. Folders emptied here are removed. Returns
    ``(files deleted, bytes freed)``.
    """
    keep = set(keep)
    days = dayFolders(root)
    total = 0
    if maxBytes:
        for folders in days.values():
            for folder in folders:
                total += sum(size for _, size, path in recordings(folder) if not isTemporary(path))
    cutoff = now - keepDays * 86400.0 if keepDays else None
    deleted = freed = 0
    for day in sorted(days):
        files = []
        for folder in days[day]:
            for mtime, size, path in recordings(folder):
                if not isTemporary(path):
                    files.append((mtime, size, path))
                elif now - mtime > STALE_TEMP_SECONDS:
                    removeQuietly(path)
        files.sort()
        emptied = set()
        done = False
        for mtime, size, path in files:
            tooOld = cutoff is not None and mtime < cutoff
            overQuota = maxBytes and total > maxBytes
            if not (tooOld or overQuota):
                done = True
                break
            if path in keep:
                continue
            if removeQuietly(path):
                deleted += 1
                freed += size
                total -= size
                emptied.add(os.path.dirname(path))
        for folder in emptied:
            try:
                os.rmdir(folder)
            except OSError:
                pass  # not empty: it still holds newer recordings
        if done:
            break
    return deleted, freed


class RetentionService(Service):
    """Run :func:`prune` at start and every :attr:`interval` seconds, in a thread.

    ``openPaths`` is a callable returning the files being written right now.
    """

    #: Seconds between retention passes.
    interval = 60.0

    def __init__(self, root: str, keepDays: float, maxBytes: int, openPaths: Callable[[], Iterable[str]],
                 reactor: Any) -> None:
        self.root = root
        self.keepDays = keepDays
        self.maxBytes = maxBytes
        self._openPaths = openPaths
        self._reactor = reactor
        self._loop: task.LoopingCall | None = None
        self._running: Deferred[tuple[int, int]] | None = None
        self.passes = 0

    def startService(self) -> None:
        """Start the periodic passes."""
        Service.startService(self)
        if not (self.keepDays or self.maxBytes):
            return
        self._loop = task.LoopingCall(self.runOnce)
        self._loop.clock = self._reactor
        self._loop.start(self.interval, now=True)

    def stopService(self) -> Deferred[None] | None:
        """Stop the passes; the Deferred fires once a pass in progress ends."""
        Service.stopService(self)
        if self._loop is not None and self._loop.running:
            self._loop.stop()
        if self._running is None:
            return None
        waiting: Deferred[None] = Deferred()

        def passEnded(result: tuple[int, int] | Failure) -> tuple[int, int] | Failure:
            waiting.callback(None)
            return result

        self._running.addBoth(passEnded)
        return waiting

    def runOnce(self) -> Deferred[tuple[int, int]]:
        """Run one pass in the reactor's thread pool; returns its Deferred."""
        if self._running is not None:
            return self._running
        running = threads.deferToThreadPool(
            self._reactor, self._reactor.getThreadPool(), prune,
            self.root, self.keepDays, self.maxBytes, self._reactor.seconds(),
            tuple(self._openPaths()),
        )

        def done(result: tuple[int, int]) -> tuple[int, int]:
            self._running = None
            self.passes += 1
            deleted, freed = result
            if deleted:
                log.info("retention: deleted {deleted} old recordings ({mb:.1f} MB) under {root}",
                         deleted=deleted, mb=freed / 1e6, root=self.root)
            return result

        def failed(failure: Failure) -> tuple[int, int]:
            self._running = None
            log.failure("retention: pass over {root} failed", failure, root=self.root)
            return (0, 0)

        self._running = running.addCallbacks(done, failed)
        return self._running


def _entries(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except OSError:
        return []
