"""The recorder as people start it: the simulated camera, twistd, tcpcam record, signals."""

import os
import signal
import sqlite3
import subprocess
import sys
import time

import pytest_twisted
from record_support import indexedFrames, makeConfig, startRecorder, tempFilesUnder, waitFor

from tcpcam.common.jpeg import jpegProblem
from tcpcam.record.config import CameraConfig

#: Runs ``twistd`` with the arguments given after it.
TWISTD = "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"
#: Runs ``tcpcam record`` through its command module (as the console script does).
RECORD_COMMAND = (
    "import argparse, sys\n"
    "from tcpcam.cli import record\n"
    "parser = argparse.ArgumentParser()\n"
    "record.add_arguments(parser)\n"
    "sys.exit(record.run(parser.parse_args(sys.argv[1:])))\n"
)


@pytest_twisted.inlineCallbacks
def test_records_the_simulated_camera(tmp_path):
    camera = CameraConfig(name="simulated", endpoint="", simulated=True)
    recorder = startRecorder(makeConfig(tmp_path, [camera]))
    recorder.simulated.interval = 0.05
    try:
        yield waitFor(lambda: recorder.cameras["simulated"].frames >= 3, what="three frames")
    finally:
        yield recorder.stopService()
    frames = indexedFrames(str(tmp_path / "simulated"))
    assert len(frames) >= 3
    for _, frame in frames:
        assert jpegProblem(frame) is None
    assert "built-in simulated camera" in recorder.describe()


def _ignoreInterrupt():
    # What a non-interactive shell does to a command started in the background.
    signal.signal(signal.SIGINT, signal.SIG_IGN)


def _start(argv, cwd, ignoringInterrupt=False):
    """Start ``argv``; with ``ignoringInterrupt`` it starts with SIGINT ignored, as ``sh -c 'cmd &'`` does."""
    return subprocess.Popen(
        argv, cwd=str(cwd), stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
        env=dict(os.environ, PYTHONUNBUFFERED="1"),
        preexec_fn=_ignoreInterrupt if ignoringInterrupt else None,
    )


def _indexedCount(root):
    path = os.path.join(root, "simulated", "index.sqlite3")
    if not os.path.exists(path):
        return 0
    db = sqlite3.connect("file:%s?mode=ro" % path, uri=True)
    try:
        return db.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
    except sqlite3.OperationalError:
        return 0
    finally:
        db.close()


def _waitForPictures(root, count, processes, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if all(_indexedCount(r) >= count for r in root):
            return
        for process in processes:
            if process.poll() is not None:
                raise AssertionError("the recorder exited early:\n" + process.stdout.read().decode())
        time.sleep(0.1)
    raise AssertionError("no %d pictures within %g s" % (count, timeout))


def _stop(process, sig):
    process.send_signal(sig)
    try:
        output, _ = process.communicate(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        output, _ = process.communicate(timeout=10)
        raise AssertionError("the recorder ignored the signal:\n" + output.decode()) from None
    return process.returncode, output.decode()


def test_sigterm_twistd_and_sigint_tcpcam_record_leave_whole_files(tmp_path):
    # tcpcam record starts with SIGINT ignored, as from a script's background
    # job: Ctrl-C must stop it all the same, however this suite was launched.
    web = "tcp:0:interface=127.0.0.1"
    (tmp_path / "d").mkdir()
    (tmp_path / "c").mkdir()
    daemon = _start([sys.executable, "-c", TWISTD, "-n", "--pidfile=", "tcpcam-record",
                     "--web", web], tmp_path / "d")
    command = _start([sys.executable, "-c", RECORD_COMMAND, "--web", web, "--out", "rec"],
                     tmp_path / "c", ignoringInterrupt=True)
    roots = [tmp_path / "d" / "recordings", tmp_path / "c" / "rec"]
    try:
        _waitForPictures(roots, 3, [daemon, command])
    finally:
        results = [_stop(daemon, signal.SIGTERM), _stop(command, signal.SIGINT)]
    # twistd re-raises the signal after a clean shutdown (older ones exit 0).
    assert results[0][0] in (0, -signal.SIGTERM), results[0][1]
    assert results[1][0] == 0, results[1][1]
    for (_, output), root in zip(results, roots, strict=True):
        # The recorder's own first line says what it records.
        assert "recording from the built-in simulated camera" in output.splitlines()[0], output
        assert "web interface on http://127.0.0.1:" in output
        # A first start with the login on makes a password, logs it, and keeps it hashed, readable by its owner only.
        assert "first start: the web interface's password is " in output and "login?once=" in output
        assert os.stat(root / "web-auth.json").st_mode & 0o777 == 0o600
        assert tempFilesUnder(root) == []
        assert len(indexedFrames(str(root / "simulated"))) >= 3
        assert "retention: keeping the larger of 1 GiB and 5% of the disk free" in output.splitlines()[0], output
        assert "stopped after" in output


def test_sigint_stops_twistd_started_with_sigint_ignored(tmp_path):
    daemon = _start([sys.executable, "-c", TWISTD, "-n", "--pidfile=", "tcpcam-record", "--web",
                     "tcp:0:interface=127.0.0.1"], tmp_path, ignoringInterrupt=True)
    try:
        _waitForPictures([tmp_path / "recordings"], 2, [daemon])
    finally:
        status, output = _stop(daemon, signal.SIGINT)
    # twistd re-raises the signal after a clean shutdown (older ones exit 0).
    assert status in (0, -signal.SIGINT), output
    assert "Received SIGINT, shutting down." in output and "stopped after" in output
    assert tempFilesUnder(tmp_path / "recordings") == []
