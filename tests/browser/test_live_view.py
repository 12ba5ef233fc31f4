"""Headless chromium shows a live frame on the recorder's page.

Runs in the ``browser`` tox env (which sets TCPCAM_BROWSER_TEST=1) with
Debian's ``chromium`` package; there a missing chromium is a failure.
Elsewhere the test is skipped.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import time

import pytest

TWISTD = "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"
#: Colour bars of the simulated camera's test card (the page itself has none of them).
BARS = {"yellow": (192, 192, 0), "cyan": (0, 192, 192), "magenta": (192, 0, 192)}

pytestmark = pytest.mark.skipif(
    os.environ.get("TCPCAM_BROWSER_TEST") != "1",
    reason="the browser test runs in its own tox env: tox -e browser")


def _chromium():
    for name in ("chromium", "chromium-browser", "google-chrome"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed: apt-get install -y chromium")


def _waitForUrl(logPath, process, timeout=30.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        with open(logPath) as handle:
            text = handle.read()
        found = re.search(r"live view on (http://\S+)", text)
        if found and "connected to" in text:
            return found.group(1)
        if process.poll() is not None:
            pytest.fail("the recorder exited:\n" + text)
        time.sleep(0.1)
    pytest.fail("the recorder did not start its live view within %g s" % timeout)


def _colourPixels(path, colour, tolerance=40):
    from PIL import Image

    data = Image.open(path).convert("RGB").tobytes()
    red, green, blue = colour
    return sum(
        1 for i in range(0, len(data), 3)
        if abs(data[i] - red) <= tolerance and abs(data[i + 1] - green) <= tolerance
        and abs(data[i + 2] - blue) <= tolerance)


def test_page_shows_a_live_frame(tmp_path):
    chromium = _chromium()
    logPath = tmp_path / "recorder.log"
    with open(logPath, "w") as log:
        recorder = subprocess.Popen(
            [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "tcpcam-record",
             "--web", "tcp:0:interface=127.0.0.1"],
            cwd=str(tmp_path), stdout=log, stderr=subprocess.STDOUT)
    try:
        url = _waitForUrl(logPath, recorder)
        shot = tmp_path / "shot.png"
        result = subprocess.run(
            [chromium, "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
             "--no-first-run", "--disable-background-networking", "--disable-component-update",
             "--disable-sync", "--user-data-dir=%s" % (tmp_path / "profile"),
             "--screenshot=%s" % shot, "--window-size=800,700", "--virtual-time-budget=3000",
             url],
            capture_output=True, text=True, timeout=60)
        assert shot.exists(), "chromium made no screenshot:\n" + result.stderr[-2000:]
        for name, colour in BARS.items():
            count = _colourPixels(shot, colour)
            assert count > 2000, "only %d %s pixels: the picture is not shown" % (count, name)
    finally:
        recorder.send_signal(signal.SIGTERM)
        try:
            recorder.wait(timeout=20)
        except subprocess.TimeoutExpired:
            recorder.kill()
            recorder.wait(timeout=10)
