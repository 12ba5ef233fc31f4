"""The read API over a real segment store, ``tcpcam convert`` and the export's arguments."""

import os
import threading
import time

import pytest
from record_support import indexedFrames, jpegFrame, realJpeg, segmentFiles

from tcpcam.cli import convert as convert_command
from tcpcam.cli import export as export_command
from tcpcam.cli.main import build_parser
from tcpcam.record.convert import convertCamera
from tcpcam.record.footage import Footage
from tcpcam.record.index import IndexBusy
from tcpcam.record.segments import SegmentStore

T0 = time.mktime((2024, 5, 6, 10, 0, 0, 0, 0, -1))


def record(folder, times, frames=None, events=()):
    """A segment store holding one frame per time (``jpegFrame(i)`` unless given) and the events."""
    store = SegmentStore(str(folder), maxSegmentSeconds=10)
    store.open()
    frames = frames or [jpegFrame(i, 500) for i in range(len(times))]
    for frame, when in zip(frames, times, strict=True):
        store.write(frame, when)
    ids = [store.saveEvent(dict(event)) for event in events]
    store.close()
    return frames, ids


@pytest.fixture
def footage(tmp_path):
    times = [T0 + i * 0.5 for i in range(40)] + [T0 + 100 + i for i in range(10)] + [T0 + 86400]
    event = {"start_ms": int((T0 + 5) * 1000), "end_ms": int((T0 + 8) * 1000), "peak_ms": int((T0 + 6) * 1000),
             "peak_score": 0.25, "x0": 1, "y0": 2, "x1": 30, "y1": 40, "pre_roll_ms": 1000, "post_roll_ms": 2000,
             "thumbnail": realJpeg(size=(32, 24))}
    frames, ids = record(tmp_path / "door", times, events=[event])
    record(tmp_path / "yard", [T0])
    (tmp_path / "notacamera").mkdir()
    reader = Footage(str(tmp_path))
    yield reader, times, frames, ids[0]
    reader.close()


def test_cameras_days_spans_and_counts(footage):
    reader, times, frames, _ = footage
    assert reader.cameras() == ["door", "yard"]
    assert reader.days("door") == ["2024-05-06", "2024-05-07"]
    spans = reader.spans("door", T0 - 10, T0 + 200)
    assert spans == [(T0, T0 + 19.5), (T0 + 100, T0 + 109)]
    assert reader.count("door", T0, T0 + 20) == 40 and reader.count("door", T0, T0 + 86401) == 51
    for bad in ("nosuch", "../door", "notacamera", ""):
        with pytest.raises(ValueError, match="no such camera"):
            reader.days(bad)


def test_frames_frame_at_latest_and_every(footage):
    reader, times, frames, _ = footage
    got = list(reader.frames("door", T0 + 1, T0 + 3))
    assert got == [(times[i], frames[i]) for i in range(2, 6)]
    assert reader.frameAt("door", T0 + 1.7) == (times[3], frames[3])        # the one shown then
    assert reader.frameAt("door", T0 - 50) == (times[0], frames[0])         # before all: the first
    assert reader.frameAt("door", T0 + 50) == (times[39], frames[39])       # in a gap: the last before
    assert reader.latestFrames("door", 2) == [(times[49], frames[49]), (times[50], frames[50])]
    sparse = [when for when, _ in reader.frames("door", T0, T0 + 200, every=10)]
    assert sparse == [T0, T0 + 10, T0 + 100]


def test_frame_after_before_and_batches(footage):
    reader, times, frames, _ = footage
    assert reader.frameAfter("door", times[3]) == (times[4], frames[4])      # stepping forward
    assert reader.frameBefore("door", times[3]) == (times[2], frames[2])     # and back
    assert reader.frameAfter("door", T0 + 50) == (times[40], frames[40])     # across a gap
    assert reader.frameBefore("door", times[0]) is None and reader.frameAfter("door", times[-1]) is None
    assert reader.batch("door", T0, T0 + 200, 3, 1 << 20) == [(times[i], frames[i]) for i in range(3)]
    assert reader.batch("door", T0, T0 + 200, 10, 1000) == [(times[i], frames[i]) for i in range(2)]  # 2 x 500 bytes
    assert [when for when, _ in reader.batch("door", T0, T0 + 200, 10, 1 << 20, every=5)] == [
        T0, T0 + 5, T0 + 10, T0 + 15, T0 + 100, T0 + 105]
    assert reader.batch("door", T0 + 200, T0 + 300, 10, 1 << 20) == []


def test_frames_page_through_many_rows_and_skip_deleted_segments(tmp_path, monkeypatch):
    from tcpcam.record import footage as footage_module

    monkeypatch.setattr(footage_module, "PAGE_ROWS", 7)
    times = [T0 + i * 0.1 for i in range(200)]
    frames, _ = record(tmp_path / "cam", times)
    reader = Footage(str(tmp_path))
    assert [frame for _, frame in reader.frames("cam", T0, T0 + 100)] == frames
    os.unlink(sorted(segmentFiles(tmp_path / "cam"))[0])               # retention took the first segment
    left = list(reader.frames("cam", T0, T0 + 100))
    assert 0 < len(left) < 200 and left == [(times[i], frames[i]) for i in range(200 - len(left), 200)]
    reader.close()


def test_events_and_thumbnails(footage):
    reader, _, _, eventId = footage
    [event] = reader.events("door", T0, T0 + 6)
    assert (event.id, event.start, event.end, event.peakScore, event.region) == (eventId, T0 + 5, T0 + 8, 0.25,
                                                                                 (1, 2, 30, 40))
    assert (event.clipStart, event.clipEnd) == (T0 + 4, T0 + 10)
    assert reader.events("door", T0 + 9, T0 + 20) == []
    assert reader.event("door", eventId) == event and reader.event("door", 999) is None
    assert reader.thumbnail("door", eventId) == realJpeg(size=(32, 24))
    assert event.asDict()["region"] == [1, 2, 30, 40]


def test_readers_in_threads_beside_the_writer(tmp_path):
    store = SegmentStore(str(tmp_path / "cam"))
    store.open()
    store.write(jpegFrame(0, 500), T0)
    store.commit()
    reader = Footage(str(tmp_path))
    seen, errors = [], []

    def read():
        try:
            for _ in range(50):
                seen.append(reader.count("cam", T0, T0 + 1000))
        except Exception as error:  # noqa: BLE001 - the test reports any error
            errors.append(error)

    threads = [threading.Thread(target=read) for _ in range(4)]
    for thread in threads:
        thread.start()
    for i in range(1, 100):
        store.write(jpegFrame(i, 500), T0 + i)
        store.commit()
    for thread in threads:
        thread.join(30)
    store.close()
    assert errors == [] and len(seen) == 200 and all(1 <= count <= 100 for count in seen)
    assert reader.count("cam", T0, T0 + 1000) == 100
    reader.close()


def _jpegTree(folder, count):
    day = folder / "2024-05-06"
    day.mkdir(parents=True)
    frames = []
    for i in range(count):
        frames.append(jpegFrame(i, 800))
        (day / ("10-00-%02d.%03d_%06d.jpg" % (i // 10, (i % 10) * 100, i))).write_bytes(frames[-1])
    return frames


def test_convert_a_jpeg_tree_and_hour_files_resumably(tmp_path, monkeypatch):
    from tcpcam.record import convert

    frames = _jpegTree(tmp_path / "cam", 30)
    hour = [jpegFrame(100 + i, 800) for i in range(5)]
    (tmp_path / "cam" / "2024-05-06" / "11.mjpeg").write_bytes(hour[0] + b"junk" + b"".join(hour[1:]) + b"\xff\xd8cut")
    os.utime(tmp_path / "cam" / "2024-05-06" / "11.mjpeg", (T0 + 3600 + 50, T0 + 3600 + 50))
    (tmp_path / "cam" / "2024-05-06" / "10-00-09.000_000999.jpg").write_bytes(b"not a picture")
    # Interrupted after the first commit (every 10 frames here).
    monkeypatch.setattr(convert, "COMMIT_FRAMES", 10)
    store = SegmentStore(str(tmp_path / "cam"))
    original = store.commit
    calls = []

    def commitThenDie(*args, **kwargs):
        result = original(*args, **kwargs)
        calls.append(1)
        if len(calls) == 1:
            store.write(jpegFrame(999, 800), T0 + 500)       # written, never committed
            raise KeyboardInterrupt
        return result

    store.commit = commitThenDie
    with pytest.raises(KeyboardInterrupt):
        convertCamera(str(tmp_path / "cam"), store=store)
    assert len(indexedFrames(str(tmp_path / "cam"), strict=False)) == 10
    report = convertCamera(str(tmp_path / "cam"), delete=True)
    assert (report.alreadyDone, report.files, report.skipped) == (10, 21, 1)
    indexed = indexedFrames(str(tmp_path / "cam"))
    assert [frame for _, frame in indexed] == frames + hour
    assert indexed[-5][0] == int((T0 + 3600) * 1000) and indexed[-1][0] < int((T0 + 3650) * 1000)
    left = sorted(os.listdir(tmp_path / "cam" / "2024-05-06"))
    assert [name for name in left if name.endswith(".jpg")] == ["10-00-09.000_000999.jpg"]
    assert "11.mjpeg" not in left
    # Once more: nothing new, nothing twice.
    assert convertCamera(str(tmp_path / "cam")).files == 0
    assert len(indexedFrames(str(tmp_path / "cam"))) == 35


def test_convert_refuses_a_camera_being_recorded(tmp_path, capsys):
    _jpegTree(tmp_path / "cam", 3)
    recording = SegmentStore(str(tmp_path / "cam"))
    recording.open()
    try:
        with pytest.raises(IndexBusy):
            convertCamera(str(tmp_path / "cam"))
        args = build_parser().parse_args(["convert", "-r", str(tmp_path)])
        assert convert_command.run(args) == 1
        assert "being written by another process" in capsys.readouterr().err
    finally:
        recording.close()
    args = build_parser().parse_args(["convert", "-r", str(tmp_path), "cam"])
    assert convert_command.run(args) == 0
    assert "cam: 3 files converted (3 frames)" in capsys.readouterr().out
    args = build_parser().parse_args(["convert", "-r", str(tmp_path), "--delete"])
    assert convert_command.run(args) == 0
    assert "cam: 0 files converted (0 frames), 3 already converted, 0 unreadable, 3 removed" in capsys.readouterr().out
    assert [name for name in os.listdir(tmp_path / "cam" / "2024-05-06") if name.endswith(".jpg")] == []
    assert len(indexedFrames(str(tmp_path / "cam"))) == 3
    args = build_parser().parse_args(["convert", "-r", str(tmp_path / "nothere")])
    assert convert_command.run(args) == 2 and "no folder" in capsys.readouterr().err


def test_export_arguments(tmp_path, capsys):
    assert export_command.parseWhen("2024-05-06T10:00") == T0
    assert export_command.parseWhen("2024-05-06 10:00:00.5") == T0 + 0.5
    assert export_command.parseWhen(str(T0)) == T0
    with pytest.raises(SystemExit):
        build_parser().parse_args(["export", "door", "x.mp4", "--from", "yesterday"])
    assert "bad time 'yesterday'" in capsys.readouterr().err
    record(tmp_path / "door", [T0])
    for argv, message in ((["--event", "3"], "has no event 3"), ([], "give --from and --to"),
                          (["--from", "2024-05-06T10:00", "--to", "2024-05-06T09:00"], "end must be after")):
        args = build_parser().parse_args(["export", "door", str(tmp_path / "x.mp4"), "-r", str(tmp_path)] + argv)
        assert export_command.run(args) == 2
        assert message in capsys.readouterr().err
    args = build_parser().parse_args(["export", "nosuch", "x.mp4", "-r", str(tmp_path), "--event", "1"])
    assert export_command.run(args) == 2 and "no such camera" in capsys.readouterr().err
    args = build_parser().parse_args(["export", "door", str(tmp_path / "x.mp4"), "-r", str(tmp_path),
                                      "--from", "2024-05-07", "--to", "2024-05-08"])
    assert export_command.run(args) == 1
    assert "no frames of door in that time range" in capsys.readouterr().err
    assert not os.path.exists(tmp_path / "x.mp4")
