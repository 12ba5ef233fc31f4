"""The segment store on real files and a real SQLite index: rolling, cut-backs, recovery, retention."""

import os
import sqlite3
import time

import pytest
from record_support import indexedFrames, jpegFrame, segmentFiles

from tcpcam.record.index import IndexBusy, connectReader
from tcpcam.record.retention import Retention, RetentionPolicy
from tcpcam.record.segments import SegmentStore

WHEN = time.mktime((2024, 5, 6, 7, 8, 9, 0, 0, -1)) + 0.123


def crash(store):
    """What a SIGKILL leaves of a store: nothing closed, nothing more committed."""
    if store._open is not None:
        store._open.handle.close()
    store._db.close()
    store._lock.release()


def rows(folder, query, args=()):
    db = sqlite3.connect(os.path.join(folder, "index.sqlite3"))
    try:
        return db.execute(query, args).fetchall()
    finally:
        db.close()


def test_frames_go_to_segments_that_roll_on_size_time_gap_and_day(tmp_path):
    store = SegmentStore(str(tmp_path), maxSegmentSeconds=10, maxSegmentBytes=10_000)
    store.open()
    times = [WHEN + i * 0.1 for i in range(5)]          # 5 x 3000 bytes: rolls after 3 frames (size)
    times += [WHEN + 0.5 + i for i in range(1, 4)]      # 1 s apart: within the gap
    times += [WHEN + 30]                                # more than the 5 s gap
    times += [WHEN + 30.1 + i * 4 for i in range(4)]    # the 10 s duration limit
    midnight = time.mktime((2024, 5, 7, 0, 0, 0, 0, 0, -1))
    times += [midnight - 0.2, midnight + 0.2]           # the day changes
    frames = [jpegFrame(i) for i in range(len(times))]
    for frame, when in zip(frames, times, strict=True):
        store.write(frame, when)
    store.close()
    indexed = indexedFrames(str(tmp_path))
    assert [frame for _, frame in indexed] == frames
    assert [t for t, _ in indexed] == [int(round(t * 1000)) for t in times]
    segments = rows(str(tmp_path), "SELECT path, frames, closed FROM segments ORDER BY start_ms")
    assert [count for _, count, _ in segments] == [3, 3, 2, 3, 2, 1, 1]
    assert all(closed == 1 for _, _, closed in segments)
    assert segments[0][0] == "2024-05-06/07-08-09.123.mjpeg"
    assert segments[-1][0].startswith("2024-05-07/00-00-00.")
    assert store.totalBytes == sum(len(frame) for frame in frames)


def test_one_writer_per_index(tmp_path):
    store = SegmentStore(str(tmp_path))
    store.open()
    with pytest.raises(IndexBusy, match="another process"):
        SegmentStore(str(tmp_path)).open()
    store.close()
    again = SegmentStore(str(tmp_path))
    again.open()
    again.close()


def test_rows_come_only_with_commit_and_readers_see_them(tmp_path):
    store = SegmentStore(str(tmp_path))
    store.open()
    store.write(jpegFrame(1), WHEN)
    reader = connectReader(str(tmp_path))
    assert reader.execute("SELECT COUNT(*) FROM frames").fetchone()[0] == 0
    assert store.commit() == 1 and store.pendingFrames == 0
    assert reader.execute("SELECT COUNT(*) FROM frames").fetchone()[0] == 1
    with pytest.raises(sqlite3.OperationalError):
        reader.execute("DELETE FROM frames")
    reader.close()
    store.close()


class HalfThenFull:
    """A segment file on a disk that fills up halfway through the next write."""

    def __init__(self, handle):
        self.handle = handle

    def __getattr__(self, name):
        return getattr(self.handle, name)

    def write(self, data):
        if len(data) > 1:
            return self.handle.write(data[:len(data) // 2])
        raise OSError(28, "No space left on device")


def test_a_write_cut_short_by_a_full_disk_is_cut_back(tmp_path):
    store = SegmentStore(str(tmp_path))
    store.open()
    store.write(jpegFrame(1), WHEN)
    store._open.handle = HalfThenFull(store._open.handle)
    with pytest.raises(OSError):
        store.write(jpegFrame(2), WHEN + 0.1)
    store._open.handle = store._open.handle.handle
    store.write(jpegFrame(3), WHEN + 0.2)
    store.close()
    assert [frame for _, frame in indexedFrames(str(tmp_path))] == [jpegFrame(1), jpegFrame(3)]


def test_recovery_cuts_a_half_frame_and_indexes_whole_frames_past_the_index(tmp_path):
    store = SegmentStore(str(tmp_path))
    store.open()
    for i in range(3):
        store.write(jpegFrame(i), WHEN + i * 0.1)
    store.commit()
    store.write(jpegFrame(3), WHEN + 0.3)        # written, never committed
    path = store.openPaths[0]
    crash(store)
    with open(path, "ab") as handle:             # the kill came in the middle of the next frame
        handle.write(jpegFrame(4)[:1000])
    os.utime(path, (WHEN + 1, WHEN + 1))
    again = SegmentStore(str(tmp_path))
    report = again.open()
    assert report.frames_found == 1 and report.bytes_cut == 1000 and report.rows_dropped == 0
    again.close()
    indexed = indexedFrames(str(tmp_path))
    assert [frame for _, frame in indexed] == [jpegFrame(i) for i in range(4)]
    # The found frame's time lies after the last indexed one, up to the file's time.
    assert int(round((WHEN + 0.2) * 1000)) < indexed[-1][0] <= int((WHEN + 1) * 1000)


def test_recovery_drops_rows_past_the_file_and_of_missing_files(tmp_path):
    store = SegmentStore(str(tmp_path), maxSegmentBytes=7000)
    store.open()
    for i in range(4):
        store.write(jpegFrame(i), WHEN + i * 0.1)
    store.commit()
    first, second = sorted(rows(str(tmp_path), "SELECT path FROM segments ORDER BY start_ms"))
    path = store.openPaths[0]
    crash(store)
    os.truncate(path, 4000)                      # the disk lost the tail (or a person cut it)
    os.unlink(tmp_path / first[0])               # retention deleted the file, then the power went
    report = SegmentStore(str(tmp_path)).open()
    assert report.rows_dropped == 3 and report.bytes_cut == 1000
    assert [frame for _, frame in indexedFrames(str(tmp_path))] == [jpegFrame(2)]


def test_recovery_indexes_an_unindexed_segment_and_removes_leftovers(tmp_path):
    day = tmp_path / "2024-05-06"
    day.mkdir()
    (day / "07-08-09.123.mjpeg").write_bytes(jpegFrame(1) + jpegFrame(2) + jpegFrame(3)[:50])
    os.utime(day / "07-08-09.123.mjpeg", (WHEN + 2, WHEN + 2))
    (day / "07-08-10.000.mjpeg").write_bytes(b"not a picture at all")
    (day / "07-08-11.000.mjpeg").write_bytes(b"")
    (day / ".x.jpg.tmp").write_bytes(b"half")
    store = SegmentStore(str(tmp_path))
    report = store.open()
    store.close()
    assert report.orphans_indexed == 1 and report.frames_found == 2 and report.files_removed == 3
    indexed = indexedFrames(str(tmp_path))
    assert [frame for _, frame in indexed] == [jpegFrame(1), jpegFrame(2)]
    assert indexed[0][0] == int(round(WHEN * 1000))
    assert [os.path.basename(p) for p in segmentFiles(tmp_path)] == ["07-08-09.123.mjpeg"]


def _store_with_segments(folder, count, motion=()):
    store = SegmentStore(folder, maxSegmentBytes=3500)
    store.open()
    for i in range(count):
        store.write(jpegFrame(i), WHEN + i)
    store.closeSegment()
    for index in motion:
        when = int((WHEN + index) * 1000)
        store.markMotion(when, when)
    return store


class FakeDisk:
    """statvfs of a disk of ``size`` bytes with ``free`` free."""

    def __init__(self, size, free):
        self.size, self.free = size, free

    def __call__(self, path):
        return os.statvfs_result((4096, 1, self.size, self.free, self.free, 0, 0, 0, 0, 255))


def test_quota_deletes_oldest_plain_footage_first_then_motion(tmp_path):
    a = _store_with_segments(str(tmp_path / "a"), 4, motion=[0])
    b = _store_with_segments(str(tmp_path / "b"), 4)
    retention = Retention(str(tmp_path), RetentionPolicy(maxBytes=6 * 3000, minFreeBytes=0, minFreePercent=0),
                          {"a": a, "b": b})
    assert retention.totalBytes() == 8 * 3000
    assert retention.makeRoom(3000, WHEN) == 3 * 3000
    assert retention.totalBytes() == 5 * 3000
    left = {name: [frame for _, frame in indexedFrames(str(tmp_path / name))] for name in "ab"}
    # a's first segment holds motion: it stayed, and the oldest plain ones went.
    assert left["a"] == [jpegFrame(0), jpegFrame(2), jpegFrame(3)]
    assert left["b"] == [jpegFrame(2), jpegFrame(3)]
    for store in (a, b):
        store.close()


def test_floor_deletes_until_the_disk_has_room_and_age_keeps_motion_longer(tmp_path):
    store = _store_with_segments(str(tmp_path / "a"), 4, motion=[1])
    disk = FakeDisk(size=100_000, free=10_000)
    policy = RetentionPolicy(keepDays=1, keepMotionDays=3, minFreeBytes=12_000, minFreePercent=0)
    retention = Retention(str(tmp_path), policy, {"a": store}, statvfs=disk)
    assert retention.floorBytes() == 12_000
    original = store.deleteSegment

    def deleteAndFree(segmentId):
        freed = original(segmentId)
        disk.free += freed
        return freed

    store.deleteSegment = deleteAndFree
    assert retention.makeRoom(1000, WHEN) == 3000        # one segment frees enough
    assert len(indexedFrames(str(tmp_path / "a"))) == 3
    # Two days later: plain footage is past its day, motion is kept three.
    assert retention.agePass(WHEN + 2 * 86400) == (2, 6000)
    assert [frame for _, frame in indexedFrames(str(tmp_path / "a"))] == [jpegFrame(1)]
    assert retention.agePass(WHEN + 4 * 86400) == (1, 3000)
    store.close()


def test_the_floor_never_asks_for_more_than_half_a_small_disk():
    policy = RetentionPolicy()
    assert policy.floor(1000 * 1024 ** 3) == 50 * 1024 ** 3        # 5 % of a big disk
    assert policy.floor(10 * 1024 ** 3) == 1024 ** 3               # 1 GiB of a small one
    assert policy.floor(1024 ** 3) == 1024 ** 3 // 2               # never more than half
    assert "5% of the disk" in policy.describe()
