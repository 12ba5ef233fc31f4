"""Faults of the recorder's storage: SIGKILL at random points, a stalled disk writer, a small full disk."""

import os
import random
import signal
import sqlite3
import subprocess
import sys
import time

import pytest
import pytest_twisted
from record_support import (
    LogCapture,
    filesUnder,
    indexedFrames,
    listenScripted,
    makeConfig,
    startRecorder,
    tempFilesUnder,
    waitFor,
)
from twisted.internet import task

from tcpcam.common.jpeg import jpegProblem
from tcpcam.record.metrics import RecorderCollector
from tcpcam.record.segments import SegmentStore
from tcpcam.record.writer import QUEUE_ITEMS

RECORD = ("import sys; from tcpcam.cli.main import main; sys.exit(main(['record'] + sys.argv[1:]))")
SERVE = ("import sys; from tcpcam.cli.main import main; sys.exit(main(['serve'] + sys.argv[1:]))")


def _freePort():
    import socket

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _indexedCount(folder):
    path = os.path.join(folder, "index.sqlite3")
    if not os.path.exists(path):
        return 0
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
    try:
        return db.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def _jpegCount(folder):
    return len(filesUnder(folder, ".jpg"))


def _killRepeatedly(tmp_path, fmt, kills, stored):
    """Start ``tcpcam record``, SIGKILL it at a random moment once it stores frames, ``kills`` times."""
    port = _freePort()
    camera = subprocess.Popen(
        [sys.executable, "-c", SERVE, "--listen", "tcp:%d:interface=127.0.0.1" % port, "--source", "pattern",
         "--interval-ms", "10"], stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    out = tmp_path / "rec"
    folder = str(out / "cam")
    argv = [sys.executable, "-c", RECORD, "--no-web", "--out", str(out), "--format", fmt,
            "--segment-bytes", "65536", "--min-free", "0", "--min-free-percent", "0",
            "--camera", "cam=tcp:host=127.0.0.1:port=%d" % port, "--backoff-initial", "0.05", "--backoff-max", "0.2"]
    rng = random.Random(1234)
    counts = []
    try:
        for _ in range(kills):
            before = stored(folder)
            recorder = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
            deadline = time.monotonic() + 20
            while stored(folder) <= before:
                assert recorder.poll() is None, "the recorder exited with %s" % recorder.returncode
                assert time.monotonic() < deadline, "no new frame stored within 20 s"
                time.sleep(0.02)
            time.sleep(rng.uniform(0, 0.6))
            recorder.send_signal(signal.SIGKILL)
            recorder.wait(10)
            counts.append(stored(folder))
            if fmt == "segments":
                # Even before any repair, every index row points at a whole JPEG.
                indexedFrames(folder, strict=False)
    finally:
        camera.send_signal(signal.SIGTERM)
        try:
            camera.wait(10)
        except subprocess.TimeoutExpired:
            camera.kill()
            camera.wait(10)
    return folder, counts


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_at_random_points_leaves_only_whole_indexed_frames(tmp_path):
    folder, counts = _killRepeatedly(tmp_path, "segments", 30, _indexedCount)
    assert counts == sorted(counts) and counts[-1] > counts[0]
    # The next start repairs what the last kill left; then everything agrees, byte for byte.
    store = SegmentStore(folder)
    store.open()
    store.close()
    frames = indexedFrames(folder)
    assert len(frames) >= counts[-1]
    assert all(jpegProblem(frame) is None for _, frame in frames)
    assert [t for t, _ in frames] == sorted(t for t, _ in frames)
    assert tempFilesUnder(folder) == []


@pytest.mark.slow
@pytest.mark.timeout(300)
def test_sigkill_in_jpg_format_leaves_no_temporary_file_after_restart(tmp_path):
    folder, counts = _killRepeatedly(tmp_path, "jpg", 10, _jpegCount)
    from tcpcam.record.storage import JpegTreeStore

    JpegTreeStore(folder).open()
    assert tempFilesUnder(folder) == []
    for path in filesUnder(folder, ".jpg"):
        assert jpegProblem(open(path, "rb").read()) is None, path


@pytest_twisted.inlineCallbacks
def test_a_stalled_disk_writer_drops_counts_and_logs_once(tmp_path):
    import threading

    factory, port, endpoint = yield listenScripted([[("stream", 0.005)]])
    recorder = startRecorder(makeConfig(tmp_path, [("cam", endpoint)]))
    camera = recorder.cameras["cam"]
    gate = threading.Event()
    with LogCapture() as logs:
        try:
            yield waitFor(lambda: camera.sink.stats.written >= 2, what="first frames written")
            # The disk stalls: the writer thread waits (at most 20 s) inside a task of its own, and
            # its queue is made small (only now, so a busy machine drops nothing before the stall).
            camera.sink.call(lambda store: gate.wait(20))
            recorder.writer.maxQueueItems = 5
            yield waitFor(lambda: camera.queueDropped >= 20, what="frames dropped")
            status = recorder.status()["cameras"]["cam"]
            assert status["queue_dropped_frames"] >= 20 and status["dropped_frames"] >= 20
            samples = {family.name: family.samples for family in RecorderCollector(recorder).collect()}
            assert samples["tcpcam_queue_dropped_frames"][0].value >= 20
            assert len(logs.matching("the disk writer is behind")) == 1
            gate.set()
            recorder.writer.maxQueueItems = QUEUE_ITEMS  # the writer catches up for good
            yield waitFor(lambda: logs.matching("the disk writer caught up"), what="the writer to catch up")
            written = camera.sink.stats.written
            yield waitFor(lambda: camera.sink.stats.written >= written + 5, what="writing again")
        finally:
            gate.set()
            yield recorder.stopService()
            yield port.stopListening()
    # Frames still come while the writer drains its queue: the line counts every frame of the run.
    caught = logs.matching("the disk writer caught up")
    assert len(caught) == 1 and ("%d frames dropped" % camera.queueDropped) in caught[0]
    assert len(logs.matching("the disk writer is behind")) == 1
    stored = indexedFrames(str(tmp_path / "cam"))
    assert len(stored) == camera.frames - camera.queueDropped


@pytest.fixture
def smallDisk(tmp_path):
    """A real 8 MiB tmpfs (root only; skipped where mount is not allowed)."""
    mountPoint = tmp_path / "disk"
    mountPoint.mkdir()
    result = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=8m", "tmpfs", str(mountPoint)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        pytest.skip("cannot mount a tmpfs here: %s" % result.stderr.strip())
    try:
        yield mountPoint
    finally:
        subprocess.run(["umount", "-l", str(mountPoint)], check=False)


@pytest.mark.slow
@pytest_twisted.inlineCallbacks
def test_a_small_disk_never_fills_and_no_frame_is_dropped(smallDisk):
    # 20 KB frames every 5 ms: about 4 MB/s onto an 8 MiB disk that keeps 1 MiB free.
    factory, port, endpoint = yield listenScripted([[("stream", 0.005)]], frameSize=20_000)
    config = makeConfig(smallDisk, [("cam", endpoint)], segmentBytes=256 * 1024,
                        minFree=1024 * 1024, minFreePercent=0.0)
    recorder = startRecorder(config)
    camera = recorder.cameras["cam"]
    lowest = []

    def sample():
        info = os.statvfs(str(smallDisk))
        lowest.append(info.f_bavail * info.f_frsize)

    sampling = task.LoopingCall(sample)
    sampling.start(0.01)
    try:
        yield waitFor(lambda: camera.sink.stats.writtenBytes >= 12 * 1024 * 1024, timeout=60,
                      what="12 MiB written onto the 8 MiB disk")
    finally:
        sampling.stop()
        yield recorder.stopService()
        yield port.stopListening()
    assert camera.diskErrors == 0 and camera.droppedFrames == 0
    assert recorder.retention.deleted > 10
    # The floor held between passes, to within a batch of frames and the index's growth.
    assert min(lowest) >= 1024 * 1024 - 256 * 1024, min(lowest)
    stored = indexedFrames(str(smallDisk / "cam"))
    sent = factory.sent
    first = sent.index(stored[0][1])
    assert [frame for _, frame in stored] == sent[first:first + len(stored)]
