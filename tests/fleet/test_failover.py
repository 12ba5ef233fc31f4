"""Three recorders, thirty simulated cameras, real NATS and SeaweedFS: spread, SIGKILL, takeover, rebalance.

Every camera is a reference server whose numbered frames go to all its
clients at once, so a frame stored twice in the object store would mean two
recorders recorded that camera at the same time. Gaps are measured from the
stored frames' times (recorders and test share this machine's clock).
"""

import asyncio
import time

import pytest_twisted
from fleet_support import FLEET_ONLY, FleetWatch, Recorder, asDeferred, cameraFarm, storedFrames

pytestmark = FLEET_ONLY

LEASE = 3
CAMERAS = 30
INTERVAL = 0.2


async def waitFor(predicate, timeout, what):
    deadline = time.monotonic() + timeout
    while True:
        value = await predicate()
        if value:
            return value
        if time.monotonic() > deadline:
            raise AssertionError("timed out after %g s waiting for %s" % (timeout, what))
        await asyncio.sleep(0.1)


async def register(url, cameras):
    from tcpcam.fleet.natslink import REGISTRY_BUCKET, NatsLink
    from tcpcam.fleet.registry import CameraEntry, Registry

    link = NatsLink([url], "test")
    await link.connect(attempts=5)
    try:
        registry = Registry(await link.bucket(REGISTRY_BUCKET, history=1))
        for index, (_, _, endpoint) in enumerate(cameras):
            await registry.add(CameraEntry("cam%02d" % index, endpoint, pin="1235"), replace=True)
    finally:
        await link.close()


def loads(holders, names):
    return sorted(sum(1 for holder in holders.values() if holder == name) for name in names)


@pytest_twisted.inlineCallbacks
def test_spread_takeover_and_rebalance(natsServer, weed, tmp_path):
    cameras = yield cameraFarm(CAMERAS, INTERVAL)
    recorders = [Recorder(tmp_path, name, natsServer.url, weed, lease=LEASE) for name in ("ra", "rb", "rc")]
    try:
        yield asDeferred(scenario(natsServer, weed, cameras, recorders))
    finally:
        for recorder in recorders:
            recorder.stop()
        for _, port, _ in cameras:
            yield port.stopListening()


async def scenario(natsServer, weed, cameras, recorders):
    await register(natsServer.url, cameras)
    watch = await FleetWatch(natsServer.url).open()
    names = [recorder.name for recorder in recorders]
    try:
        for recorder in recorders:
            recorder.start()

        async def spread():
            holders = await watch.holders()
            return len(holders) == CAMERAS and loads(holders, names) == [10, 10, 10] and holders

        await waitFor(spread, 40, "30 cameras spread 10/10/10")
        spreadAt = time.time()
        await asyncio.sleep(2)
        before = await watch.holders()
        orphans = {camera for camera, holder in before.items() if holder == "rc"}
        recorders[2].kill()
        killedAt = time.time()

        async def takenOver():
            holders = await watch.holders()
            return all(holders.get(camera) in ("ra", "rb") for camera in orphans) and holders

        after = await waitFor(takenOver, LEASE + 10, "ra and rb to take rc's cameras")
        coveredIn = time.time() - killedAt
        assert coveredIn < LEASE + 2, "rc's cameras took %.1f s to move (lease %d s)" % (coveredIn, LEASE)
        assert loads(after, ["ra", "rb"]) == [15, 15]
        await asyncio.sleep(1)
        recorders[2].start()
        await waitFor(spread, 30, "the fleet to rebalance 10/10/10 after rc restarted")
        await asyncio.sleep(2)
    finally:
        await watch.close()
    for recorder in recorders:
        recorder.stop()
    frames = await asyncio.get_event_loop().run_in_executor(None, storedFrames, weed.client())
    assert sorted(frames) == list(range(CAMERAS))
    for camera, stored in frames.items():
        numbers = [number for number, _, _ in stored]
        assert len(numbers) == len(set(numbers)), "camera %d: a frame was recorded twice" % camera
        byTime = sorted((timeMs / 1000.0, recorder) for _, timeMs, recorder in stored)
        for (earlier, before), (later, after) in zip(byTime, byTime[1:], strict=False):
            gap = later - earlier
            if earlier <= killedAt <= later:
                assert gap < LEASE + 2, "camera %d: %.1f s unrecorded after the kill" % (camera, gap)
            else:  # a rebalance (at the start, after the restart), or none: never longer than the lease
                assert gap < LEASE, "camera %d: %.1f s unrecorded %.1f s after the spread, %s then %s" % (
                    camera, gap, earlier - spreadAt, before, after)
            if spreadAt + 1 < earlier and later < killedAt:
                assert before == after  # the spread fleet moves nothing on its own
    log = recorders[2].logText()
    assert "Traceback" not in recorders[0].logText() + recorders[1].logText() + log
