"""NATS stopped and started again: recorders keep recording what they hold, and rejoin.

A short outage (well inside the lease's safe window) costs nothing: every
camera stays with its recorder and no frame goes missing. A long one (past
the lease time) makes each recorder stop its cameras at the deadline, as the
lease rule demands, and once NATS is back they take them all again.
"""

import asyncio
import json
import time

import pytest_twisted
from fleet_support import FLEET_ONLY, FleetWatch, Recorder, asDeferred, cameraFarm, storedFrames
from test_failover import loads, register, waitFor

pytestmark = FLEET_ONLY

LEASE = 6


@pytest_twisted.inlineCallbacks
def test_recorders_ride_out_a_nats_restart_and_rejoin(natsServer, weed, tmp_path):
    cameras = yield cameraFarm(6, 0.2)
    recorders = [Recorder(tmp_path, name, natsServer.url, weed, lease=LEASE, extra=["--s3-prefix", "restart"])
                 for name in ("na", "nb")]
    try:
        yield asDeferred(restarts(natsServer, weed, cameras, recorders))
    finally:
        for recorder in recorders:
            recorder.stop()
        for _, port, _ in cameras:
            yield port.stopListening()


async def restarts(natsServer, weed, cameras, recorders):
    loop = asyncio.get_event_loop()
    await register(natsServer.url, cameras)
    for recorder in recorders:
        recorder.start()
    watch = await FleetWatch(natsServer.url).open()

    async def spread():
        holders = await watch.holders()
        return len(holders) == 6 and loads(holders, ["na", "nb"]) == [3, 3] and holders

    before = await waitFor(spread, 30, "6 cameras spread 3/3")
    await asyncio.sleep(2)
    await watch.close()
    shortDown = time.time()
    await loop.run_in_executor(None, natsServer.stop)
    await asyncio.sleep(2)
    await loop.run_in_executor(None, natsServer.start)
    shortUp = time.time()
    watch = await FleetWatch(natsServer.url).open()
    await asyncio.sleep(LEASE)  # longer than a lease: had anything been dropped, it would show
    assert await watch.holders() == before, "a camera changed hands over a short NATS restart"
    await watch.close()
    longDown = time.time()
    await loop.run_in_executor(None, natsServer.stop)
    await asyncio.sleep(LEASE + 2)
    await loop.run_in_executor(None, natsServer.start)
    longUp = time.time()
    watch = await FleetWatch(natsServer.url).open()
    try:
        await waitFor(spread, 30, "the cameras to be taken again after a long NATS outage")
        await asyncio.sleep(2)
        kinds = await eventKinds(watch)
    finally:
        await watch.close()
    for recorder in recorders:
        recorder.stop()
    for recorder in recorders:
        log = recorder.logText()
        assert log.count("could not be renewed in time") == 3, log[-3000:]
        assert "connected to NATS again" in log and "Traceback" not in log
    # Each camera lost once in the long outage; taken at the start, again after it, and by any balancing move.
    assert kinds.count("lease_lost") == 6
    assert kinds.count("lease_taken") == 12 + kinds.count("lease_released")
    assert "connect" in kinds and "disconnect" in kinds
    frames = await loop.run_in_executor(None, storedFrames, weed.client(), "restart")
    assert len(frames) == 6
    for camera, stored in frames.items():
        numbers = [number for number, _, _ in stored]
        assert len(numbers) == len(set(numbers))
        times = sorted(timeMs / 1000.0 for _, timeMs, _ in stored)
        for earlier, later in zip(times, times[1:], strict=False):
            if shortDown - 1 < earlier < shortUp + LEASE:
                assert later - earlier < 1.5, "camera %d: %.1f s lost over a short NATS restart" % (
                    camera, later - earlier)
            elif earlier < longUp and later > longDown:
                assert later - earlier < longUp - longDown + 5
            else:
                assert later - earlier < 1.5


async def eventKinds(watch):
    """The kinds of every event in the stream, in order."""
    subscription = await watch.js.pull_subscribe("tcpcam.events.>", stream="TCPCAM_EVENTS")
    kinds = []
    try:
        while True:
            try:
                messages = await subscription.fetch(500, timeout=1)
            except asyncio.TimeoutError:  # nats.errors.TimeoutError, or the bare one fetch also raises
                break
            for message in messages:
                kinds.append(json.loads(message.data)["event"])
                await message.ack()
    finally:
        await subscription.unsubscribe()
    return kinds
