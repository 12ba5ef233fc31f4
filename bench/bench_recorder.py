"""Benchmark: one recorder process, 16 simulated cameras at 10 frames/s of 50 KB.

Measures the CPU share of the recorder process (``twistd -n tcpcam-record``)
and the frames lost between the cameras' sources and the disk, against a
minimal loop that writes the same frames to disk (write to a temporary name,
rename) at the same rate, measured in the same run.

    python bench/bench_recorder.py [--cameras 16] [--fps 10] [--size 50000] [--seconds 20]

Linux only (reads /proc for CPU times). Everything runs on loopback; the
whole run takes about 2 x SECONDS + 10 seconds.
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
    """A 50 KB-ish JPEG-shaped frame naming its camera and number."""
    return b"\xff\xd8" + b"%04d%010d" % (camera, number) + body + b"\xff\xd9"


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

    body = os.urandom(size - 18)
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
            return frame(self.camera, counts[self.camera], body)

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
    """Frames on disk per camera."""
    recorded = []
    for camera in range(count):
        total = 0
        for _, _, names in os.walk(os.path.join(out, "c%02d" % camera)):
            total += sum(1 for name in names if name.endswith(".jpg"))
        recorded.append(total)
    return recorded


def benchRecorder(args, work):
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
                "--out", out, "--no-web"]
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
        # Let the recorder drain what is in flight, then count.
        deadline = time.monotonic() + 5
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
        disconnects = handle.read().count("disconnected after")
    return {
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


def build_parser():
    """The benchmark's command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
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
        recorder = benchRecorder(args, work)
        baseline = benchBaseline(args, work)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print("%d cameras x %g frames/s x %d bytes, %g s measured" % (
        args.cameras, args.fps, args.size, args.seconds))
    print("recorder : CPU %.1f%% of one core; frames produced %d (%.1f%% of the nominal %d),"
          " recorded %d, lost %d; %d disconnects" % (
              100 * recorder["cpu_share"], recorder["produced"],
              100.0 * recorder["produced"] / recorder["ideal"], recorder["ideal"],
              recorder["recorded"], recorder["lost"], recorder["disconnects"]))
    print("baseline : CPU %.1f%% of one core; frames written %d (plain write + rename loop)" % (
        100 * baseline["cpu_share"], baseline["written"]))
    print("ratio    : recorder CPU / baseline CPU = %.2f" % (
        recorder["cpu_share"] / max(baseline["cpu_share"], 1e-9)))


if __name__ == "__main__":
    main()
