"""Benchmark the recorder fleet: 200 cameras x 5 frames/s x 30 KB over four recorders, NATS and SeaweedFS on loopback.

Reports, in one run:

- **frames lost** (goal 0) over a steady window: frames the recorders dropped
  (their ``dropped_frames``), frames written but not in the object store after
  a clean stop (index rows against ``written_frames``), and, for a sample of
  cameras, frame numbers missing between the first and last stored;
- **CPU per camera**: the four recorder processes' CPU time over the window,
  per camera, in percent of one core;
- **upload throughput**: the object store is stopped for ``--outage``
  seconds and started again; the rate at which the fleet empties the backlog
  from its spools (recording going on), against a plain loop of
  ``put_object`` calls (one boto3 client, one thread) of the same segment
  files, right after, under the same recording load; the ratio;
- **move time**: one recorder SIGKILLed, seconds until every one of its
  cameras is held by another recorder and until each is connected again,
  against the lease time.

The cameras are reference servers in a second process (numbered frames, the
same bytes to every client), so the recorders' CPU is theirs alone.

    python bench/bench_fleet.py [--cameras 200] [--recorders 4] [--seconds 30] [--lease 10]

Needs the fleet extra (``pip install tcpcam[fleet]``). Linux only (/proc).
"""

import argparse
import asyncio
import json
import os
import re
import subprocess
import sys
import tempfile
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "tests", "fleet"))
sys.path.insert(0, os.path.join(HERE, "..", "tests"))

CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


def build_parser():
    """The benchmark's options (the README's benchmark table shows the command)."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cameras", type=int, default=200)
    parser.add_argument("--recorders", type=int, default=4)
    parser.add_argument("--fps", type=float, default=5.0)
    parser.add_argument("--frame-bytes", type=int, default=30_000)
    parser.add_argument("--seconds", type=float, default=30.0, help="length of the steady window")
    parser.add_argument("--lease", type=float, default=10.0, help="lease time in seconds")
    parser.add_argument("--segment-seconds", type=float, default=5.0)
    parser.add_argument("--outage", type=float, default=15.0, help="seconds the object store is down")
    parser.add_argument("--drain", type=float, default=30.0, help="seconds the backlog's upload is measured at most")
    parser.add_argument("--sample", type=int, default=10, help="cameras whose frame numbers are checked one by one")
    parser.add_argument("--run-cameras", metavar="FILE", help=argparse.SUPPRESS)
    return parser


def runCameras(args):
    """The second process: the camera farm; writes its endpoints to FILE, then serves until killed."""
    from fleet_support import cameraFarm
    from twisted.internet import reactor

    def ready(cameras):
        with open(args.run_cameras + ".tmp", "w") as handle:
            json.dump([endpoint for _, _, endpoint in cameras], handle)
        os.rename(args.run_cameras + ".tmp", args.run_cameras)

    reactor.callWhenRunning(lambda: cameraFarm(args.cameras, 1.0 / args.fps, args.frame_bytes).addCallback(ready))
    reactor.run()


def cpuSeconds(pid):
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def getJson(url):
    with urllib.request.urlopen(url, timeout=10) as answer:
        return json.loads(answer.read())


async def bench(args, folder):
    from fleet_support import BUCKET, FleetWatch, NatsServer, Recorder, WeedMini, dieWithParent, frameNumber
    from test_failover import register

    loop = asyncio.get_event_loop()
    nats = NatsServer(os.path.join(folder, "nats"))
    os.makedirs(nats.folder)
    nats.start()
    weed = WeedMini(os.path.join(folder, "weed"))
    os.makedirs(weed.folder)
    weed.start()
    endpoints = os.path.join(folder, "cameras.json")
    farm = subprocess.Popen([sys.executable, os.path.abspath(__file__), "--run-cameras", endpoints,
                             "--cameras", str(args.cameras), "--fps", str(args.fps),
                             "--frame-bytes", str(args.frame_bytes)], preexec_fn=dieWithParent)
    recorders = []
    try:
        for _ in range(600):
            if os.path.exists(endpoints):
                break
            await asyncio.sleep(0.1)
        cameras = [(None, None, endpoint) for endpoint in json.load(open(endpoints))]
        await register(nats.url, cameras)
        names = ["bench%d" % index for index in range(args.recorders)]
        extra = ["--segment-seconds", str(args.segment_seconds), "--web", "tcp:0:interface=127.0.0.1",
                 "--web-login", "false"]
        recorders = [Recorder(folder, name, nats.url, weed, lease=args.lease, extra=extra) for name in names]
        for recorder in recorders:
            recorder.start()
        watch = await FleetWatch(nats.url).open()
        share = -(-args.cameras // args.recorders)
        started = time.monotonic()
        while True:
            holders = await watch.holders()
            counts = [sum(1 for holder in holders.values() if holder == name) for name in names]
            if len(holders) == args.cameras and max(counts) <= share:
                break
            if time.monotonic() - started > 120:
                raise SystemExit("the cameras did not spread in 120 s: %s" % counts)
            await asyncio.sleep(0.5)
        spreadSeconds = time.monotonic() - started
        urls = []
        for recorder in recorders:
            found = re.search(r"web interface on (http://127\.0\.0\.1:\d+/)", recorder.logText())
            urls.append(found.group(1))
        await asyncio.sleep(3)  # every camera connected and streaming

        def snapshot():
            statuses = [getJson(url + "status.json") for url in urls]
            return ([cpuSeconds(recorder.process.pid) for recorder in recorders], statuses, time.monotonic())

        cpu1, status1, t1 = await loop.run_in_executor(None, snapshot)
        wall1 = time.time()
        await asyncio.sleep(args.seconds)
        cpu2, status2, t2 = await loop.run_in_executor(None, snapshot)
        wall2 = time.time()
        window = t2 - t1

        def totals(statuses, key):
            return sum(camera.get(key) or 0 for status in statuses for camera in status["cameras"].values()
                       if camera.get("recorder") == status["fleet"]["recorder"])

        received = totals(status2, "frames") - totals(status1, "frames")
        dropped = totals(status2, "dropped_frames") - totals(status1, "dropped_frames")
        cpu = sum(cpu2) - sum(cpu1)
        uploadedBytes = sum(s["fleet"]["uploaded_bytes"] for s in status2)
        uploadedInWindow = uploadedBytes - sum(s["fleet"]["uploaded_bytes"] for s in status1)
        def plainPuts():
            files = []
            for recorder in recorders[:-1]:
                for root, folders, found in os.walk(recorder.out):
                    folders[:] = [name for name in folders if not name.startswith(".")]  # not the spool
                    files.extend(os.path.join(root, name) for name in found if name.endswith(".mjpeg"))
            files = sorted(files)[:limit]
            size = 0
            begin = time.monotonic()
            for number, path in enumerate(files):
                with open(path, "rb") as body:
                    size += os.fstat(body.fileno()).st_size
                    client.put_object(Bucket=BUCKET, Key="baseline/%06d.mjpeg" % number, Body=body)
            return size, time.monotonic() - begin, len(files)

        # The baseline, in the same run and under the same recording load: a plain loop of PUTs of the same segments.
        limit = 200
        # Upload capacity: the store down for a while (a backlog builds up in the spools), then back: how fast
        # the fleet empties its spools while recording goes on; then the plain loop, under the same recording load.
        weed.stop(kill=True)
        await asyncio.sleep(args.outage)
        await loop.run_in_executor(None, weed.start)
        statuses = await loop.run_in_executor(None, lambda: [getJson(url + "status.json") for url in urls])
        backlog = sum(status["fleet"]["spool_bytes"] for status in statuses)
        before = sum(status["fleet"]["uploaded_bytes"] for status in statuses)
        backAt = time.monotonic()
        drainStart = None  # from the first upload after the store came back (not the retry backoff before it)
        emptied = False
        while time.monotonic() - backAt < 600:
            statuses = await loop.run_in_executor(None, lambda: [getJson(url + "status.json") for url in urls])
            uploaded = sum(status["fleet"]["uploaded_bytes"] for status in statuses)
            if drainStart is None and uploaded > before:
                drainStart, before = time.monotonic(), uploaded
            emptied = all(status["fleet"]["spool_waiting"] == 0 for status in statuses)
            if emptied or (drainStart is not None and time.monotonic() - drainStart > args.drain):
                break  # empty, or measured for long enough (recording may outpace the store)
            await asyncio.sleep(0.1)
        drainSeconds = time.monotonic() - (drainStart or backAt)
        drainedBytes = uploaded - before
        firstUpload = (drainStart or backAt) - backAt
        client = weed.client()
        baseBytes, baseSeconds, baseFiles = await loop.run_in_executor(None, plainPuts)
        # Move time: kill the last recorder, wait until its cameras are held elsewhere and connected.
        victim = recorders[-1]
        before = await watch.holders()
        orphans = {name for name, holder in before.items() if holder == victim.name}
        sample = sorted(name for name, holder in before.items() if holder == recorders[0].name)[:args.sample]
        victim.kill()
        killedWall = time.time()
        killed = time.monotonic()
        while time.monotonic() - killed < args.lease * 3 + 60:
            holders = await watch.holders()
            if all(holders.get(name) not in (None, victim.name) for name in orphans):
                break
            await asyncio.sleep(0.5)
        await asyncio.sleep(5)
        # The precise moments come from the event stream (recorders and bench share this machine's clock).
        heldAt, connectedAt = await moveTimes(watch, orphans, killedWall)
        await watch.close()
        farm.kill()  # no more frames: what was recorded can all go up
        farm.wait(5)
        # Nothing lost: let the survivors' spools empty (bounded) before a clean stop.
        drainStart = time.monotonic()
        drained = None
        while time.monotonic() - drainStart < 600:
            statuses = await loop.run_in_executor(None, lambda: [getJson(url + "status.json") for url in urls[:-1]])
            if all(status["fleet"]["spool_waiting"] == 0 for status in statuses):
                drained = time.monotonic() - drainStart
                break
            await asyncio.sleep(1)
        written = {}
        for recorder in recorders[:-1]:
            recorder.stop(grace=60)

        def storedRows():
            rows = {}
            sampleFrames = {}
            paginator = client.get_paginator("list_objects_v2")
            for page in paginator.paginate(Bucket=BUCKET):
                for item in page.get("Contents", ()):
                    key = item["Key"]
                    if not key.endswith(".json") or "/events/" in key:
                        continue
                    index = json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
                    rows[index["recorder"]] = rows.get(index["recorder"], 0) + len(index["frames"])
                    camera = key.split("/")[0]
                    if camera in sample:
                        data = client.get_object(Bucket=BUCKET, Key=index["key"])["Body"].read()
                        numbers = sampleFrames.setdefault(camera, [])
                        for timeMs, offset, length, *_ in index["frames"]:
                            if wall1 <= timeMs / 1000.0 <= wall2:  # the steady window only
                                numbers.append(frameNumber(data[offset:offset + length])[1])
            return rows, sampleFrames

        rows, sampleFrames = await loop.run_in_executor(None, storedRows)
        for recorder in recorders[:-1]:
            out = recorder.out
            total = 0
            for camera in os.listdir(out):
                index = os.path.join(out, camera, "index.sqlite3")
                if os.path.exists(index):
                    import sqlite3

                    db = sqlite3.connect("file:%s?mode=ro" % index, uri=True)
                    total += db.execute("SELECT COUNT(*) FROM frames").fetchone()[0]
                    db.close()
            written[recorder.name] = total
        notUploaded = sum(max(0, written[name] - rows.get(name, 0)) for name in written)
        gaps = 0
        for numbers in sampleFrames.values():
            numbers.sort()
            gaps += (numbers[-1] - numbers[0] + 1 - len(set(numbers))) if numbers else 0

        fleetRate = drainedBytes / drainSeconds / 1e6
        baseRate = baseBytes / baseSeconds / 1e6
        result = {
            "cameras": args.cameras, "recorders": args.recorders, "fps": args.fps, "frame_bytes": args.frame_bytes,
            "window_s": round(window, 1), "spread_s": round(spreadSeconds, 1),
            "frames_received_in_window": received, "frames_dropped_in_window": dropped,
            "frames_not_uploaded": notUploaded, "sample_cameras": len(sampleFrames), "sample_frames_missing": gaps,
            "recorded_mb_per_s": round(received * args.frame_bytes / window / 1e6, 1),
            "uploaded_mb_per_s_in_window": round(uploadedInWindow / window / 1e6, 1),
            "store_outage_s": args.outage, "spool_backlog_mb_after_outage": round(backlog / 1e6, 1),
            "first_upload_after_store_back_s": round(firstUpload, 2), "upload_measured_s": round(drainSeconds, 1),
            "spools_emptied": emptied,
            "cpu_percent_per_camera": round(100.0 * cpu / window / args.cameras, 3),
            "cpu_percent_all_recorders": round(100.0 * cpu / window, 1),
            "upload_mb_per_s_emptying_spools": round(fleetRate, 1),
            "spool_drained_after_move_s": None if drained is None else round(drained, 1),
            "plain_put_mb_per_s": round(baseRate, 1), "plain_put_files": baseFiles,
            "upload_ratio": round(fleetRate / baseRate, 2) if baseRate else None,
            "lease_s": args.lease, "moved_cameras": len(orphans),
            "all_held_elsewhere_s": None if heldAt is None else round(heldAt, 2),
            "all_connected_again_s": None if connectedAt is None else round(connectedAt, 2),
        }
        print(json.dumps(result, indent=1))
        return result
    finally:
        for recorder in recorders:
            recorder.stop()
        farm.kill()
        farm.wait(5)
        weed.stop()
        nats.stop()


async def moveTimes(watch, orphans, since):
    """Seconds from ``since`` until every orphan had a ``lease_taken``, and a ``connect``, on another recorder."""
    subscription = await watch.js.pull_subscribe("tcpcam.events.>", stream="TCPCAM_EVENTS")
    taken, connected = {}, {}
    try:
        while True:
            try:
                messages = await subscription.fetch(1000, timeout=2)
            except asyncio.TimeoutError:  # nats.errors.TimeoutError, or the bare one fetch also raises
                break
            for message in messages:
                event = json.loads(message.data)
                if event["camera"] in orphans and event["ts"] > since:
                    target = {"lease_taken": taken, "connect": connected}.get(event["event"])
                    if target is not None and event["camera"] not in target:
                        target[event["camera"]] = event["ts"] - since
                await message.ack()
    finally:
        await subscription.unsubscribe()
    held = max(taken.values()) if len(taken) == len(orphans) else None
    up = max(connected.values()) if len(connected) == len(orphans) else None
    return held, up


def main():
    args = build_parser().parse_args()
    if args.run_cameras:
        return runCameras(args)
    with tempfile.TemporaryDirectory(prefix="bench-fleet-") as folder:
        asyncio.run(bench(args, folder))


if __name__ == "__main__":
    main()
