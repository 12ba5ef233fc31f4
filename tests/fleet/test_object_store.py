"""The object store stopped mid-recording, then started: every segment arrives once, in order, the spool stays bounded.

SeaweedFS is SIGKILLed (a crash) and started again on the same folder and
ports. The footage reader then reads what arrived.
"""

import asyncio
import os
import sqlite3
import time

import pytest
import pytest_twisted
from fleet_support import (
    BUCKET,
    FLEET_ONLY,
    Recorder,
    asDeferred,
    cameraFarm,
    frameNumber,
    numberedFrame,
    segmentKeys,
    storedFrames,
    waitUntil,
)

pytestmark = FLEET_ONLY


class PutSpy:
    """The real S3 client, noting in order the keys of the puts that stored or found their object."""

    def __init__(self, client):
        self.client = client
        self.stored = []
        self.found = []

    def put_object(self, **kwargs):
        from tcpcam.fleet.uploader import errorCode

        try:
            result = self.client.put_object(**kwargs)
        except Exception as error:
            if errorCode(error) == "PreconditionFailed":  # there already: a put whose answer was lost
                self.found.append(kwargs["Key"])
                self.stored.append(kwargs["Key"])
            raise
        self.stored.append(kwargs["Key"])
        return result

    def __getattr__(self, name):
        return getattr(self.client, name)


def makeSegments(folder, camera, count, frames=4, size=20000):
    from tcpcam.record.segments import SegmentStore

    store = SegmentStore(str(folder / camera), sync=False)
    store.open()
    number = 0
    for segment in range(count):
        for _ in range(frames):
            number += 1
            store.write(numberedFrame(int(camera[-1]), number, size), 1_800_000_000 + segment * 2 + number * 0.01)
        store.closeSegment()
    return store


@pytest.fixture
def credentials(weed, monkeypatch):
    for name, value in weed.env().items():
        monkeypatch.setenv(name, value)


def test_uploads_wait_through_a_crash_of_the_store_and_go_up_once_in_order(weed, tmp_path, credentials):
    from tcpcam.fleet.config import S3Settings
    from tcpcam.fleet.spool import Spool
    from tcpcam.fleet.uploader import Uploader, makeS3Client

    stores = [makeSegments(tmp_path, "cam%d" % index, 6) for index in (1, 2)]
    spool = Spool(str(tmp_path / "spool"), "order/", "rec", maxBytes=10 ** 8)
    spool.open()
    for index, store in enumerate(stores, 1):
        spool.catchUp("cam%d" % index, store)
    spy = PutSpy(makeS3Client(S3Settings(BUCKET, weed.endpoint), connectTimeout=0.5, readTimeout=2))
    uploader = Uploader(spool, spy, BUCKET)
    uploader.retryInitial, uploader.retryMax = 0.05, 0.3  # and four threads: two cameras go up at once
    weed.stop(kill=True)
    try:
        uploader.start()
        waitUntil(lambda: uploader.failures >= 2, 20, "uploads to fail while the store is down")
        assert spool.waiting == 12 and spy.stored == []
        weed.start()
        waitUntil(lambda: spool.waiting == 0, 60, "the spool to empty after the store came back")
    finally:
        uploader.stop()
        for store in stores:
            store.close()
    segments = [key for key in spy.stored if key.endswith(".mjpeg")]
    assert len(segments) == len(set(segments)) == 12  # each once
    assert uploader.alreadyThere == len(spy.found)
    for camera in ("cam1", "cam2"):
        ids = [int(key.rsplit("_", 1)[1].split(".")[0]) for key in segments if "/%s/" % camera in key]
        assert ids == sorted(ids) == list(range(1, 7))  # in order
    for key in segments:  # each segment before its index
        assert spy.stored.index(key) < spy.stored.index(key[:-len("mjpeg")] + "json")
    client = weed.client()
    assert sorted(segmentKeys(client, "order/")) == sorted(segments)
    assert uploader.uploadedSegments == 12 and uploader.conflicts == 0
    # Uploading an entry again (a crash after the put, before the spool forgot it) writes nothing twice.
    again = Uploader(spool, client, BUCKET)
    spool2 = Spool(str(tmp_path / "spool2"), "again/", "rec", maxBytes=10 ** 8)
    spool2.open()
    store = makeSegments(tmp_path / "again", "cam1", 1)
    spool2.catchUp("cam1", store)
    first = spool2.oldest(0)
    again.spool = spool2
    again.upload(first)
    again.upload(first)
    assert again.alreadyThere == 2 and again.uploadedSegments == 2 and again.conflicts == 0
    assert len(segmentKeys(client, "again/")) == 1
    store.close()


def spoolBytes(folder):
    try:
        return sum(os.path.getsize(os.path.join(folder, name)) for name in os.listdir(folder)
                   if name.endswith(".mjpeg"))
    except OSError:
        return 0


def localSegments(out):
    """``{(camera, segment id)}`` of every closed segment in a recorder's folder."""
    found = set()
    for camera in os.listdir(out):
        index = os.path.join(out, camera, "index.sqlite3")
        if os.path.exists(index):
            db = sqlite3.connect("file:%s?mode=ro" % index, uri=True)
            found.update((camera, row[0]) for row in db.execute("SELECT id FROM segments WHERE closed = 1"))
            db.close()
    return found


@pytest_twisted.inlineCallbacks
def test_recorder_spools_within_its_bound_while_the_store_is_down(natsServer, weed, tmp_path):
    cameras = yield cameraFarm(3, 0.2, size=20000)
    recorder = Recorder(tmp_path, "spooler", natsServer.url, weed, lease=3,
                        extra=["--spool-bytes", "1M", "--s3-prefix", "outage"])
    try:
        yield asDeferred(outage(natsServer, weed, cameras, recorder))
    finally:
        recorder.stop()
        for _, port, _ in cameras:
            yield port.stopListening()


async def outage(natsServer, weed, cameras, recorder):
    from test_failover import register

    await register(natsServer.url, cameras)
    recorder.start()
    loop = asyncio.get_event_loop()
    client = weed.client()
    spool = os.path.join(recorder.out, ".fleet-spool")

    async def until(predicate, timeout, what):
        deadline = time.monotonic() + timeout
        while not await loop.run_in_executor(None, predicate):
            if time.monotonic() > deadline:
                raise AssertionError("timed out waiting for %s" % what)
            await asyncio.sleep(0.1)

    await until(lambda: len(segmentKeys(client, "outage/")) >= 6, 30, "the first uploads")
    weed.stop(kill=True)
    peak = 0
    started = time.monotonic()
    while time.monotonic() - started < 8:  # 3 cameras x 100 KB/s: the 1 MB spool fills in about 3.5 s
        peak = max(peak, spoolBytes(spool))
        await asyncio.sleep(0.05)
    assert peak <= 1_000_000, "the spool held %d bytes, over its 1 MB bound" % peak
    assert peak > 500_000  # it did fill up
    await loop.run_in_executor(None, weed.start)
    await until(lambda: not any(name.endswith(".json") for name in os.listdir(spool)), 60,
                "the spool to empty after the store came back")
    await asyncio.sleep(1.5)
    recorder.stop()
    local = localSegments(recorder.out)
    keys = await loop.run_in_executor(None, segmentKeys, weed.client(), "outage/")
    stored = [(key.split("/")[1], int(key.rsplit("_", 1)[1].split(".")[0])) for key in keys]
    assert len(stored) == len(set(stored)), "a segment was uploaded twice"
    assert set(stored) == {(camera, segment) for camera, segment in local if camera.startswith("cam")}
    assert len(stored) > 30
    log = recorder.logText()
    assert log.count("cannot upload to the object store") == 1 and log.count("works again") == 1
    assert log.count("the spool holds its 1000000 bytes") == 1
    frames = await loop.run_in_executor(None, storedFrames, weed.client(), "outage/")
    for camera, seen in frames.items():
        numbers = [number for number, _, _ in seen]
        assert len(numbers) == len(set(numbers))
        assert numbers == list(range(numbers[0], numbers[0] + len(numbers))), "camera %d lost frames" % camera


def test_footage_reader_reads_the_object_store(weed, tmp_path, credentials):
    from tcpcam.fleet.config import S3Settings
    from tcpcam.fleet.s3footage import S3Footage
    from tcpcam.fleet.spool import Spool
    from tcpcam.fleet.uploader import Uploader, makeS3Client
    from tcpcam.record.footage import Footage

    store = makeSegments(tmp_path / "local", "cam7", 3, frames=5, size=3000)
    store.saveEvent({"start_ms": 1_800_000_000_050, "end_ms": 1_800_000_001_000, "peak_ms": 1_800_000_000_500,
                     "peak_score": 0.5, "x0": 1, "y0": 2, "x1": 3, "y1": 4, "pre_roll_ms": 0, "post_roll_ms": 0,
                     "thumbnail": numberedFrame(7, 0, 500)})
    spool = Spool(str(tmp_path / "spool"), "read/", "rec", maxBytes=10 ** 8)
    spool.open()
    spool.catchUp("cam7", store)
    row = store.db.execute("SELECT * FROM events").fetchone()
    spool.addEvent("cam7", {"id": row[0], "start_ms": row[1], "end_ms": row[2], "peak_ms": row[3], "peak_score": row[4],
                            "x0": row[5], "y0": row[6], "x1": row[7], "y1": row[8], "pre_roll_ms": row[9],
                            "post_roll_ms": row[10]}, bytes(row[11]))
    client = makeS3Client(S3Settings(BUCKET, weed.endpoint))
    uploader = Uploader(spool, client, BUCKET)
    while (entry := spool.oldest(0)) is not None:
        uploader.upload(entry)
        spool.remove(entry)
    store.close()
    local = Footage(str(tmp_path / "local"))
    remote = S3Footage(client, BUCKET, "read/")
    start, end = 1_799_999_999.0, 1_800_000_010.0
    assert remote.cameras() == ["cam7"] == local.cameras()
    assert remote.days("cam7") == local.days("cam7")
    assert remote.spans("cam7", start, end) == local.spans("cam7", start, end)
    assert remote.count("cam7", start, end) == local.count("cam7", start, end) == 15
    assert list(remote.frames("cam7", start, end)) == list(local.frames("cam7", start, end))
    assert list(remote.frames("cam7", start, end, every=2)) == list(local.frames("cam7", start, end, every=2))
    assert remote.frameAt("cam7", 1_800_000_002.2) == local.frameAt("cam7", 1_800_000_002.2)
    # Stepping, as the timeline does: within a segment, across the gaps between them, past either end, days on.
    for when in (start, 1_800_000_000.03, 1_800_000_000.05, 1_800_000_001.0, 1_800_000_004.15, 1_800_000_005.0,
                 1_800_000_000.0 + 3 * 86400):
        assert remote.frameAfter("cam7", when) == local.frameAfter("cam7", when), when
        assert remote.frameBefore("cam7", when) == local.frameBefore("cam7", when), when
        assert remote.frameAt("cam7", when) == local.frameAt("cam7", when), when
    assert remote.frameBefore("cam7", start) is None and remote.frameAfter("cam7", end) is None
    assert remote.batch("cam7", start, end, 4, 10 ** 6) == local.batch("cam7", start, end, 4, 10 ** 6)
    assert len(remote.batch("cam7", start, end, 10, 5000)) == 2  # stops once the bytes are read
    assert remote.batch("cam7", start, end, 3, 10 ** 6, every=2) == local.batch("cam7", start, end, 3, 10 ** 6, every=2)
    assert remote.latestFrames("cam7", 4) == local.latestFrames("cam7", 4)
    [event] = remote.events("cam7", start, end)
    assert (event.start, event.end, event.region, event.hasThumbnail) == (1_800_000_000.05, 1_800_000_001.0,
                                                                           (1, 2, 3, 4), True)
    assert remote.event("cam7", event.id) == event
    assert frameNumber(remote.thumbnail("cam7", event.id)) == (7, 0)
    with pytest.raises(ValueError):
        remote.spans("nocam", start, end)
    job = remote.exportJob("cam7", start, end, str(tmp_path / "clip.mp4"))
    assert job.opener is not None and job.opener().count("cam7", start, end) == 15
    local.close()
