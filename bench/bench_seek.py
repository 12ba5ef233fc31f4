"""Benchmark seeking: from a click on the timeline (or its HTTP request) to the first frame shown.

A recording of ``--frames`` real 640x480 JPEGs (about 50 KB each, 10 frames/s,
segments of 60 s) is written as a segment store; a recorder process (``tcpcam
record``, its camera refused, so it records nothing new) serves it on
loopback. Then ``--seeks`` random moments of the recording, in a random
order, are looked up by each path:

- ``baseline``: the same frame read straight from its segment file with the
  index, in this process: one SQLite query on a read-only connection kept
  open, an open, a seek and a read;
- ``frame.jpg``: ``GET /NAME/frame.jpg?t=T`` on a kept-alive HTTP connection,
  until the whole JPEG is read (stepping, and showing one moment);
- ``play.mjpg``: ``GET /NAME/play.mjpg?from=T`` on a new connection (what the
  page does on a click), until the first part is whole;
- ``click`` (``--browser``; needs Debian's chromium and chromedriver, and
  selenium): a real click on the timeline page in headless chromium, from the
  click event to the load event of the first frame's picture, as the page
  measures it (``player.seekTimes``).

Each path checks that it got the frame the baseline read. It prints the
median and the 90th percentile of each path and the ratio of each median to
the baseline's median.

    python bench/bench_seek.py [--frames 3000] [--seeks 200] [--browser] [--browser-seeks 60]

Everything runs on loopback; a run takes well under a minute (plus about a
second per browser seek).
"""

import argparse
import http.client
import os
import random
import re
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import time

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

from bench_recorder import realFrames  # noqa: E402 - the benchmarks' shared frames

TCPCAM = "import sys; from tcpcam.cli.main import main; sys.exit(main())"
#: When the recording begins (local time).
T0 = time.mktime((2024, 5, 6, 10, 0, 0, 0, 0, -1))
CAMERA = "bench"


def writeRecording(root, count, frames):
    """A segment store of ``count`` frames at 10 frames/s from T0; returns their times."""
    from tcpcam.record.segments import SegmentStore

    store = SegmentStore(os.path.join(root, CAMERA), sync=False)
    store.open()
    times = [round(T0 + index * 0.1, 3) for index in range(count)]
    for index, when in enumerate(times):
        store.write(frames[index % len(frames)], when)
    store.close()
    return times


def startRecorder(root, work):
    """``tcpcam record`` over ``root`` on a free loopback port; ``(process, base URL)``."""
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    log = open(os.path.join(work, "recorder.log"), "w")
    process = subprocess.Popen(
        [sys.executable, "-c", TCPCAM, "record", "--out", root, "--camera",
         "%s=tcp:host=127.0.0.1:port=%d" % (CAMERA, refused.getsockname()[1]),
         "--web", "tcp:0:interface=127.0.0.1", "--web-login", "false", "--min-free", "0", "--min-free-percent", "0"],
        stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))
    deadline = time.monotonic() + 30
    while True:
        with open(log.name) as handle:
            found = re.search(r"web interface on (http://\S+/)", handle.read())
        if found:
            break
        if process.poll() is not None or time.monotonic() > deadline:
            raise SystemExit("the recorder did not start; see %s" % log.name)
        time.sleep(0.05)
    process.refused = refused
    return process, found.group(1)


def stopRecorder(process):
    process.send_signal(signal.SIGTERM)
    try:
        process.wait(timeout=20)
    except subprocess.TimeoutExpired:
        process.kill()
        process.wait(timeout=10)
    process.refused.close()


class Baseline:
    """Read a frame straight from its segment with the index."""

    def __init__(self, root):
        self.folder = os.path.join(root, CAMERA)
        self.db = sqlite3.connect("file:%s?mode=ro" % os.path.join(self.folder, "index.sqlite3"), uri=True)

    def frame(self, when, after):
        """The frame at or after ``when`` (``after``), or the one at or before it."""
        query = ("SELECT f.time_ms, f.offset, f.length, s.path FROM frames f JOIN segments s ON s.id = f.segment"
                 " WHERE f.time_ms %s ? ORDER BY f.time_ms %s LIMIT 1" % ((">=", "ASC") if after else ("<=", "DESC")))
        timeMs, offset, length, path = self.db.execute(query, (int(round(when * 1000)),)).fetchone()
        with open(os.path.join(self.folder, path), "rb") as handle:
            handle.seek(offset)
            return timeMs / 1000.0, handle.read(length)


def firstPart(host, port, path):
    """The first part of an MJPEG stream, on a new connection (closed after)."""
    connection = http.client.HTTPConnection(host, port, timeout=30)
    try:
        connection.request("GET", path)
        response = connection.getresponse()
        assert response.status == 200, response.status
        headers = {}
        while True:
            line = response.readline()
            if line in (b"\r\n", b"") and headers:
                break
            if b":" in line:
                name, value = line.split(b":", 1)
                headers[name.strip().lower()] = value.strip()
        data = response.read(int(headers[b"content-length"]))
        return float(headers[b"x-timestamp"]), data
    finally:
        connection.close()


def summary(values):
    values = sorted(values)
    return statistics.median(values), values[min(len(values) - 1, int(round(0.9 * (len(values) - 1))))]


def benchHttp(url, times, seeks, baseline):
    host, port = re.match(r"http://([^:/]+):(\d+)/", url).groups()
    port = int(port)
    rng = random.Random(7)
    span = times[-1] - times[0]
    moments = [times[0] + rng.random() * span for _ in range(seeks)]
    results = {"baseline": [], "frame.jpg": [], "play.mjpg": []}
    kept = http.client.HTTPConnection(host, port, timeout=30)
    try:
        for when in moments:
            order = ["baseline", "frame.jpg", "play.mjpg"]
            rng.shuffle(order)
            for path in order:
                started = time.perf_counter()
                if path == "baseline":
                    baseline.frame(when, after=True)
                    results[path].append(time.perf_counter() - started)
                elif path == "frame.jpg":
                    kept.request("GET", "/%s/frame.jpg?t=%.3f" % (CAMERA, when))
                    response = kept.getresponse()
                    data = response.read()
                    results[path].append(time.perf_counter() - started)
                    assert response.status == 200
                    assert (float(response.getheader("X-Timestamp")), data) == baseline.frame(when, after=False)
                else:
                    got = firstPart(host, port, "/%s/play.mjpg?from=%.3f" % (CAMERA, when))
                    results[path].append(time.perf_counter() - started)
                    assert got == baseline.frame(when, after=True)
    finally:
        kept.close()
    return results


def benchBrowser(url, times, seeks):
    """Real clicks on the timeline page; the page's own measure from the click to the first frame's load."""
    sys.path.insert(0, os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "tests", "browser"))
    from browser_support import browser, quit
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    driver = browser()
    rng = random.Random(11)
    try:
        driver.get(url + CAMERA + "/timeline")
        deadline = time.monotonic() + 20
        while not driver.execute_script("return !!window.tcpcamTimeline && tcpcamTimeline.player.time !== null"):
            if time.monotonic() > deadline:
                raise SystemExit("the timeline page did not show a frame")
            time.sleep(0.05)
        track = driver.find_element(By.ID, "track")
        width = driver.execute_script("return document.getElementById('track').clientWidth")
        measured = []
        for _ in range(seeks):
            when = times[0] + rng.random() * (times[-1] - times[0])
            x = driver.execute_script("return tcpcamTimeline.xOf(arguments[0])", when)
            before = driver.execute_script("return tcpcamTimeline.player.seekTimes.length")
            ActionChains(driver).move_to_element_with_offset(track, int(round(x - width / 2)), 0).click().perform()
            deadline = time.monotonic() + 10
            while driver.execute_script("return tcpcamTimeline.player.seekTimes.length") == before:
                if time.monotonic() > deadline:
                    raise SystemExit("a click showed no frame within 10 s")
                time.sleep(0.01)
            measured.append(driver.execute_script("return tcpcamTimeline.player.seekTimes.slice(-1)[0]") / 1000.0)
            driver.find_element(By.ID, "play").click()  # pause before the next click
        return measured
    finally:
        quit(driver)


def build_parser():
    """The benchmark's command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--frames", type=int, default=3000)
    parser.add_argument("--seeks", type=int, default=200)
    parser.add_argument("--browser", action="store_true", help="also click in headless chromium")
    parser.add_argument("--browser-seeks", type=int, default=60)
    return parser


def main():
    """Run the benchmark and print the figures."""
    parser = build_parser()
    args = parser.parse_args()
    if not 100 <= args.frames <= 50_000 or not 1 <= args.seeks <= 5000 or not 1 <= args.browser_seeks <= 1000:
        parser.error("--frames 100 to 50000, --seeks 1 to 5000, --browser-seeks 1 to 1000 (the run is bounded)")
    work = tempfile.mkdtemp(prefix="tcpcam-bench-seek-")
    process = None
    try:
        frames = realFrames()
        root = os.path.join(work, "recordings")
        times = writeRecording(root, args.frames, frames)
        print("recording: %d frames (640x480 JPEGs, %d bytes on average) at 10 frames/s, %.0f s" % (
            len(times), sum(map(len, frames)) // len(frames), times[-1] - times[0]))
        process, url = startRecorder(root, work)
        baseline = Baseline(root)
        results = benchHttp(url, times, args.seeks, baseline)
        if args.browser:
            results["click"] = benchBrowser(url, times, args.browser_seeks)
        base = summary(results["baseline"])[0]
        print("%d seeks at random moments, each path in a random order per seek" % args.seeks)
        labels = {"baseline": "baseline (index + segment read, in process)",
                  "frame.jpg": "frame.jpg (HTTP, kept-alive connection)",
                  "play.mjpg": "play.mjpg (HTTP, new connection, first part)",
                  "click": "click in chromium to first frame loaded (%d seeks)" % args.browser_seeks}
        for name, values in results.items():
            median, p90 = summary(values)
            print("%-52s median %7.2f ms  p90 %7.2f ms  ratio %6.1f" % (labels[name], 1000 * median, 1000 * p90,
                                                                         median / base))
    finally:
        if process is not None:
            stopRecorder(process)
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
