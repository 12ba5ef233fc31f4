"""Benchmark the recorder: recording with motion off and on, motion cost, export speed.

Three parts, each against a baseline measured in the same run:

- ``recorder``: one recorder process (``twistd -n tcpcam-record``, segment
  store), 16 cameras (reference servers in another process, real 640x480
  JPEGs of about 50 KB with a moving box, 10 frames/s each), with motion
  detection off, then on: CPU share of the recorder process and frames lost
  between the cameras' sources and the index. Baseline: a plain Python loop
  writing the same frames (write to a temporary name, rename) at the same rate.
- ``motion``: motion analysis per frame (``MotionDetector.analyse``: draft
  decode at 1/8 + background model) against a bare full decode loop
  (Pillow ``Image.open().load()``) of the same frames.
- ``export``: frames/s of ``tcpcam.record.export.encode`` (PyAV, libx264
  veryfast) against the ``ffmpeg`` command line encoding the same frames
  (``-f mjpeg -framerate 10 -c:v libx264 -preset veryfast -crf 23``).

    python bench/bench_recorder.py [--part all|recorder|motion|export] [--seconds 20]

Linux only (reads /proc for CPU times). Everything runs on loopback; the
recorder part takes about 3 x SECONDS + 20 seconds.
"""

import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time

TWISTD = "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def frame(camera, number, body):
    """A 50 KB-ish JPEG-shaped frame naming its camera and number (the baseline's frames)."""
    return b"\xff\xd8" + b"%04d%010d" % (camera, number) + body + b"\xff\xd9"


def realFrames(count=50, size=50_000):
    """``count`` real 640x480 JPEGs of about ``size`` bytes: a noisy texture and a box moving across it."""
    import io

    import numpy as np
    from PIL import Image

    rng = np.random.default_rng(1)
    small = rng.integers(0, 255, (60, 80, 3), dtype=np.uint8)
    base = np.asarray(Image.fromarray(small).resize((640, 480), Image.BICUBIC)).astype(np.int16)
    frames = []
    quality = 45
    for index in range(count):
        pixels = base + rng.normal(0, 3, base.shape).astype(np.int16)
        x = 40 + index * 10 % 520
        pixels[200:300, x:x + 80] = (230, 30, 30)
        out = io.BytesIO()
        Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=quality, subsampling=1)
        frames.append(out.getvalue())
        if index == 0 and len(frames[0]) > size * 1.15 and quality > 20:
            quality -= 10
    return frames


def cpuSeconds(pid):
    """User + system CPU seconds of process ``pid`` so far."""
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def runCameras(count, fps, size, portsFile, countsFile):
    """The cameras' process: ``count`` reference servers with counting sources."""
    from twisted.internet import defer, reactor
    from twisted.internet.endpoints import serverFromString
    from zope.interface import implementer

    from tcpcam.server import TCPCamServerFactory
    from tcpcam.server.sources.base import IFrameSource

    pictures = realFrames(size=size)
    counts = [0] * count
    stopped = []

    @implementer(IFrameSource)
    class CountingSource:
        def __init__(self, camera):
            self.camera = camera

        def nextFrame(self):
            if stopped:
                return defer.Deferred()  # never: the camera has stopped producing
            counts[self.camera] += 1
            return pictures[(counts[self.camera] + self.camera) % len(pictures)]

    def stopProducing(*_):
        stopped.append(True)
        with open(countsFile, "w") as handle:
            json.dump(counts, handle)

    @defer.inlineCallbacks
    def start():
        ports = []
        for camera in range(count):
            factory = TCPCamServerFactory(CountingSource(camera), interval=1.0 / fps)
            port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
            ports.append(port.getHost().port)
        with open(portsFile + ".part", "w") as handle:
            json.dump(ports, handle)
        os.rename(portsFile + ".part", portsFile)

    signal.signal(signal.SIGUSR1, lambda *_: reactor.callFromThread(stopProducing))
    reactor.callWhenRunning(start)
    reactor.run()


def waitForFile(path, timeout):
    deadline = time.monotonic() + timeout
    while not os.path.exists(path):
        if time.monotonic() > deadline:
            raise SystemExit("timed out waiting for %s" % path)
        time.sleep(0.05)
    with open(path) as handle:
        return json.load(handle)


def countRecorded(out, count):
    """Frames in each camera's index."""
    import sqlite3

    recorded = []
    for camera in range(count):
        path = os.path.join(out, "c%02d" % camera, "index.sqlite3")
        total = 0
        if os.path.exists(path):
            db = sqlite3.connect("file:%s?mode=ro" % path, uri=True, timeout=5)
            try:
                total = db.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
            except sqlite3.OperationalError:
                total = 0
            finally:
                db.close()
        recorded.append(total)
    return recorded


def benchRecorder(args, work, motion):
    work = os.path.join(work, "motion" if motion else "plain")
    os.makedirs(work)
    portsFile = os.path.join(work, "ports.json")
    countsFile = os.path.join(work, "counts.json")
    cameras = subprocess.Popen(
        [sys.executable, __file__, "--run-cameras", portsFile, countsFile,
         "--cameras", str(args.cameras), "--fps", str(args.fps), "--size", str(args.size)])
    recorder = None
    try:
        ports = waitForFile(portsFile, 30)
        out = os.path.join(work, "recordings")
        argv = [sys.executable, "-c", TWISTD, "-n", "--pidfile=", "tcpcam-record",
                "--out", out, "--no-web", "--motion", "true" if motion else "false"]
        for camera, port in enumerate(ports):
            argv += ["--camera", "c%02d=tcp:host=127.0.0.1:port=%d" % (camera, port)]
        with open(os.path.join(work, "recorder.log"), "w") as log:
            recorder = subprocess.Popen(argv, stdout=log, stderr=subprocess.STDOUT, cwd=work)
        time.sleep(args.warmup)
        cpu0, wall0 = cpuSeconds(recorder.pid), time.monotonic()
        time.sleep(args.seconds)
        cameras.send_signal(signal.SIGUSR1)
        counts = waitForFile(countsFile, 10)
        cpu1, wall1 = cpuSeconds(recorder.pid), time.monotonic()
        # Let the recorder drain what is in flight (and commit: once a second), then count.
        deadline = time.monotonic() + 8
        recorded = countRecorded(out, args.cameras)
        while time.monotonic() < deadline and sum(recorded) < sum(counts):
            time.sleep(0.2)
            recorded = countRecorded(out, args.cameras)
    finally:
        for process in (recorder, cameras):
            if process is not None:
                process.send_signal(signal.SIGTERM)
                try:
                    process.wait(timeout=20)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait(timeout=10)
    with open(os.path.join(work, "recorder.log")) as handle:
        text = handle.read()
    disconnects = text.count("disconnected after")
    return {
        "behind": text.count("disk writer is behind"),
        "cpu_share": (cpu1 - cpu0) / (wall1 - wall0),
        "produced": sum(counts),
        "recorded": sum(recorded),
        "lost": sum(counts) - sum(recorded),
        "ideal": int(args.cameras * args.fps * (wall1 - wall0 + args.warmup)),
        "disconnects": disconnects,
    }


def benchBaseline(args, work):
    """The same frames written to disk by a plain loop at the same rate, in this process."""
    out = os.path.join(work, "baseline")
    body = os.urandom(args.size - 18)
    folders = []
    for camera in range(args.cameras):
        folders.append(os.path.join(out, "c%02d" % camera, "day"))
        os.makedirs(folders[-1])
    period = 1.0 / args.fps
    start = time.monotonic()
    cpu0 = time.process_time()
    tick = 0
    written = 0
    while time.monotonic() - start < args.seconds:
        for camera, folder in enumerate(folders):
            data = frame(camera, tick, body)
            final = os.path.join(folder, "%08d_%06d.jpg" % (tick, camera))
            temp = os.path.join(folder, "." + os.path.basename(final) + ".tmp")
            with open(temp, "wb") as handle:
                handle.write(data)
            os.replace(temp, final)
            written += 1
        tick += 1
        delay = start + tick * period - time.monotonic()
        if delay > 0:
            time.sleep(delay)
    wall = time.monotonic() - start
    return {"cpu_share": (time.process_time() - cpu0) / wall, "written": written}


def benchMotion(frames, rounds=5):
    """Seconds per frame: motion analysis, and a bare full decode of the same frames (best of ``rounds``)."""
    import io

    from PIL import Image

    from tcpcam.record.motion import MotionDetector

    def bare():
        for data in frames:
            Image.open(io.BytesIO(data)).load()

    def motion():
        detector = MotionDetector()
        for data in frames:
            detector.analyse(data)

    results = {}
    for name, loop in (("decode", bare), ("motion", motion)):
        best = None
        for _ in range(rounds):
            start = time.perf_counter()
            loop()
            elapsed = (time.perf_counter() - start) / len(frames)
            best = elapsed if best is None else min(best, elapsed)
        results[name] = best
    return results


def benchExport(frames, work, count=300):
    """Frames/s of the export engine and of the ffmpeg command line on the same ``count`` frames."""
    from tcpcam.record.export import encode

    items = [(index * 0.1, frames[index % len(frames)]) for index in range(count)]
    start = time.perf_counter()
    result = encode(items, os.path.join(work, "export.mp4"))
    ours = time.perf_counter() - start
    stream = os.path.join(work, "all.mjpg")
    with open(stream, "wb") as handle:
        for _, data in items:
            handle.write(data)
    ffmpeg = shutil.which("ffmpeg")
    theirs = None
    if ffmpeg is not None:
        start = time.perf_counter()
        subprocess.run([ffmpeg, "-v", "error", "-y", "-f", "mjpeg", "-framerate", "10", "-i", stream, "-c:v",
                        "libx264", "-preset", "veryfast", "-crf", "23", "-pix_fmt", "yuv420p",
                        os.path.join(work, "ffmpeg.mp4")], check=True)
        theirs = time.perf_counter() - start
    return {"frames": result.frames, "ours": count / ours, "ffmpeg": None if theirs is None else count / theirs}


def build_parser():
    """The benchmark's command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--part", choices=("all", "recorder", "motion", "export"), default="all")
    parser.add_argument("--cameras", type=int, default=16)
    parser.add_argument("--fps", type=float, default=10.0)
    parser.add_argument("--size", type=int, default=50_000)
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--warmup", type=float, default=3.0)
    parser.add_argument("--run-cameras", nargs=2, metavar=("PORTS", "COUNTS"), help=argparse.SUPPRESS)
    return parser


def main():
    parser = build_parser()
    args = parser.parse_args()
    if args.run_cameras:
        runCameras(args.cameras, args.fps, args.size, *args.run_cameras)
        return
    if not 1 <= args.seconds <= 50:
        parser.error("--seconds must be 1 to 50 (the run is bounded)")
    work = tempfile.mkdtemp(prefix="tcpcam-bench-")
    try:
        frames = realFrames(size=args.size)
        print("frames: %d real 640x480 JPEGs, %d bytes on average" % (
            len(frames), sum(map(len, frames)) // len(frames)))
        if args.part in ("all", "recorder"):
            plain = benchRecorder(args, work, motion=False)
            motion = benchRecorder(args, work, motion=True)
            baseline = benchBaseline(args, work)
            print("%d cameras x %g frames/s, %g s measured" % (args.cameras, args.fps, args.seconds))
            for name, result in (("motion off", plain), ("motion on", motion)):
                print("recorder, %-10s: CPU %.1f%% of one core; frames produced %d (%.1f%% of the nominal %d),"
                      " recorded %d, lost %d; %d disconnects; writer behind %d times" % (
                          name, 100 * result["cpu_share"], result["produced"],
                          100.0 * result["produced"] / result["ideal"], result["ideal"],
                          result["recorded"], result["lost"], result["disconnects"], result["behind"]))
            print("baseline            : CPU %.1f%% of one core; frames written %d (plain write + rename loop)" % (
                100 * baseline["cpu_share"], baseline["written"]))
            print("ratios              : motion on / off CPU = %.2f; recorder (off) / baseline CPU = %.2f" % (
                motion["cpu_share"] / max(plain["cpu_share"], 1e-9),
                plain["cpu_share"] / max(baseline["cpu_share"], 1e-9)))
        if args.part in ("all", "motion"):
            cost = benchMotion(frames)
            print("motion analysis     : %.2f ms/frame; bare full decode %.2f ms/frame; ratio %.2f" % (
                1000 * cost["motion"], 1000 * cost["decode"], cost["motion"] / cost["decode"]))
        if args.part in ("all", "export"):
            speed = benchExport(frames, work)
            if speed["ffmpeg"] is None:
                print("export              : %.0f frames/s (%d frames); ffmpeg not installed" % (
                    speed["ours"], speed["frames"]))
            else:
                print("export              : %.0f frames/s; ffmpeg command line %.0f frames/s; ratio %.2f" % (
                    speed["ours"], speed["ffmpeg"], speed["ours"] / speed["ffmpeg"]))
    finally:
        shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
