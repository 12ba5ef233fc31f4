"""Export from the page over real HTTP: jobs, progress, the download (decoded with PyAV), cancel, the bounds.

The files are checked by decoding them with PyAV here; the browser test
(``tox -e browser``) checks one exported from the page with Debian's ffprobe.
"""

import fcntl
import json
import os
import time

import pytest
import pytest_twisted
from record_support import indexedFrames, realJpeg, waitFor
from test_web_footage import T0, event, silentRecorder, writeFootage
from twisted.internet import defer, reactor, task
from web_support import get, header, rawRequest, recording, request, stop, streamParts

from tcpcam.record.web import exports, reads
from tcpcam.record.web.reads import FileSender

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")

FORM = {b"content-type": b"application/x-www-form-urlencoded"}


def colourFrames(count, size=(160, 120)):
    """Real JPEGs, each a different colour."""
    return [realJpeg(color=((i * 7) % 256, 255 - (i * 5) % 256, (i * 3) % 256), size=size) for i in range(count)]


def post(url, fields, headers=None):
    body = "&".join("%s=%s" % item for item in fields.items()).encode()
    return request(url, method=b"POST", headers={**FORM, **(headers or {})}, body=body)


@defer.inlineCallbacks
def finished(url, job, timeout=60):
    """Poll the job until it ends; its last JSON."""
    deadline = time.monotonic() + timeout
    while True:
        response, body = yield get(url + job["status"])
        assert response.code == 200, body
        state = json.loads(body)
        if state["state"] not in ("new", "running"):
            return state
        assert time.monotonic() < deadline, "the export did not end: %r" % state
        yield task.deferLater(reactor, 0.05, lambda: None)


def decodedFrames(path):
    import av

    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        return [int(round(frame.pts * stream.time_base * 1000)) for frame in container.decode(stream)]


def exportFiles(tmp_path):
    """The files under OUT/.exports (but the locks), by name."""
    found = []
    for _, _, names in os.walk(tmp_path / exports.EXPORTS_FOLDER):
        found.extend(name for name in names if name != exports.LOCK_NAME)
    return sorted(found)


@pytest_twisted.inlineCallbacks
def test_export_a_range_a_time_lapse_and_an_event(tmp_path, monkeypatch):
    monkeypatch.setattr(reads, "CHUNK_BYTES", 4096)  # downloads of many chunks
    times = [T0 + i * 0.1 for i in range(60)]
    writeFootage(tmp_path / "cam", times, colourFrames(60), events=[event(2, 3)])
    base = tmp_path / exports.EXPORTS_FOLDER
    (base / "an-earlier-run").mkdir(parents=True)
    (base / "an-earlier-run" / "0123.mp4").write_bytes(b"old")
    (base / "stray.mp4").write_bytes(b"old")
    (base / "another-recorder").mkdir()
    (base / "another-recorder" / "4567.mp4").write_bytes(b"theirs")
    held = os.open(base / "another-recorder" / exports.LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(held, fcntl.LOCK_EX)  # a recorder running on the same --out holds its folder
    recorder, servers = yield silentRecorder(tmp_path)
    url = recorder.web.url + "cam/"
    try:
        assert exportFiles(tmp_path) == ["4567.mp4"]  # what earlier runs left is gone, the other's stays
        response, body = yield post(url + "exports", {"from": "%.3f" % (T0 + 1), "to": "%.3f" % (T0 + 3)})
        assert response.code == 202, body
        job = json.loads(body)
        assert (job["kind"], job["state"], job["download"]) == ("video", "new", None)
        assert job["name"] == "cam_2024-05-06_10-00-01.mp4"
        done = yield finished(url, job)
        assert (done["state"], done["frames"], done["done"], done["total"], done["fraction"]) == (
            "done", 20, 20, 20, 1.0)
        assert done["duration"] == pytest.approx(2.0) and done["download"] == "exports/%s.mp4" % job["id"]
        response, data = yield get(url + done["download"])
        assert response.code == 200 and header(response, b"content-type") == b"video/mp4"
        assert header(response, b"content-disposition") == b'attachment; filename="cam_2024-05-06_10-00-01.mp4"'
        (tmp_path / "range.mp4").write_bytes(data)
        assert decodedFrames(tmp_path / "range.mp4") == [round(t * 1000 - (T0 + 1) * 1000) for t in times[10:30]]
        # A time-lapse: one frame every 0.5 s of recording, 10 frames a second.
        response, body = yield post(url + "exports", {"from": "%.3f" % T0, "to": "%.3f" % (T0 + 6), "every": "0.5"})
        lapse = yield finished(url, json.loads(body))
        assert (lapse["kind"], lapse["frames"], lapse["every"], lapse["fps"]) == ("timelapse", 12, 0.5, 10.0)
        assert lapse["name"] == "cam_2024-05-06_10-00-00_timelapse-0.5s.mp4"
        _, data = yield get(url + lapse["download"])
        (tmp_path / "lapse.mp4").write_bytes(data)
        assert decodedFrames(tmp_path / "lapse.mp4") == [i * 100 for i in range(12)]
        # An event: its clip, 0.5 s before and after.
        response, body = yield get(url + "events.json?day=2024-05-06")
        [found] = json.loads(body)["events"]
        response, body = yield post(url + "exports", {"event": found["id"]})
        clip = yield finished(url, json.loads(body))
        assert (clip["event"], clip["frames"], clip["from"]) == (found["id"], 21, T0 + 1.5)
        # The camera's jobs, newest first.
        _, body = yield get(url + "exports")
        listed = json.loads(body)
        assert [item["id"] for item in listed["exports"]] == [clip["id"], lapse["id"], job["id"]]
        assert listed["max_running"] == exports.MAX_RUNNING_EXPORTS
        assert exportFiles(tmp_path) == sorted([item["id"] + ".mp4" for item in listed["exports"]] + ["4567.mp4"])
    finally:
        yield stop(recorder, servers)
        os.close(held)
    assert exportFiles(tmp_path) == ["4567.mp4"]  # a stopped recorder leaves none of its exports behind


BAD_EXPORTS = [
    ({"from": "%f" % (T0 + 3), "to": "%f" % T0}, 400, b"to must be after from"),
    ({"from": "%f" % T0}, 400, b"give to"),
    ({"from": "%f" % T0, "to": "%f" % (T0 + 40 * 86400)}, 400, b"at most 31 days"),
    ({"from": "%f" % T0, "to": "%f" % (T0 + 1), "every": "0"}, 400, b"every must be a number from 0.1"),
    ({"from": "%f" % T0, "to": "%f" % (T0 + 1), "every": "1", "fps": "500"}, 400, b"fps must be a number from 1"),
    ({"event": "1", "from": "%f" % T0}, 400, b"either event or from and to"),
    ({"event": "x"}, 400, b"event must be a whole number"),
    ({"event": "999"}, 404, b"camera cam has no event 999"),
    ({"from": "%f" % (T0 - 7200), "to": "%f" % (T0 - 3600)}, 404, b"no recorded frames of cam in that range"),
]


@pytest_twisted.inlineCallbacks
def test_bad_exports_are_refused_with_one_line(tmp_path, monkeypatch):
    writeFootage(tmp_path / "cam", [T0 + i * 0.1 for i in range(30)], colourFrames(30))
    recorder, servers = yield silentRecorder(tmp_path)
    url = recorder.web.url + "cam/"
    try:
        for fields, code, message in BAD_EXPORTS:
            response, body = yield post(url + "exports", fields)
            assert response.code == code and message in body and body.count(b"\n") == 1, (fields, body)
        monkeypatch.setattr(exports, "MAX_PAGE_EXPORT_FRAMES", 5)
        response, body = yield post(url + "exports", {"from": "%f" % T0, "to": "%f" % (T0 + 3)})
        assert response.code == 413 and b"that range holds 30 frames" in body
        # A form from another site (with the login off, the Origin check is what stops it).
        response, body = yield post(url + "exports", {"from": "%f" % T0, "to": "%f" % (T0 + 1)},
                                    headers={b"origin": b"http://evil.example"})
        assert response.code == 403
        # The recorder is below its free-space floor: no export.
        monkeypatch.setattr(recorder.web.exports, "lowOnSpace", lambda: True)
        response, body = yield post(url + "exports", {"from": "%f" % T0, "to": "%f" % (T0 + 1)})
        assert response.code == 507 and b"free-space floor" in body
        assert recorder.web.exports.jobs == {} and exportFiles(tmp_path) == []
        for missing in ("exports/0123456789abcdef.json", "exports/0123456789abcdef.mp4", "exports/x/y"):
            response, body = yield get(url + missing)
            assert response.code == 404, missing
    finally:
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_running_exports_are_bounded_and_can_be_cancelled(tmp_path):
    count = 2000  # long enough to be running when the next requests come
    writeFootage(tmp_path / "cam", [T0 + i * 0.1 for i in range(count)], colourFrames(count, (320, 240)))
    recorder, servers = yield silentRecorder(tmp_path)
    url = recorder.web.url + "cam/"
    everything = {"from": "%f" % T0, "to": "%f" % (T0 + count)}
    try:
        jobs = []
        for _ in range(exports.MAX_RUNNING_EXPORTS):
            response, body = yield post(url + "exports", everything)
            assert response.code == 202
            jobs.append(json.loads(body))
        response, body = yield post(url + "exports", everything)
        assert response.code == 429 and b"at most %d at once" % exports.MAX_RUNNING_EXPORTS in body
        assert header(response, b"retry-after") == b"5"
        response, body = yield get(url + jobs[0]["status"].replace(".json", ".mp4"))
        assert response.code == 409 and b"is not done" in body
        for job in jobs:
            response, body = yield request(url + job["cancel"], method=b"POST")
            assert response.code == 200 and json.loads(body)["state"] in ("new", "running", "cancelled")
        for job in jobs:
            state = yield finished(url, job)
            assert state["state"] == "cancelled" and state["download"] is None
        assert exportFiles(tmp_path) == []  # neither the file nor its temporary was left
        # Room again for a new one.
        response, body = yield post(url + "exports", {"from": "%f" % T0, "to": "%f" % (T0 + 1)})
        assert response.code == 202
        assert (yield finished(url, json.loads(body)))["state"] == "done"
    finally:
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_exports_are_forgotten_after_a_while_and_beyond_a_count(tmp_path):
    writeFootage(tmp_path / "cam", [T0 + i * 0.1 for i in range(30)], colourFrames(30))
    recorder, servers = yield silentRecorder(tmp_path)
    url = recorder.web.url + "cam/"
    manager = recorder.web.exports
    manager.maxKept = 2
    try:
        made = []
        for i in range(3):
            response, body = yield post(url + "exports", {"from": "%f" % (T0 + i), "to": "%f" % (T0 + i + 1)})
            made.append((yield finished(url, json.loads(body))))
        # Beyond the count, the oldest that ended goes first, with its file.
        assert sorted(manager.jobs) == sorted(job["id"] for job in made[1:])
        response, _ = yield get(url + made[0]["status"])
        assert response.code == 404
        yield waitFor(lambda: len(exportFiles(tmp_path)) == 2, what="the oldest file to be removed")
        # After the keep time, the rest.
        manager.keepSeconds = 0
        manager.cleanup()
        assert manager.jobs == {}
        yield waitFor(lambda: exportFiles(tmp_path) == [], what="the files to be removed")
        response, body = yield get(url + made[2]["download"])
        assert response.code == 404 and b"exports are kept" in body
    finally:
        yield stop(recorder, servers)


def noiseFrames(count, size=(640, 480)):
    """Real JPEGs of noise: they compress badly, so the MP4 is large."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(3)
    frames = []
    for _ in range(count):
        out = io.BytesIO()
        Image.fromarray(rng.integers(0, 255, (size[1], size[0], 3), dtype=np.uint8)).save(out, "JPEG", quality=90)
        frames.append(out.getvalue())
    return frames


@pytest_twisted.inlineCallbacks
def test_a_download_nobody_reads_is_dropped(tmp_path, monkeypatch):
    monkeypatch.setattr(FileSender, "stallTimeout", 0.5)
    writeFootage(tmp_path / "cam", [T0 + i * 0.1 for i in range(20)], noiseFrames(20))
    recorder, servers = yield silentRecorder(tmp_path)
    url = recorder.web.url + "cam/"
    try:
        response, body = yield post(url + "exports", {"from": "%f" % T0, "to": "%f" % (T0 + 2)})
        job = yield finished(url, json.loads(body))
        size = os.path.getsize(os.path.join(recorder.web.exports.folder, job["id"] + ".mp4"))
        assert size > 2 * 1024 * 1024, size  # more than the kernel's buffers on both sides hold
        client = rawRequest(recorder.web.port.getHost().port, "/cam/" + job["download"], rcvbuf=4096)
        try:
            yield waitFor(lambda: recorder.web.limits.open == 1, what="the download to start")
            yield waitFor(lambda: recorder.web.limits.open == 0, timeout=15, what="the stalled download dropped")
        finally:
            client.close()
        assert recorder.web.webStatus()["stalled_downloads"] == 1
        # The file is still there for a client that reads.
        response, data = yield get(url + job["download"])
        assert response.code == 200 and len(data) == size
    finally:
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_recording_goes_on_while_footage_is_played_and_exported(tmp_path):
    """Four fast playback streams and two exports beside a camera at 100 frames/s: not a frame lost."""
    writeFootage(tmp_path / "cam", [T0 + i * 0.1 for i in range(600)], colourFrames(600, (320, 240)))
    recorder, servers = yield recording(tmp_path, scripts=[[("stream", 0.01)]], frameSize=20_000)
    camera = recorder.cameras["cam"]
    url = recorder.web.url + "cam/"
    try:
        yield waitFor(lambda: camera.frames >= 20, what="recording")
        everything = {"from": "%f" % T0, "to": "%f" % (T0 + 60)}
        jobs = []
        for _ in range(2):
            response, body = yield post(url + "exports", everything)
            assert response.code == 202
            jobs.append(json.loads(body))
        playing = [streamParts(url + "play.mjpg?from=%f&speed=8" % (T0 + i * 10), 40, source="127.0.0.%d" % (i + 2))
                   for i in range(4)]
        before = camera.frames
        parts = yield defer.gatherResults(playing)
        assert all(len(got) == 40 for got in parts)
        for job in jobs:
            assert (yield finished(url, job))["state"] == "done"
        assert camera.frames > before + 50  # the camera was being recorded all along
        response, _ = yield get(url + "latest.jpg")
        assert response.code == 200
        sent = servers[0][0].sent
    finally:
        yield stop(recorder, servers)
    recordedFrames = indexedFrames(str(tmp_path / "cam"))
    assert camera.queueDropped == 0 and camera.droppedFrames == 0
    # Every frame the recorder took from the camera is in the index, after the 600 written before.
    assert len(recordedFrames) == 600 + camera.frames
    assert [frame for _, frame in recordedFrames[600:]] == sent[:camera.frames]


@pytest_twisted.inlineCallbacks
def test_head_of_a_stream_starts_no_stream(tmp_path):
    writeFootage(tmp_path / "cam", [T0, T0 + 1])
    recorder, servers = yield silentRecorder(tmp_path)
    try:
        response, body = yield request(recorder.web.url + "cam/play.mjpg?from=%f" % T0, method=b"HEAD")
        assert response.code == 200 and body == b"" and not recorder.web.players.viewers
    finally:
        yield stop(recorder, servers)
