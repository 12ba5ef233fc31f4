"""The spool: finished segments (and ended motion events) waiting for the object store, in order, within a bound.

::

    SPOOL/000000000042.json    an entry: what to upload where (a segment's index rows, or an event)
    SPOOL/000000000042.mjpeg   the segment's bytes: a hard link to the recorder's own file

An entry exists once its ``.json`` does (written atomically after the
link), so a crash leaves whole entries or nothing; leftovers are removed by
:meth:`Spool.open`. Entries are uploaded oldest first. The spool holds at most
:attr:`Spool.maxBytes` bytes of segments: a segment that does not fit is
*not* dropped, it stays in the recorder's own store, and the camera is
marked behind; :meth:`catchUp` takes it (and every later one, in order) once
there is room again. Each camera folder remembers in ``.fleet-spooled`` the
last segment it handed over, so a restart neither skips nor repeats one (a
repeat after a crash is harmless: the key is the same and uploads are
write-once).

The disk writer's thread adds entries; the uploader's thread takes them.
"""

from __future__ import annotations

import base64
import json
import os
import shutil
import threading
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from tcpcam.common.atomic import removeQuietly, writeAtomically
from tcpcam.fleet.keys import eventKey, segmentKey

if TYPE_CHECKING:
    from tcpcam.record.segments import SegmentStore

#: The name of each camera folder's handover mark.
MARK_NAME = ".fleet-spooled"
#: Entries at most (each is a small file; a day of one camera is 1440 segments).
MAX_ENTRIES = 100_000


@dataclass
class SpoolEntry:
    """One upload waiting."""

    seq: int
    data: dict[str, Any]
    size: int

    @property
    def kind(self) -> str:
        """``segment`` or ``event``."""
        return str(self.data["kind"])


class Spool:
    """The spool folder (see the module docstring)."""

    #: Bytes of segments held at most.
    maxBytes = 2 * 1024 ** 3
    #: Entries held at most.
    maxEntries = MAX_ENTRIES

    def __init__(self, directory: str, prefix: str, recorder: str, maxBytes: int | None = None) -> None:
        self.directory = directory
        self.prefix = prefix
        self.recorder = recorder
        if maxBytes is not None:
            self.maxBytes = maxBytes
        self._lock = threading.Condition()
        self._entries: list[SpoolEntry] = []
        self._nextSeq = 1
        self.bytes = 0
        self.peakBytes = 0
        #: Segments that did not fit (they wait in the recorder's store).
        self.refused = 0
        #: Cameras with segments waiting for room, by name.
        self.behind: set[str] = set()
        self._inFlight: set[str] = set()

    # -- the folder ---------------------------------------------------------

    def open(self) -> int:
        """Read the entries a previous run left, remove half-made ones; returns how many are waiting."""
        os.makedirs(self.directory, exist_ok=True)
        names = sorted(os.listdir(self.directory))
        entries = []
        for name in names:
            stem, _, suffix = name.partition(".")
            path = os.path.join(self.directory, name)
            if suffix == "json" and stem.isdigit():
                try:
                    with open(path, "rb") as handle:
                        data = json.load(handle)
                    size = os.path.getsize(self._bytesPath(int(stem))) if data.get("kind") == "segment" else 0
                except (OSError, ValueError):
                    removeQuietly(path)
                    removeQuietly(self._bytesPath(int(stem)))
                    continue
                entries.append(SpoolEntry(int(stem), data, size))
        known = {entry.seq for entry in entries}
        for name in names:
            stem, _, suffix = name.partition(".")
            if suffix != "json" and (not stem.isdigit() or int(stem) not in known):
                removeQuietly(os.path.join(self.directory, name))  # a link without its entry, or a temporary file
        with self._lock:
            self._entries = sorted(entries, key=lambda entry: entry.seq)
            self.bytes = sum(entry.size for entry in self._entries)
            self._nextSeq = max(known, default=0) + 1
        return len(self._entries)

    def _bytesPath(self, seq: int) -> str:
        return os.path.join(self.directory, "%012d.mjpeg" % seq)

    def _entryPath(self, seq: int) -> str:
        return os.path.join(self.directory, "%012d.json" % seq)

    def bytesPath(self, entry: SpoolEntry) -> str:
        """Where an entry's segment bytes are."""
        return self._bytesPath(entry.seq)

    # -- adding (the disk writer's thread) ------------------------------------

    def catchUp(self, camera: str, store: SegmentStore) -> int:
        """Hand over every closed segment of ``camera`` after its mark, in order, while they fit; returns how many."""
        mark = _readMark(store.directory)
        rows = store.db.execute(
            "SELECT id, path, start_ms, end_ms, frames, bytes, motion FROM segments WHERE closed = 1 AND id > ?"
            " ORDER BY id", (mark,)).fetchall()
        added = 0
        for segmentId, relative, startMs, endMs, _, size, motion in rows:
            if not self._fits(size):
                with self._lock:
                    if camera not in self.behind:
                        self.refused += 1
                    self.behind.add(camera)
                return added
            index = store.db.execute(
                "SELECT time_ms, offset, length, seq, capture_ms FROM frames WHERE segment = ? ORDER BY offset",
                (segmentId,)).fetchall()
            data = {"kind": "segment", "camera": camera, "recorder": self.recorder, "segment_id": segmentId,
                    "start_ms": startMs, "end_ms": endMs, "frames": [list(row) for row in index], "bytes": size,
                    "motion": motion,
                    "key": segmentKey(self.prefix, camera, startMs, endMs, self.recorder, segmentId),
                    "index_key": segmentKey(self.prefix, camera, startMs, endMs, self.recorder, segmentId, "json")}
            self._add(data, os.path.join(store.directory, relative), size)
            _writeMark(store.directory, segmentId)
            added += 1
        with self._lock:
            self.behind.discard(camera)
        return added

    def addEvent(self, camera: str, event: dict[str, Any], thumbnail: bytes | None) -> bool:
        """Hand over an ended motion event; False if the spool has no room (the event stays in the local index)."""
        if not self._fits(0):
            with self._lock:
                self.refused += 1
            return False
        data = {"kind": "event", "camera": camera, "recorder": self.recorder, "event": event,
                "thumbnail": base64.b64encode(thumbnail).decode("ascii") if thumbnail else None,
                "key": eventKey(self.prefix, camera, int(event["start_ms"]), self.recorder, int(event["id"]))}
        self._add(data, None, 0)
        return True

    def _fits(self, size: int) -> bool:
        with self._lock:
            return len(self._entries) < self.maxEntries and self.bytes + size <= self.maxBytes

    def _add(self, data: dict[str, Any], source: str | None, size: int) -> None:
        with self._lock:
            seq = self._nextSeq
            self._nextSeq += 1
        if source is not None:
            target = self._bytesPath(seq)
            try:
                os.link(source, target)
            except OSError:
                shutil.copyfile(source, target)  # another file system: a copy
        data["seq"] = seq
        writeAtomically(self._entryPath(seq), json.dumps(data).encode(), fixedName=True, makeFolder=False,
                        sync=True)
        with self._lock:
            self._entries.append(SpoolEntry(seq, data, size))
            self.bytes += size
            self.peakBytes = max(self.peakBytes, self.bytes)
            self._lock.notify_all()

    # -- taking (the uploader's thread) ------------------------------------

    def oldest(self, timeout: float) -> SpoolEntry | None:
        """The oldest entry, waiting up to ``timeout`` seconds for one."""
        with self._lock:
            if not self._entries:
                self._lock.wait(timeout)
            return self._entries[0] if self._entries else None

    def take(self, timeout: float) -> SpoolEntry | None:
        """The oldest entry of a camera none of whose entries is being uploaded (waiting up to ``timeout``).

        The camera counts as being uploaded until :meth:`remove` or
        :meth:`putBack`, so each camera's entries go up one at a time, in order.
        """
        with self._lock:
            entry = self._firstFree()
            if entry is None:
                self._lock.wait(timeout)
                entry = self._firstFree()
            if entry is not None:
                self._inFlight.add(entry.data["camera"])
            return entry

    def _firstFree(self) -> SpoolEntry | None:
        for entry in self._entries:
            if entry.data["camera"] not in self._inFlight:
                return entry
        return None

    def putBack(self, entry: SpoolEntry) -> None:
        """An upload failed: the entry waits, first of its camera, for the next try."""
        with self._lock:
            self._inFlight.discard(entry.data["camera"])
            self._lock.notify_all()

    def wake(self) -> None:
        """Wake a thread waiting in :meth:`oldest`."""
        with self._lock:
            self._lock.notify_all()

    def remove(self, entry: SpoolEntry) -> None:
        """Forget an uploaded entry: its ``.json`` first (an entry without it is gone), then its bytes."""
        removeQuietly(self._entryPath(entry.seq))
        removeQuietly(self._bytesPath(entry.seq))
        with self._lock:
            self._entries = [other for other in self._entries if other.seq != entry.seq]
            self.bytes -= entry.size
            self._inFlight.discard(entry.data["camera"])
            self._lock.notify_all()

    @property
    def waiting(self) -> int:
        """Entries waiting."""
        return len(self._entries)


def _readMark(directory: str) -> int:
    try:
        with open(os.path.join(directory, MARK_NAME), "rb") as handle:
            return int(handle.read(32).strip() or b"0")
    except (OSError, ValueError):
        return 0


def _writeMark(directory: str, segmentId: int) -> None:
    writeAtomically(os.path.join(directory, MARK_NAME), b"%d\n" % segmentId, fixedName=True, makeFolder=False)
