"""The recorder against real sockets: a misbehaving camera, restarts, several cameras."""

import os

import pytest_twisted
from record_support import (
    LogCapture,
    filesUnder,
    indexedFrames,
    listenScripted,
    makeConfig,
    recordScripted,
    segmentFiles,
    startRecorder,
    tempFilesUnder,
    waitFor,
)

from tcpcam.common.jpeg import jpegProblem
from tcpcam.record.camera import CameraRecorder
from tcpcam.record.config import CameraConfig
from tcpcam.record.eventlog import readEvents


def _assertWholeFrames(root, sent):
    """The frames stored under a camera folder (either format), each one the camera sent whole."""
    if os.path.exists(os.path.join(root, "index.sqlite3")):
        stored = [frame for _, frame in indexedFrames(str(root))]
    else:
        stored = [open(path, "rb").read() for path in filesUnder(root, ".jpg")]
    assert stored, "no picture recorded"
    sentSet = set(sent)
    for frame in stored:
        assert frame in sentSet, "a stored frame is not one the camera sent whole"
    assert tempFilesUnder(root) == []
    return stored


@pytest_twisted.inlineCallbacks
def test_misbehaving_camera_gaps_logged_files_whole(tmp_path):
    scripts = [
        [("frames", 3), ("midframe",)],
        [("frames", 2), ("garbage",)],
        [("frames", 2), ("silence",)],
        [("stream", 0.02)],
    ]
    with LogCapture() as logs:
        factory, recorder = yield recordScripted(
            tmp_path, scripts, lambda camera: camera.connects >= 4 and camera.frames >= 12,
            what="four connections and twelve frames")
    camera = recorder.cameras["cam"]
    # 3 + 2 + 2 good frames before the stream, and only whole frames on disk.
    pictures = _assertWholeFrames(tmp_path / "cam", factory.sent)
    assert len(pictures) == camera.frames
    assert camera.badFrames == 1
    events = readEvents(tmp_path / "cam" / "events.jsonl")
    kinds = [event["event"] for event in events]
    assert kinds.count("connect") == camera.connects
    reasons = [event["reason"] for event in events if event["event"] == "disconnect"]
    assert "truncated" in reasons[0]
    assert "over the limit" in reasons[1]
    assert "nothing received" in reasons[2]
    assert reasons[-1] == "the recorder stopped"
    assert [e["frames"] for e in events if e["event"] == "disconnect"][:3] == [3, 2, 2]
    bad = [event for event in events if event["event"] == "bad_frame"]
    assert len(bad) == 1 and "start marker" in bad[0]["reason"]
    assert len(logs.matching("disconnected after")) == 3
    assert len(logs.matching("bad frame")) == 1


@pytest_twisted.inlineCallbacks
def test_camera_restart_reconnects_with_backoff_logged_once(tmp_path):
    factory, port, endpoint = yield listenScripted([[("stream", 0.02)]])
    portNumber = port.getHost().port
    with LogCapture(namespace="") as logs:
        recorder = startRecorder(makeConfig(tmp_path, [("cam", endpoint)]))
        camera = recorder.cameras["cam"]
        try:
            yield waitFor(lambda: camera.frames >= 3, what="first frames")
            yield port.stopListening()
            factory.dropAll()
            yield waitFor(lambda: camera.connectFailures >= 3, what="refused reconnects")
            factory2, port, _ = yield listenScripted([[("stream", 0.02)]], port=portNumber)
            before = camera.frames
            yield waitFor(lambda: camera.connects == 2 and camera.frames >= before + 3,
                          what="frames after the restart")
        finally:
            yield recorder.stopService()
            yield port.stopListening()
    assert camera.reconnects == 1
    # Several refused attempts, one line for them in the log and in events.jsonl.
    assert len(logs.matching("cannot connect")) == 1
    assert not logs.matching("Scheduling retry")
    events = readEvents(tmp_path / "cam" / "events.jsonl")
    kinds = [event["event"] for event in events]
    assert kinds == ["connect", "disconnect", "connect_failed", "connect", "disconnect"]
    _assertWholeFrames(tmp_path / "cam", factory.sent + factory2.sent)


@pytest_twisted.inlineCallbacks
def test_camera_that_hangs_up_at_once_is_backed_off_and_logged_once(tmp_path):
    scripts = [[("close",)]] * 4 + [[("stream", 0.01)]]
    attempts = []

    def spyOnBackoff(recorder):
        camera = recorder.cameras["cam"]
        policy = camera._policy
        camera._policy = lambda attempt: attempts.append(attempt) or policy(attempt)

    with LogCapture() as logs:
        _, recorder = yield recordScripted(
            tmp_path, scripts, lambda camera: camera.connects >= 5 and camera.frames >= 3,
            what="four short sessions, then frames", prepare=spyOnBackoff)
    # Sessions without a frame count as failed attempts: the delay keeps growing.
    assert attempts[:4] == sorted(set(attempts[:4])) and len(attempts) >= 4
    events = readEvents(tmp_path / "cam" / "events.jsonl")
    reasons = [e["reason"] for e in events if e["event"] == "disconnect"]
    assert len(reasons) == 5
    assert all("before the first frame" in reason for reason in reasons[:4])
    # Four connections that hung up at once: one line for them, one when frames come.
    assert len(logs.matching("disconnected after 0 frames")) == 1
    assert len(logs.matching("connected to")) == 2
    assert len(logs.matching("frames coming in after 4 connections")) == 1
    assert len(indexedFrames(str(tmp_path / "cam"))) == recorder.cameras["cam"].frames


def test_backoff_is_capped_with_jitter():
    camera = CameraRecorder(CameraConfig(name="cam", endpoint="tcp:host=h:port=1"),
                            None, None, None, backoffInitial=0.5, backoffMax=30.0)
    delays = [camera._retryDelay(attempt) for attempt in range(200)]
    assert all(0.5 <= delay <= 30.0 + 0.5 for delay in delays)
    assert delays[0] < 1.0 and min(delays[50:]) >= 30.0
    assert len({round(delay, 9) for delay in delays[50:]}) > 1, "no jitter"


@pytest_twisted.inlineCallbacks
def test_several_cameras_at_once(tmp_path):
    servers = []
    for _ in range(3):
        servers.append((yield listenScripted([[("stream", 0.01)]])))
    names = ["front", "back", "side"]
    recorder = startRecorder(makeConfig(
        tmp_path, [(name, server[2]) for name, server in zip(names, servers, strict=True)]))
    try:
        yield waitFor(lambda: all(c.frames >= 5 for c in recorder.cameras.values()),
                      what="five frames from every camera")
    finally:
        yield recorder.stopService()
        for _, port, _ in servers:
            yield port.stopListening()
    for name, (factory, _, _) in zip(names, servers, strict=True):
        stored = _assertWholeFrames(tmp_path / name, factory.sent)
        assert len(stored) == recorder.cameras[name].frames
        day = os.path.basename(os.path.dirname(segmentFiles(tmp_path / name)[0]))
        assert len(day) == 10 and day[4] == "-" and day[7] == "-"


@pytest_twisted.inlineCallbacks
def test_segments_concatenate_whole_frames_and_roll(tmp_path):
    factory, recorder = yield recordScripted(
        tmp_path, [[("frames", 4), ("midframe",)], [("stream", 0.01)]],
        lambda camera: camera.frames >= 12, what="twelve frames", segmentBytes=10_000)
    camera = recorder.cameras["cam"]
    files = segmentFiles(tmp_path / "cam")
    # 3000-byte frames, 10 000-byte segments: three frames a segment.
    assert len(files) >= 4 and camera.store.openPaths == ()
    assert all(os.path.getsize(path) <= 10_000 for path in files)
    import sqlite3

    db = sqlite3.connect(str(tmp_path / "cam" / "index.sqlite3"))
    paths = [row[0] for row in db.execute("SELECT path FROM segments ORDER BY id")]
    # Legacy cameras give no sequence number nor capture time: those protocol 2 columns stay NULL.
    assert db.execute("SELECT COUNT(*) FROM frames WHERE seq IS NULL AND capture_ms IS NULL").fetchone()[0] \
        == camera.frames
    db.close()
    assert sorted(str(tmp_path / "cam" / path) for path in paths) == sorted(files)
    data = b"".join(open(tmp_path / "cam" / path, "rb").read() for path in paths)
    good = [frame for frame in factory.sent if not jpegProblem(frame)]
    # Everything received, in order, nothing of the frame cut in half: the segments play as MJPEG.
    assert data == b"".join(good[:camera.frames])
    indexed = indexedFrames(str(tmp_path / "cam"))
    assert [frame for _, frame in indexed] == good[:camera.frames]
    times = [when for when, _ in indexed]
    assert times == sorted(times)


@pytest_twisted.inlineCallbacks
def test_disk_error_is_logged_retried_and_other_cameras_go_on(tmp_path):
    servers = []
    for _ in range(2):
        servers.append((yield listenScripted([[("stream", 0.01)]])))
    recorder = startRecorder(makeConfig(
        tmp_path, [("broken", servers[0][2]), ("fine", servers[1][2])], format="jpg"))
    broken, fine = recorder.cameras["broken"], recorder.cameras["fine"]
    recorder.writer.diskRetrySeconds = 0.05
    shown = []

    class Viewer:
        def frameAvailable(self, frame):
            shown.append((broken.sink.stats.failing, frame))

    broken.addViewer(Viewer())
    with LogCapture() as logs:
        try:
            yield waitFor(lambda: broken.frames >= 2, what="first frames")
            # A file where the day's folder should be: every write fails.
            day = os.path.dirname(filesUnder(tmp_path / "broken", ".jpg")[0])
            for path in filesUnder(day):
                os.unlink(path)
            os.rmdir(day)
            open(day, "wb").close()
            yield waitFor(lambda: broken.diskErrors >= 3, what="failed writes")
            written = fine.frames
            yield waitFor(lambda: fine.frames >= written + 5, what="the other camera")
            os.unlink(day)
            dropped = broken.droppedFrames
            yield waitFor(lambda: len(filesUnder(tmp_path / "broken", ".jpg")) >= 3,
                          what="writes after the disk recovered")
        finally:
            yield recorder.stopService()
            for _, port, _ in servers:
                yield port.stopListening()
    assert dropped >= 3
    # The live view went on showing the frames that could not be stored.
    duringFailure = [frame for failing, frame in shown if failing]
    assert len(duringFailure) >= 2 and set(duringFailure) <= set(servers[0][0].sent)
    assert len(logs.matching("cannot write frames")) == 1
    assert len(logs.matching("writing frames again")) == 1
    kinds = [e["event"] for e in readEvents(tmp_path / "broken" / "events.jsonl")]
    assert "disk_error" in kinds and "disk_ok" in kinds
    assert tempFilesUnder(tmp_path) == []


@pytest_twisted.inlineCallbacks
def test_retention_quota_holds_while_recording_oldest_first(tmp_path):
    factory, recorder = yield recordScripted(
        tmp_path, [[("stream", 0.01)]], lambda camera: camera.frames >= 60,
        what="sixty frames", frameSize=1000, maxBytes=8000, segmentBytes=2000)
    camera = recorder.cameras["cam"]
    stored = _assertWholeFrames(tmp_path / "cam", factory.sent)
    # The oldest went first: what is left is the newest frames, in order, with no gap.
    first = factory.sent.index(stored[0])
    assert stored == factory.sent[first:first + len(stored)]
    assert first + len(stored) == camera.frames and first > 0
    # The quota held before every batch, not only at retention passes.
    assert recorder.writer.peakTotalBytes <= 8000
    assert recorder.retention.deleted >= 1 and camera.droppedFrames == 0


@pytest_twisted.inlineCallbacks
def test_retention_of_jpeg_files_holds_the_quota_between_passes(tmp_path):
    factory, recorder = yield recordScripted(
        tmp_path, [[("stream", 0.01)]], lambda camera: camera.frames >= 40,
        what="forty frames", frameSize=1000, maxBytes=8000, format="jpg")
    camera = recorder.cameras["cam"]
    pictures = filesUnder(tmp_path / "cam", ".jpg")
    _assertWholeFrames(tmp_path / "cam", factory.sent)
    seqs = sorted(int(path.rsplit("_", 1)[1][:-4]) for path in pictures)
    assert len(seqs) <= 8 and seqs == list(range(seqs[0], camera.frames))
    assert recorder.writer.peakTotalBytes <= 8000
