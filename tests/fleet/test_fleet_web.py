"""The fleet from the outside: ``tcpcam fleet`` on the registry, and one web interface over every camera.

Two recorders with their web interfaces, and a ``tcpcam web`` process that
records nothing: each shows every camera, live frames come from the lease
holder over NATS, ``/metrics`` has the fleet's metrics. With an object store,
a member that does not record a camera and ``tcpcam web`` show its timeline,
play it back and export it, all read from the object store.
"""

import asyncio
import json
import os
import re
import subprocess
import sys
import time
import urllib.error
import urllib.request

import pytest
import pytest_twisted
from fleet_support import (
    BUCKET,
    FLEET_ONLY,
    TCPCAM,
    FleetWatch,
    NatsServer,
    Recorder,
    asDeferred,
    cameraFarm,
    dieWithParent,
    frameNumber,
    freePorts,
    pictureNumber,
    segmentKeys,
    storedPictures,
    tcpcam,
)
from test_failover import waitFor
from twisted.internet import defer, reactor, task, threads
from web_support import get, header, request, wholeStream

from tcpcam.record.layout import dayName

pytestmark = FLEET_ONLY


def fetch(url):
    try:
        with urllib.request.urlopen(url, timeout=5) as answer:
            return answer.status, answer.read()
    except urllib.error.HTTPError as error:
        return error.code, error.read()


def webUrl(recorder):
    found = re.search(r"web interface on (http://127\.0\.0\.1:\d+/)", recorder.logText())
    return found.group(1) if found else None


@pytest_twisted.inlineCallbacks
def test_fleet_command_and_one_web_interface_over_the_fleet(natsServer, tmp_path):
    cameras = yield cameraFarm(3, 0.2)
    web = ["--web", "tcp:0:interface=127.0.0.1", "--web-login", "false"]
    recorders = [Recorder(tmp_path, name, natsServer.url, lease=3, extra=web) for name in ("wa", "wb")]
    for recorder in recorders:
        recorder.start()
    port = freePorts(1)[0]
    viewer = subprocess.Popen(
        [sys.executable, "-c", TCPCAM, "web", "--fleet", natsServer.url, "--out", str(tmp_path / "viewer"),
         "--web", "tcp:%d:interface=127.0.0.1" % port, "--web-login", "false", "--lease-seconds", "3"],
        stdout=open(tmp_path / "viewer.log", "wb"), stderr=subprocess.STDOUT, preexec_fn=dieWithParent)
    try:
        yield asDeferred(scenario(natsServer, cameras, recorders, "http://127.0.0.1:%d/" % port, tmp_path))
    finally:
        viewer.terminate()
        viewer.wait(10)
        for recorder in recorders:
            recorder.stop()
        for _, listening, _ in cameras:
            yield listening.stopListening()


async def scenario(natsServer, cameras, recorders, viewerUrl, tmp_path):
    loop = asyncio.get_event_loop()

    async def run(*args, env=None):
        return await loop.run_in_executor(None, lambda: tcpcam("fleet", "--fleet", natsServer.url, *args, env=env))

    added = await run("add", "cam00", cameras[0][2], "--pin-ref", "env:CAM_PIN", "--option", "frame_timeout=5")
    assert added.returncode == 0 and "added camera cam00" in added.stdout
    for index in (1, 2):
        assert (await run("add", "cam%02d" % index, cameras[index][2], "--pin", "1235")).returncode == 0
    twice = await run("add", "cam01", cameras[1][2])
    assert twice.returncode == 2 and twice.stderr.strip().count("\n") == 0 and "registered already" in twice.stderr
    bad = await run("add", "cam09", "tcp:host=x:port=1", "--option", "mode=sometimes")
    assert bad.returncode == 2 and "bad --option mode=sometimes" in bad.stderr
    watch = await FleetWatch(natsServer.url).open()
    try:
        # The recorders have no CAM_PIN: cam00 cannot be recorded, and says so; the others are.
        holders = await waitFor(lambda: _held(watch, {"cam01", "cam02"}), 30, "cam01 and cam02 to be recorded")
        assert "cam00" not in holders
        listing = await run("list")
        assert listing.returncode == 0 and re.search(r"cam01 .* (wa|wb)", listing.stdout)
        assert "3 cameras; live recorders: wa, wb" in listing.stdout
        await run("remove", "cam00")
        await run("add", "cam00", cameras[0][2], "--pin", "1235")
        holders = await waitFor(lambda: _held(watch, {"cam00", "cam01", "cam02"}), 30, "every camera recorded")
        target = "wb" if holders["cam00"] == "wa" else "wa"
        moved = await run("move", "cam00", target)
        assert moved.returncode == 0 and "pinned to " + target in moved.stdout
        await waitFor(lambda: _holderIs(watch, "cam00", target), 15, "cam00 to move to " + target)
        listed = json.loads((await run("list", "--json")).stdout)
        assert [c["pinned"] for c in listed["cameras"] if c["name"] == "cam00"] == [target]
        assert (await run("move", "cam00", "--auto")).returncode == 0
        # New settings for a camera being recorded: its recorder lets it go and it is taken again with them.
        logs = lambda: "".join(recorder.logText() for recorder in recorders)  # noqa: E731
        taken = logs().count("recording camera cam01")
        replaced = await run("add", "cam01", cameras[1][2], "--pin", "1235", "--option", "frame_timeout=7", "--replace")
        assert replaced.returncode == 0

        async def retaken():
            return logs().count("recording camera cam01") > taken and "reason=changed" not in logs()

        await waitFor(retaken, 15, "cam01 to be taken again with its new settings")
        for url in [webUrl(recorder) for recorder in recorders] + [viewerUrl]:
            assert url is not None
            await checkPages(loop, url)
        assert (await run("remove", "cam02")).returncode == 0
        await waitFor(lambda: _gone(watch, "cam02"), 15, "cam02 to stop being recorded")
        missing = await run("remove", "nocam")
        assert missing.returncode == 2 and "no camera nocam" in missing.stderr
    finally:
        await watch.close()
    down = await loop.run_in_executor(None, lambda: tcpcam("fleet", "--fleet", "nats://127.0.0.1:%d" % freePorts(1)[0],
                                                           "list"))
    assert down.returncode == 2 and "cannot reach NATS" in down.stderr
    assert "cannot be recorded here: camera cam00: the PIN variable CAM_PIN is not set" in (
        recorders[0].logText() + recorders[1].logText())


async def checkPages(loop, url):
    """Every camera on this page set: state, a live frame from its holder, the fleet's metrics."""
    async def get(path):
        return await loop.run_in_executor(None, fetch, url + path)

    async def statusHasAll():
        code, body = await get("status.json")
        status = json.loads(body)
        cameras = status["cameras"]
        return (code == 200 and set(cameras) == {"cam00", "cam01", "cam02"}
                and all(c["state"] == "connected" and c["recorder"] in ("wa", "wb") for c in cameras.values())
                and status)

    status = await waitFor(statusHasAll, 15, "every camera connected in %sstatus.json" % url)
    assert status["fleet"]["live_recorders"] == ["wa", "wb"]

    async def picture():
        code, body = await get("cam01/latest.jpg")
        return code == 200 and body

    frame = await waitFor(picture, 10, "a live frame of cam01 at %s" % url)
    assert frameNumber(frame)[0] == 1
    code, metrics = await get("metrics")
    assert code == 200 and b'tcpcam_fleet_camera_held{camera="cam01",holder="' in metrics
    assert b"tcpcam_fleet_connected" in metrics


async def _held(watch, names):
    holders = await watch.holders()
    return names <= set(holders) and holders


async def _holderIs(watch, name, recorder):
    return (await watch.holders()).get(name) == recorder


async def _gone(watch, name):
    return name not in await watch.holders()



def later(seconds):
    return task.deferLater(reactor, seconds, lambda: None)


@defer.inlineCallbacks
def waitLater(predicate, timeout, what, step=0.2):
    """Poll ``predicate`` (blocking, run in a thread) without stopping the reactor; fail after ``timeout`` s."""
    deadline = time.monotonic() + timeout
    while True:
        value = yield threads.deferToThread(predicate)
        if value:
            return value
        if time.monotonic() > deadline:
            pytest.fail("timed out after %g s waiting for %s" % (timeout, what))
        yield later(step)


@pytest_twisted.inlineCallbacks
def test_timeline_playback_and_export_of_a_camera_another_member_records(weed, tmp_path):
    nats = NatsServer(tmp_path / "nats").start()  # a registry of its own: only this test's camera
    cameras = yield cameraFarm(1, 0.1, pictures=True)
    web = ["--web", "tcp:0:interface=127.0.0.1", "--web-login", "false"]
    holder = Recorder(tmp_path, "ra", nats.url, weed=weed, lease=3)
    member = Recorder(tmp_path, "rb", nats.url, weed=weed, lease=3, extra=web)
    port = freePorts(1)[0]
    viewer = subprocess.Popen(
        [sys.executable, "-c", TCPCAM, "web", "--fleet", nats.url, "--out", str(tmp_path / "viewer"),
         "--s3-endpoint", weed.endpoint, "--s3-bucket", BUCKET, "--s3-prefix", "pages",
         "--web", "tcp:%d:interface=127.0.0.1" % port, "--web-login", "false", "--lease-seconds", "3"],
        stdout=open(tmp_path / "viewer.log", "wb"), stderr=subprocess.STDOUT, preexec_fn=dieWithParent,
        env=dict(os.environ, **weed.env()))
    client = weed.client()
    try:
        for recorder in (holder, member):
            recorder.extra += ["--s3-prefix", "pages"]
        holder.start()
        for command in (("add", "yard", cameras[0][2], "--pin", "1235"), ("move", "yard", "ra")):
            done = yield threads.deferToThread(tcpcam, "fleet", "--fleet", nats.url, *command)
            assert done.returncode == 0, done.stderr
        yield waitLater(lambda: len(segmentKeys(client, "pages/yard/")) >= 4, 60, "four segments of yard uploaded")
        member.start()
        memberUrl = yield waitLater(lambda: webUrl(member), 30, "the web interface of rb")
        stored = yield threads.deferToThread(storedPictures, client, "pages/yard/")
        assert {pictureNumber(data)[0] for _, data in stored} == {0}
        for url in (memberUrl, "http://127.0.0.1:%d/" % port):
            yield checkFootage(url + "yard/", stored, tmp_path)
        # The pages of rb showed footage rb never recorded.
        assert "recording camera yard" in holder.logText() and "recording camera yard" not in member.logText()
    finally:
        viewer.terminate()
        viewer.wait(10)
        for recorder in (member, holder):  # rb first: once ra lets yard go, rb would take it
            recorder.stop()
        nats.stop()
        yield cameras[0][1].stopListening()


@defer.inlineCallbacks
def checkFootage(url, stored, tmp_path):
    """The timeline, playback and export of a camera at ``url``: exactly the frames ``stored`` in the object store."""
    times = [timeMs / 1000.0 for timeMs, _ in stored]
    pictures = dict(stored)
    response, body = yield get(url + "timeline")
    assert response.code == 200 and header(response, b"content-type").startswith(b"text/html"), body
    response, body = yield get(url + "days.json")
    assert response.code == 200 and dayName(times[0]) in json.loads(body)["days"], body
    response, body = yield get(url + "spans.json?from=%.3f&to=%.3f" % (times[0] - 60, times[-1] + 60))
    spans = json.loads(body)["spans"]
    assert spans and spans[0][0] == pytest.approx(times[0]) and spans[-1][1] >= times[-1], body
    # One moment, and stepping from it: each the stored frame of that time, its time in X-Timestamp.
    middle = len(times) // 2
    for query, index in (("t=%.3f" % (times[middle] + 0.0005), middle),
                         ("t=%.3f&step=next" % times[middle], middle + 1),
                         ("t=%.3f&step=prev" % times[middle], middle - 1)):
        response, body = yield get(url + "frame.jpg?" + query)
        assert response.code == 200, (query, body)
        assert float(header(response, b"x-timestamp")) == pytest.approx(times[index], abs=0.001)
        assert body == pictures[stored[index][0]]
    # Playback of one second: every stored frame of it, in order.
    start, end = times[middle], times[middle] + 1.0
    parts, headers = yield wholeStream(url + "play.mjpg?from=%.3f&to=%.3f" % (start, end))
    wanted = [(timeMs, data) for timeMs, data in stored if start * 1000 - 0.5 <= timeMs < end * 1000 - 0.5]
    assert len(wanted) >= 5 and parts == [data for _, data in wanted]
    assert [float(part[b"X-Timestamp"]) for part in headers] == pytest.approx([t / 1000.0 for t, _ in wanted])
    # An export of those two seconds: an MP4 of exactly those frames.
    end = times[middle] + 2.0
    form = ("from=%.3f&to=%.3f" % (start, end)).encode()
    response, body = yield request(url + "exports", method=b"POST", body=form,
                                   headers={b"content-type": b"application/x-www-form-urlencoded"})
    assert response.code == 202, body
    job = json.loads(body)
    deadline = time.monotonic() + 60
    while job["state"] in ("new", "running"):
        assert time.monotonic() < deadline, job
        yield later(0.1)
        response, body = yield get(url + job["status"])
        job = json.loads(body)
    count = sum(1 for t in times if start <= t < end)
    assert (job["state"], job["frames"]) == ("done", count), job
    response, data = yield get(url + job["download"])
    assert response.code == 200 and header(response, b"content-type") == b"video/mp4"
    path = tmp_path / ("%s.mp4" % job["id"])
    path.write_bytes(data)
    import av

    with av.open(str(path)) as container:
        assert sum(1 for _ in container.decode(container.streams.video[0])) == count
