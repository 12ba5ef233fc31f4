"""Retention: delete the oldest recordings by age, by quota and to keep a free-space floor.

Three limits work together, all run by the disk writer thread (the one that
writes the index, see :mod:`tcpcam.record.writer`):

- **age** (``keep_days``; ``keep_motion_days`` for segments with motion):
  a pass at start and every :attr:`Retention.interval` seconds;
- **quota** (``max_bytes``) and **free-space floor** (``min_free`` and
  ``min_free_percent``, on by default: the larger of 1 GiB and 5 % of the
  filesystem, at most half of it): checked *before every batch of frames is
  written*, with the bytes written since the last measure accounted in
  memory, so they hold between passes. The oldest recordings go first; with
  segments, plain footage goes before segments holding motion.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, cast

from twisted.logger import Logger

from tcpcam.common.atomic import isTemporary, removeQuietly
from tcpcam.core.text import plural
from tcpcam.record.layout import isDayName

if TYPE_CHECKING:
    from tcpcam.record.segments import SegmentStore
    from tcpcam.record.storage import JpegTreeStore

log = Logger(namespace="tcpcam.record")

#: A temporary file older than this is a leftover of a crash, not a write in progress.
STALE_TEMP_SECONDS = 3600.0
#: Seconds between age passes.
RETENTION_INTERVAL = 60.0
#: Default free-space floor in bytes (the larger of this and :data:`MIN_FREE_PERCENT` applies).
MIN_FREE_BYTES = 1024 ** 3
#: Default free-space floor in percent of the filesystem.
MIN_FREE_PERCENT = 5.0
#: The floor never asks for more than this share of the filesystem, so a small disk still records.
MAX_FLOOR_SHARE = 0.5
#: Most segments deleted to make room before one batch of frames.
MAX_DELETIONS_PER_BATCH = 10_000


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


def prune(root: str, keepDays: float, maxBytes: int, now: float, keep: Iterable[str] = (),
          needFree: Callable[[], bool] | None = None) -> tuple[int, int]:
    """:func:`pruneTree` without the total: ``(files deleted, bytes freed)``."""
    deleted, freed, _ = pruneTree(root, keepDays, maxBytes, now, keep, needFree)
    return deleted, freed


def pruneTree(root: str, keepDays: float, maxBytes: int, now: float, keep: Iterable[str] = (),
              needFree: Callable[[], bool] | None = None) -> tuple[int, int, int]:
    """Delete recordings older than ``keepDays`` and, oldest first, beyond ``maxBytes``.

    Zero turns either limit off. Paths in ``keep`` (files being written) are
    never deleted; temporary files never count, and stale ones are deleted
    in the day folders visited. Day folders are visited oldest first, and
    the pass stops at the first file that may stay, so memory holds one
    day's file list at a time. Folders emptied here are removed. While
    ``needFree()`` says True, the oldest files go too (the free-space floor).
    Returns ``(files deleted, bytes freed, bytes left)``; the bytes left are
    counted only with a quota (else 0).
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
            if not (tooOld or overQuota or (needFree is not None and needFree())):
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
    return deleted, freed, total


@dataclass
class RetentionPolicy:
    """The limits: 0 turns each off (``keepMotionDays`` 0: motion is kept as long as plain footage)."""

    keepDays: float = 0.0
    keepMotionDays: float = 0.0
    maxBytes: int = 0
    minFreeBytes: int = MIN_FREE_BYTES
    minFreePercent: float = MIN_FREE_PERCENT

    def floor(self, total: int) -> int:
        """Bytes to keep free on a filesystem of ``total`` bytes."""
        wanted = max(self.minFreeBytes, int(total * self.minFreePercent / 100.0))
        return min(wanted, int(total * MAX_FLOOR_SHARE))

    def describe(self) -> str:
        """The retention in words, for the recorder's first log line."""
        parts = []
        if self.keepDays:
            parts.append("%g days" % self.keepDays)
        if self.keepMotionDays:
            parts.append("%g days for motion" % self.keepMotionDays)
        if self.maxBytes:
            parts.append("at most %s" % _bytes(self.maxBytes))
        if self.minFreeBytes or self.minFreePercent:
            parts.append("keeping the larger of %s and %g%% of the disk free" % (
                _bytes(self.minFreeBytes), self.minFreePercent))
        else:
            parts.append("no free-space floor")
        return ", ".join(parts)


def _bytes(count: int) -> str:
    for unit, size in (("TiB", 1024 ** 4), ("GiB", 1024 ** 3), ("MiB", 1024 ** 2), ("KiB", 1024)):
        if count >= size:
            return "%.3g %s" % (count / size, unit)
    return plural(count, "byte")


class Retention:
    """Apply a :class:`RetentionPolicy` to the stores of one recording folder (from one thread).

    ``stores`` maps camera names to their store (all of one format).
    :meth:`makeRoom` runs before each batch of ``incoming`` bytes is written;
    :meth:`maybeAgePass` runs the age pass every :attr:`interval` seconds.
    """

    #: Seconds between age passes.
    interval = RETENTION_INTERVAL

    def __init__(self, root: str, policy: RetentionPolicy, stores: dict[str, SegmentStore | JpegTreeStore],
                 statvfs: Callable[[str], os.statvfs_result] = os.statvfs) -> None:
        self.root = root
        self.policy = policy
        self.stores = stores
        self._statvfs = statvfs
        self.passes = 0
        self.deleted = 0
        self.freed = 0
        self.nothingToDelete = 0
        self._nextPass: float | None = None
        #: Bytes of JPEG-per-file recordings at the last measure plus those written since.
        self._treeBytes: int | None = None
        self._stuck = False

    @property
    def segmented(self) -> bool:
        """True when the stores are segment stores."""
        return any(store.format == "segments" for store in self.stores.values())

    def segmentStores(self) -> list[SegmentStore]:
        """The stores that are segment stores."""
        return [cast("SegmentStore", store) for store in self.stores.values() if store.format == "segments"]

    def totalBytes(self) -> int:
        """Bytes of recordings, as accounted."""
        if self.segmented:
            return sum(store.totalBytes for store in self.segmentStores())
        return self._treeBytes or 0

    def freeBytes(self) -> int | None:
        """Bytes free for us on the recording folder's filesystem, or None if it cannot be told."""
        try:
            info = self._statvfs(self.root)
        except OSError:
            return None
        return info.f_bavail * info.f_frsize

    def floorBytes(self) -> int:
        """Bytes the floor keeps free on the recording folder's filesystem (0: no floor)."""
        if not (self.policy.minFreeBytes or self.policy.minFreePercent):
            return 0
        try:
            info = self._statvfs(self.root)
        except OSError:
            return 0
        return self.policy.floor(info.f_blocks * info.f_frsize)

    def accountWritten(self, count: int) -> None:
        """JPEG-per-file stores: ``count`` more bytes are on disk (segment stores count their own)."""
        if self._treeBytes is not None:
            self._treeBytes += count

    def _needsRoom(self, incoming: int, floor: int) -> bool:
        policy = self.policy
        if policy.maxBytes and self.totalBytes() + incoming > policy.maxBytes:
            return True
        if floor:
            free = self.freeBytes()
            return free is not None and free - incoming < floor
        return False

    def makeRoom(self, incoming: int, now: float) -> int:
        """Delete oldest recordings until ``incoming`` more bytes fit the quota and the floor; returns bytes freed."""
        floor = self.floorBytes()
        if not self._needsRoom(incoming, floor):
            self._stuck = False
            return 0
        if not self.segmented:
            return self._pruneTree(now, incoming, floor)
        freed = 0
        for _ in range(MAX_DELETIONS_PER_BATCH):
            if not self._needsRoom(incoming, floor):
                break
            gone = self._deleteOldestSegment()
            if gone is None:
                if not self._stuck:
                    self._stuck = True
                    self.nothingToDelete += 1
                    log.error("retention: no recording left to delete under {root}, and the quota or the"
                              " free-space floor is still not met", root=self.root)
                break
            freed += gone
        return freed

    def _deleteOldestSegment(self) -> int | None:
        stores = self.segmentStores()
        for motion in (False, True):
            oldest = None
            for store in stores:
                found = store.oldestSegment(motion)
                if found is not None and (oldest is None or found[1] < oldest[1][1]):
                    oldest = (store, found)
            if oldest is not None:
                store, (segmentId, _, _) = oldest
                freed = store.deleteSegment(segmentId)
                self.deleted += 1
                self.freed += freed
                return freed
        # Only segments being written are left: close the biggest so that it can go.
        open_ = [store for store in stores if store.openPaths]
        if open_:
            biggest = max(open_, key=lambda store: store.totalBytes)
            if biggest.rollIfOnly():
                return self._deleteOldestSegment()
        return None

    def _pruneTree(self, now: float, incoming: int, floor: int) -> int:
        keep = [path for store in self.stores.values() for path in store.openPaths]
        quota = max(1, self.policy.maxBytes - incoming) if self.policy.maxBytes else 0

        def needFree() -> bool:
            if not floor:
                return False
            free = self.freeBytes()
            return free is not None and free - incoming < floor

        deleted, freed, left = pruneTree(self.root, self.policy.keepDays, quota, now, keep, needFree)
        self.deleted += deleted
        self.freed += freed
        self._treeBytes = left
        return freed

    def maybeAgePass(self, now: float) -> bool:
        """Run the age pass if it is due (at the first call, then every :attr:`interval`); True if it ran."""
        if self._nextPass is not None and now < self._nextPass:
            return False
        self._nextPass = now + self.interval
        self.agePass(now)
        return True

    def agePass(self, now: float) -> tuple[int, int]:
        """Delete what is older than the age limits (and, for files, measure the total); ``(deleted, freed)``."""
        policy = self.policy
        deleted = freed = 0
        if self.segmented:
            plain = policy.keepDays
            motion = policy.keepMotionDays or policy.keepDays
            for store in self.segmentStores():
                for keepDays, isMotion in ((plain, False), (motion, True)):
                    if not keepDays:
                        continue
                    cutoff = int((now - keepDays * 86400.0) * 1000)
                    for _ in range(MAX_DELETIONS_PER_BATCH):
                        ids = store.segmentsEndingBefore(cutoff, isMotion)
                        if not ids:
                            break
                        for segmentId in ids:
                            freed += store.deleteSegment(segmentId)
                            deleted += 1
        else:
            keep = [path for store in self.stores.values() for path in store.openPaths]
            deleted, freed, left = pruneTree(self.root, policy.keepDays, policy.maxBytes, now, keep)
            self._treeBytes = left if policy.maxBytes else None
        self.passes += 1
        self.deleted += deleted
        self.freed += freed
        if deleted:
            log.info("retention: deleted {deleted} old recordings ({mb:.1f} MB) under {root}",
                     deleted=deleted, mb=freed / 1e6, root=self.root)
        return deleted, freed


def _entries(path: str) -> list[os.DirEntry[str]]:
    try:
        with os.scandir(path) as entries:
            return list(entries)
    except OSError:
        return []
