"""Storage, the JPEG check, the event log and retention, on real files."""

import json
import os
import time

import pytest
from record_support import filesUnder, jpegFrame

from tcpcam.common.jpeg import jpegProblem
from tcpcam.record.eventlog import EventLog, readEvents
from tcpcam.record.retention import STALE_TEMP_SECONDS, prune
from tcpcam.record.storage import JpegTreeStore, makeStore

WHEN = time.mktime((2024, 5, 6, 7, 8, 9, 0, 0, -1)) + 0.123


def test_jpeg_check():
    assert jpegProblem(jpegFrame(1)) is None
    assert jpegProblem(memoryview(jpegFrame(2))) is None
    assert jpegProblem(jpegFrame(3) + b"\x00" * 10) is None
    assert "start marker" in jpegProblem(b"Hello World")
    assert "end marker" in jpegProblem(jpegFrame(4)[:-1])
    assert "end marker" in jpegProblem(jpegFrame(5)[:100])
    assert "too short" in jpegProblem(b"\xff\xd8")
    assert "end marker" in jpegProblem(b"\xff\xd8\x00\x00")


def test_jpeg_tree_open_removes_leftover_temporary_files_in_every_day(tmp_path):
    for day in ("2020-01-01", "2024-05-06"):
        (tmp_path / day).mkdir()
        (tmp_path / day / ".07-08-09.123_000001.jpg.tmp").write_bytes(b"\xff\xd8half")
        (tmp_path / day / "07-08-09.123_000000.jpg").write_bytes(jpegFrame(1))
    report = JpegTreeStore(str(tmp_path)).open()
    assert report.files_removed == 2 and report.repaired
    assert [os.path.basename(p) for p in filesUnder(tmp_path)] == ["07-08-09.123_000000.jpg"] * 2


def test_jpeg_tree_names_and_whole_files(tmp_path):
    store = makeStore("jpg", str(tmp_path))
    assert isinstance(store, JpegTreeStore)
    path = store.write(jpegFrame(1), WHEN, 42)
    assert path == str(tmp_path / "2024-05-06" / "07-08-09.123_000042.jpg")
    assert open(path, "rb").read() == jpegFrame(1)
    assert filesUnder(tmp_path) == [path]


def test_jpeg_tree_disk_full_leaves_nothing(tmp_path):
    store = JpegTreeStore(str(tmp_path))
    store.write(jpegFrame(1), WHEN, 1)
    # The next temporary file is the full disk.
    os.symlink("/dev/full", tmp_path / "2024-05-06" / ".07-08-09.123_000002.jpg.tmp")
    with pytest.raises(OSError):
        store.write(jpegFrame(2), WHEN, 2)
    assert [os.path.basename(p) for p in filesUnder(tmp_path)] == ["07-08-09.123_000001.jpg"]
    # The folder comes back if something deletes it.
    os.unlink(filesUnder(tmp_path)[0])
    os.rmdir(tmp_path / "2024-05-06")
    assert os.path.exists(store.write(jpegFrame(3), WHEN, 3))


def test_event_log_lines(tmp_path):
    log = EventLog(str(tmp_path / "cam" / "events.jsonl"), clock=lambda: WHEN)
    log.append("connect", endpoint="tcp:host=x:port=1")
    log.append("disconnect", reason="the connection closed", frames=3)
    lines = open(tmp_path / "cam" / "events.jsonl").read().splitlines()
    assert [json.loads(line)["event"] for line in lines] == ["connect", "disconnect"]
    events = readEvents(str(tmp_path / "cam" / "events.jsonl"))
    assert events[1]["reason"] == "the connection closed" and events[1]["frames"] == 3
    assert events[0]["ts"] == round(WHEN, 3)
    assert events[0]["time"].startswith("2024-05-06T07:08:09.123")


def test_event_log_is_rotated_at_its_size_limit(tmp_path):
    path = str(tmp_path / "cam" / "events.jsonl")
    log = EventLog(path, clock=lambda: WHEN, maxBytes=500)
    for number in range(40):
        log.append("bad_frame", reason="no JPEG end marker", number=number)
    assert sorted(os.listdir(tmp_path / "cam")) == ["events.jsonl", "events.jsonl.1"]
    for name in ("events.jsonl", "events.jsonl.1"):
        assert os.path.getsize(tmp_path / "cam" / name) < 500 + 200
    current, previous = readEvents(path), readEvents(path + ".1")
    numbers = [event["number"] for event in previous + current]
    assert numbers == list(range(numbers[0], 40))


def _make(root, camera, day, name, size, mtime):
    folder = os.path.join(root, camera, day)
    os.makedirs(folder, exist_ok=True)
    path = os.path.join(folder, name)
    with open(path, "wb") as handle:
        handle.write(b"x" * size)
    os.utime(path, (mtime, mtime))
    return path


def test_retention_by_age_and_quota_oldest_first(tmp_path):
    root = str(tmp_path)
    now = 1_000_000_000.0
    day = 86400.0
    old = _make(root, "a", "2001-09-01", "old.jpg", 100, now - 10 * day)
    older = _make(root, "b", "2001-08-30", "older.jpg", 100, now - 12 * day)
    mid1 = _make(root, "a", "2001-09-07", "mid1.jpg", 100, now - 2 * day)
    mid2 = _make(root, "b", "2001-09-07", "mid2.jpg", 100, now - 1.5 * day)
    new = _make(root, "a", "2001-09-08", "new.jpg", 100, now - 60)
    events = os.path.join(root, "a", "events.jsonl")
    open(events, "w").write("{}\n")
    os.utime(events, (now - 100 * day, now - 100 * day))
    # Age alone: the two older than a week go, with their emptied folders.
    assert prune(root, 7, 0, now) == (2, 200)
    assert not os.path.exists(old) and not os.path.exists(older)
    assert not os.path.exists(os.path.dirname(old))
    assert os.path.exists(events)
    # Quota: oldest first until 250 bytes or less remain.
    assert prune(root, 0, 250, now) == (1, 100)
    assert not os.path.exists(mid1) and os.path.exists(mid2) and os.path.exists(new)
    # Both: age removes nothing more, the quota removes mid2; kept files are skipped.
    assert prune(root, 7, 100, now, keep=[mid2]) == (1, 100)
    assert os.path.exists(mid2) and not os.path.exists(new)
    assert prune(root, 0, 0, now) == (0, 0)


def test_retention_removes_only_stale_temporary_files(tmp_path):
    root = str(tmp_path)
    now = time.time()
    stale = _make(root, "a", "2001-09-01", ".x.jpg.tmp", 10, now - STALE_TEMP_SECONDS - 5)
    fresh = _make(root, "a", "2001-09-01", ".y.jpg.tmp", 10, now)
    stray = _make(root, "a", "notaday", "keep.jpg", 10, now - 1e6)
    assert prune(root, 1, 1, now) == (0, 0)
    assert not os.path.exists(stale) and os.path.exists(fresh) and os.path.exists(stray)


def test_event_log_line_cut_short_by_a_full_disk_is_removed(tmp_path, monkeypatch):
    from tcpcam.record import eventlog

    path = str(tmp_path / "cam" / "events.jsonl")
    log = EventLog(path, clock=lambda: WHEN)
    log.append("connect", endpoint="tcp:host=x:port=1")

    class HalfThenFull:
        """A file on a disk that fills up halfway through the next write."""

        def __init__(self, handle):
            self.handle = handle

        def __getattr__(self, name):
            return getattr(self.handle, name)

        def __enter__(self):
            return self

        def __exit__(self, *exc):
            self.handle.close()

        def write(self, data):
            if len(data) > 1:
                return self.handle.write(data[:len(data) // 2])
            raise OSError(28, "No space left on device")

    realOpen = open
    monkeypatch.setattr(eventlog, "open", lambda *a, **k: HalfThenFull(realOpen(*a, **k)), raising=False)
    with pytest.raises(OSError):
        log.append("bad_frame", reason="no JPEG end marker: the picture is cut short")
    monkeypatch.undo()
    log.append("disconnect", reason="the connection closed", frames=3)
    assert [event["event"] for event in readEvents(path)] == ["connect", "disconnect"]
