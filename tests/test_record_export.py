"""Export to MP4, checked with Debian's ffprobe (the ``system`` tox env) and by decoding with PyAV.

Runs where TCPCAM_SYSTEM_TEST=1 (tox -e system, which installs ffmpeg);
there a missing ffprobe is a failure. Elsewhere the tests are skipped.
"""

import os
import subprocess
import sys
import time

import pytest
import pytest_twisted
from ffprobe_support import ffprobe
from record_support import realJpeg
from test_record_footage import T0, record
from twisted.internet import reactor

from tcpcam.record.export import ExportCancelled, ExportJob
from tcpcam.record.footage import Footage

pytestmark = pytest.mark.skipif(os.environ.get("TCPCAM_SYSTEM_TEST") != "1",
                                reason="the export tests run in their own tox env: tox -e system")


def jitteredTimes(count):
    """Steps of 80 to 120 ms, with a 250 ms gap every 37 frames."""
    times, moment = [], T0
    for i in range(count):
        times.append(round(moment, 3))
        moment += 0.25 if i % 37 == 36 else 0.08 + (i * 7 % 5) * 0.01
    return times


@pytest.fixture
def store(tmp_path):
    times = jitteredTimes(100)
    frames = [realJpeg(color=(i * 2, 255 - i * 2, (i * 5) % 256), size=(160, 120)) for i in range(100)]
    record(tmp_path / "door", times, frames,
           events=[{"start_ms": int((T0 + 2) * 1000), "end_ms": int((T0 + 3) * 1000), "peak_ms": int((T0 + 2.5) * 1000),
                    "peak_score": 0.1, "pre_roll_ms": 500, "post_roll_ms": 500}])
    return tmp_path, times


def test_mp4_keeps_every_frame_and_its_recorded_time(store, tmp_path):
    root, times = store
    path = str(tmp_path / "out.mp4")
    result = Footage(str(root)).exportJob("door", T0, T0 + 3600, path).run()
    assert result.frames == 100 and (result.width, result.height) == (160, 120)
    probe = ffprobe(path)
    assert (probe["codec_name"], probe["pix_fmt"], int(probe["nb_read_frames"])) == ("h264", "yuv420p", 100)
    # The recorded span, plus at most one nominal frame (0.1 s) for the last frame.
    span = times[-1] - times[0]
    assert span <= float(probe["duration"]) <= span + 0.12
    import av

    with av.open(path) as container:
        stream = container.streams.video[0]
        pts = sorted(int(round(frame.pts * stream.time_base * 1000)) for frame in container.decode(stream))
    assert pts == [int(round((t - times[0]) * 1000)) for t in times]
    assert not [name for name in os.listdir(tmp_path) if name.endswith(".tmp")]


def test_timelapse_takes_one_frame_every_n_seconds(store, tmp_path):
    root, times = store
    path = str(tmp_path / "lapse.mp4")
    result = ExportJob(str(root), "door", T0, T0 + 3600, path, every=1.0, fps=10).run()
    span = times[-1] - times[0]
    assert result.frames == int(span) + 1
    probe = ffprobe(path)
    assert int(probe["nb_read_frames"]) == result.frames
    assert float(probe["duration"]) == pytest.approx(result.frames / 10.0, abs=0.02)
    # The same through the command line.
    command = subprocess.run([sys.executable, "-m", "tcpcam.cli", "export", "door", "--from", str(T0), "--to",
                              str(T0 + 3600), "--every", "1", str(tmp_path / "cli.mp4"), "-r", str(root)],
                             capture_output=True, text=True, timeout=120)
    assert command.returncode == 0, command.stderr
    assert int(ffprobe(tmp_path / "cli.mp4")["nb_read_frames"]) == result.frames


def test_tcpcam_export_of_an_event(store, tmp_path):
    root, times = store
    path = tmp_path / "event.mp4"
    command = subprocess.run([sys.executable, "-m", "tcpcam.cli", "export", "door", "--event", "1", str(path),
                              "-r", str(root)], capture_output=True, text=True, timeout=120)
    assert command.returncode == 0, command.stderr
    inside = [t for t in times if T0 + 1.5 <= t <= T0 + 3.5]
    assert "%d frames" % len(inside) in command.stdout
    assert int(ffprobe(path)["nb_read_frames"]) == len(inside)
    assert command.stderr == ""   # not a terminal: no progress bar


def test_tcpcam_export_draws_a_progress_bar_on_a_terminal(store, tmp_path):
    import pty

    root, _ = store
    primary, secondary = pty.openpty()
    try:
        process = subprocess.Popen([sys.executable, "-m", "tcpcam.cli", "export", "door", "--from",
                                    time.strftime("%Y-%m-%dT%H:%M:%S", time.localtime(T0)), "--to",
                                    str(T0 + 3600), str(tmp_path / "bar.mp4"), "-r", str(root)],
                                   stdout=subprocess.DEVNULL, stderr=secondary)
        assert process.wait(120) == 0
    finally:
        os.close(secondary)
    output = b""
    while True:
        try:
            chunk = os.read(primary, 65536)
        except OSError:
            break
        if not chunk:
            break
        output += chunk
    os.close(primary)
    assert b"100% 100/100 frames" in output and b"\r[" in output


@pytest_twisted.inlineCallbacks
def test_an_export_job_runs_off_the_reactor_with_progress_and_can_be_cancelled(store, tmp_path):
    root, _ = store
    footage = Footage(str(root))
    job = footage.exportJob("door", T0, T0 + 3600, str(tmp_path / "job.mp4"))
    assert job.progress["state"] == "new"
    result = yield job.start(reactor)
    assert result.frames == 100 and job.progress == {
        "state": "done", "done": 100, "total": 100, "fraction": 1.0, "error": None, "path": str(tmp_path / "job.mp4")}
    cancelled = footage.exportJob("door", T0, T0 + 3600, str(tmp_path / "never.mp4"))
    seen = []

    def cancelAtTen(current):
        seen.append(current.done)
        if current.done == 10:
            current.cancel()

    with pytest.raises(ExportCancelled):
        cancelled.run(cancelAtTen)
    assert cancelled.progress["state"] == "cancelled" and max(seen) == 10
    assert sorted(os.listdir(tmp_path)) == ["door", "job.mp4"]
    footage.close()
