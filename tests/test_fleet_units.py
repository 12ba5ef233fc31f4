"""The fleet's pure parts, in every env: balancer, lease arithmetic, key layout, registry entries, spool."""

import json
import os

import pytest
from record_support import jpegFrame

from tcpcam.core.mac import key_text
from tcpcam.fleet.balancer import plan, share
from tcpcam.fleet.config import FleetConfigError, defaultRecorderId, fleetFromTexts
from tcpcam.fleet.keys import eventKey, parseSegmentName, segmentKey, utcDaysBetween
from tcpcam.fleet.leases import Lease, LeaseTerms, leaseValue, parseLease
from tcpcam.fleet.registry import CameraEntry, parseOptions
from tcpcam.fleet.service import GapWatch
from tcpcam.fleet.spool import Spool
from tcpcam.record.config import OPTIONS, ConfigError
from tcpcam.record.segments import SegmentStore


def settle(cameras, live, holders=None, rounds=20):
    """Run every recorder's plan in turn (each sees the others' changes) until nothing changes."""
    holders = dict(holders or {})
    for _ in range(rounds):
        changed = False
        for me in sorted(live):
            step = plan(me, cameras, holders, live)
            for name in step.release:
                holders.pop(name)
                changed = True
            for name in step.take:
                assert name not in holders, "%s took %s, held by %s" % (me, name, holders.get(name))
                holders[name] = me
                changed = True
        if not changed:
            return holders
    raise AssertionError("the plans did not settle in %d rounds" % rounds)


def loads(holders, live):
    return sorted(sum(1 for holder in holders.values() if holder == recorder) for recorder in live)


def test_thirty_cameras_spread_evenly_over_three_recorders():
    cameras = {"cam%02d" % i: None for i in range(30)}
    holders = settle(cameras, {"a", "b", "c"})
    assert len(holders) == 30
    assert loads(holders, {"a", "b", "c"}) == [10, 10, 10]


def test_same_view_same_plan_no_race():
    cameras = {"cam%02d" % i: None for i in range(31)}
    plans = {me: plan(me, cameras, {}, {"a", "b", "c"}).take for me in "abc"}
    taken = plans["a"] + plans["b"] + plans["c"]
    assert sorted(taken) == sorted(cameras)  # every camera falls to exactly one recorder
    assert sorted(len(names) for names in plans.values()) == [10, 10, 11]


def test_a_dead_recorders_cameras_go_to_the_others_and_come_back():
    cameras = {"cam%02d" % i: None for i in range(30)}
    holders = settle(cameras, {"a", "b", "c"})
    orphaned = {name for name, holder in holders.items() if holder == "c"}
    alive = {name: holder for name, holder in holders.items() if holder != "c"}  # c's leases expired
    after = settle(cameras, {"a", "b"}, alive)
    assert loads(after, {"a", "b"}) == [15, 15]
    assert {after[name] for name in orphaned} == {"a", "b"}
    assert all(after[name] == holder for name, holder in alive.items())  # nothing else moved
    back = settle(cameras, {"a", "b", "c"}, after)
    assert loads(back, {"a", "b", "c"}) == [10, 10, 10]
    moved = sum(1 for name in cameras if back[name] != after[name])
    assert moved == 10  # only what c needs moves


def test_uneven_loads_level_out_by_one():
    cameras = {"cam%d" % i: None for i in range(8)}
    holders = {"cam%d" % i: "a" for i in range(6)}
    holders.update({"cam6": "b", "cam7": "c"})
    assert loads(settle(cameras, {"a", "b", "c"}, holders), {"a", "b", "c"}) == [2, 3, 3]


def test_pinned_camera_goes_to_its_recorder_and_back_to_the_fleet_without_it():
    cameras = {"cam%d" % i: None for i in range(6)}
    holders = settle(cameras, {"a", "b"})
    name = next(camera for camera, holder in holders.items() if holder == "a")
    cameras[name] = "b"
    step = plan("a", cameras, holders, {"a", "b"})
    assert name in step.release
    holders = settle(cameras, {"a", "b"}, holders)
    assert holders[name] == "b"
    # b gone: the pin does not leave the camera unrecorded
    rest = {camera: holder for camera, holder in holders.items() if holder == "a"}
    assert settle(cameras, {"a"}, rest)[name] == "a"


def test_removed_camera_is_let_go_and_stale_holders_block():
    cameras = {"cam1": None}
    assert plan("a", cameras, {"cam1": "a", "gone": "a"}, {"a"}).release == ["gone"]
    # a lease of a recorder not alive still blocks its camera until it expires
    assert plan("a", {"cam1": None}, {"cam1": "(stale) a"}, {"a"}).take == []
    assert share(30, 0) == 30


def test_lease_deadline_only_counts_from_the_sending_moment():
    terms = LeaseTerms(10)
    assert terms.margin == 2.0 and terms.renewEvery == 2.0
    # Whatever the clock reads (hours off from the server's), the deadline is the same distance after sending.
    for offset in (0.0, -7200.0, 86400.0 * 365):
        assert terms.deadline(offset + 5.0) - (offset + 5.0) == pytest.approx(8.0)
    lease = Lease("cam", "t", 3, terms.deadline(100.0), 100.0, 100.0)
    assert lease.valid(107.99) and not lease.valid(108.0)
    small = LeaseTerms(2)
    assert small.margin == 0.5 and small.requestSeconds <= small.renewEvery
    with pytest.raises(ValueError):
        LeaseTerms(0)


def test_lease_margin_covers_a_slow_clock():
    terms = LeaseTerms(10)
    # A holder whose clock runs 10 % slow measures 8 s when 8.9 s went by: still before the server's 10 s.
    assert terms.deadline(0.0) / 0.9 < terms.ttl
    assert parseLease(leaseValue("rec-a", "abc")) == ("rec-a", "abc")
    assert parseLease(b"not json") is None and parseLease(None) is None


def test_key_layout_lists_by_camera_and_time():
    first = segmentKey("site/", "door", 1796125946110, 1796125947105, "rec-a", 7)
    assert first == "site/door/2026-12-01/1796125946110_1796125947105_rec-a_7.mjpeg"
    later = segmentKey("site/", "door", 1796125950000, 1796125951000, "rec-b", 1)
    assert sorted([later, first]) == [first, later]
    assert parseSegmentName(first.rsplit("/", 1)[1]) == (1796125946110, 1796125947105, "rec-a", 7, "mjpeg")
    assert parseSegmentName("junk.mjpeg") is None
    assert eventKey("", "door", 1796125946110, "rec_a", 3) == "door/events/2026-12-01/1796125946110_rec_a_3.json"
    assert utcDaysBetween(1796125946110 - 86_400_000, 1796125946110) == ["2026-11-30", "2026-12-01"]


def recorderDefaults(**texts):
    """A recorder's checked option values, as ``twistd tcpcam-record --fleet`` makes them for the fleet's cameras."""
    values, problems = OPTIONS.parse_texts({key: str(value) for key, value in texts.items()}, OPTIONS.defaults())
    assert not problems
    return values


def test_camera_entries_are_checked_and_pins_resolved(tmp_path, monkeypatch):
    entry = CameraEntry("door", "tcp:host=10.0.0.5:port=3333", pinRef="env:DOOR_PIN",
                        options=parseOptions(["mode=motion", "frame_timeout=10"]))
    again = CameraEntry.fromJson(entry.toJson())
    assert again == entry and b"DOOR_PIN" in entry.toJson()
    with pytest.raises(ConfigError, match="DOOR_PIN is not set"):
        again.resolvePin()
    monkeypatch.setenv("DOOR_PIN", "4711")
    defaults = recorderDefaults(pin="1235", frame_timeout=5.0)
    config = again.cameraConfig(defaults)
    assert (config.pin, config.mode, config.motion, config.frameTimeout) == ("4711", "motion", True, 10)
    assert config.key is None
    pinFile = tmp_path / "pin"
    pinFile.write_text("9999\n")
    assert CameraEntry("yard", "tcp:host=a:port=1", pinRef="file:%s" % pinFile).resolvePin() == "9999"
    for bad, message in ((b"[]", "not a JSON object"), (b"{", "not JSON"), (b"x" * 70000, "over"),
                         (json.dumps({"name": "../etc", "endpoint": "x"}).encode(), "bad camera name"),
                         (json.dumps({"name": "a", "endpoint": "x", "options": {"speed": 1}}).encode(), "unknown"),
                         (json.dumps({"name": "a", "endpoint": "x", "pin_ref": "http://x"}).encode(), "reference")):
        with pytest.raises(ConfigError, match=message):
            CameraEntry.fromJson(bad)
    with pytest.raises(ConfigError, match="bad --option"):
        parseOptions(["mode=sometimes"])
    with pytest.raises(ConfigError, match="KEY=VALUE"):
        parseOptions(["colour=red"])


def test_a_registered_camera_gets_its_device_key_from_a_file_never_from_nats(tmp_path):
    mine, recorders = bytes(range(32)), bytes(range(32, 64))
    keyFile = tmp_path / "door.key"
    keyFile.write_text(key_text(mine) + "\n")
    entry = CameraEntry.fromJson(CameraEntry("door", "tcp:host=a:port=1",
                                             options=parseOptions(["key_file=%s" % keyFile])).toJson())
    assert str(keyFile).encode() in entry.toJson() and key_text(mine).encode() not in entry.toJson()
    # The camera's key file replaces the recorder's own --key; a camera without one speaks with the recorder's.
    assert entry.cameraConfig(recorderDefaults(key=key_text(recorders))).key == mine
    assert CameraEntry("yard", "tcp:host=a:port=1").cameraConfig(recorderDefaults(key=key_text(recorders))).key \
        == recorders
    assert CameraEntry("gate", "tcp:host=a:port=1").cameraConfig(recorderDefaults()).key is None
    with pytest.raises(ConfigError, match="stays off NATS"):
        parseOptions(["key=%s" % key_text(mine)])
    with pytest.raises(ConfigError, match="stays off NATS"):
        CameraEntry.fromJson(json.dumps({"name": "a", "endpoint": "x", "options": {"key": key_text(mine)}}).encode())
    with pytest.raises(ConfigError, match="cannot read key_file"):
        CameraEntry("gate", "tcp:host=a:port=1", options={"key_file": str(tmp_path / "none")}).cameraConfig(
            recorderDefaults())


def test_fleet_options():
    assert fleetFromTexts({}, "recordings") is None
    fleet = fleetFromTexts({"fleet": "nats://127.0.0.1:4222", "s3_bucket": "segments", "s3_prefix": "site1"}, "rec")
    assert fleet.urls == ["nats://127.0.0.1:4222"] and fleet.s3.prefix == "site1/"
    assert fleet.recorderId == defaultRecorderId("rec") != defaultRecorderId("other")
    for texts, message in (({"fleet": "http://x"}, "bad --fleet"), ({"fleet": "nats://a", "recorder_id": "a b"},
                                                                      "recorder-id"),
                           ({"fleet": "nats://a", "s3_bucket": "B"}, "s3-bucket"),
                           ({"fleet": "nats://a", "lease_seconds": "1"}, "lease-seconds")):
        with pytest.raises(FleetConfigError, match=message):
            fleetFromTexts(texts, "rec")


def recordSegments(folder, count, frames=3, start=1_700_000_000.0):
    store = SegmentStore(str(folder), sync=False)
    store.open()
    number = 0
    for segment in range(count):
        for _ in range(frames):
            number += 1
            store.write(jpegFrame(number, 2000), start + segment * 10 + number * 0.01)
        store.closeSegment()
    return store


def test_spool_hands_over_in_order_within_its_bound_and_catches_up(tmp_path):
    store = recordSegments(tmp_path / "cam", 5)
    spool = Spool(str(tmp_path / "spool"), "p/", "rec", maxBytes=2 * 3 * 2000)
    spool.open()
    assert spool.catchUp("cam", store) == 2  # two segments of 6000 bytes fit in 12000
    assert spool.bytes == 12000 and spool.behind == {"cam"} and spool.refused == 1
    first = spool.oldest(0)
    assert first.data["segment_id"] == 1 and first.data["key"].startswith("p/cam/")
    assert open(spool.bytesPath(first), "rb").read() == open(os.path.join(store.directory, store.db.execute(
        "SELECT path FROM segments WHERE id = 1").fetchone()[0]), "rb").read()
    assert len(first.data["frames"]) == 3
    spool.remove(first)
    assert spool.catchUp("cam", store) == 1 and spool.behind == {"cam"}
    # a new spool over the same folder (a restart) finds the entries, and the mark prevents repeats
    again = Spool(str(tmp_path / "spool"), "p/", "rec", maxBytes=10 ** 6)
    assert again.open() == 2
    assert again.catchUp("cam", store) == 2 and again.behind == set()
    ids = []
    while (entry := again.oldest(0)) is not None:
        ids.append(entry.data["segment_id"])
        again.remove(entry)
    assert ids == [2, 3, 4, 5] and again.bytes == 0
    assert again.catchUp("cam", store) == 0
    store.close()


def test_spool_open_removes_half_made_entries(tmp_path):
    folder = tmp_path / "spool"
    folder.mkdir()
    (folder / "000000000001.mjpeg").write_bytes(b"link without its entry")
    (folder / ".000000000002.json.tmp").write_bytes(b"{")
    (folder / "000000000003.json").write_bytes(b"{broken")
    spool = Spool(str(folder), "", "rec")
    assert spool.open() == 0 and os.listdir(folder) == []


def test_gap_watch_reports_a_pause():
    now = [100.0]
    gaps = []
    watch = GapWatch(lambda start, end: gaps.append((start, end)), gapSeconds=5.0, clock=lambda: now[0])
    for moment in (100.0, 101.0, 105.9, 112.0, 112.2):
        now[0] = moment
        watch.frameAvailable(b"x")
    assert gaps == [(105.9, 112.0)]


def test_fleet_without_its_extra_says_what_to_install(monkeypatch):
    import sys

    from tcpcam.tap.record import Options

    monkeypatch.setitem(sys.modules, "nats", None)
    options = Options()
    with pytest.raises(Exception, match=r"the fleet needs nats-py( and boto3)?, which (is|are) not installed: "
                                        r"pip install 'tcpcam\[fleet\]'"):
        options.parseOptions(["--fleet", "nats://127.0.0.1:4222", "--no-web"])
    with pytest.raises(Exception, match="cameras come from the fleet's registry"):
        Options().parseOptions(["--fleet", "nats://127.0.0.1:4222", "--camera", "door=tcp:host=a:port=1"])
    plain = Options()
    plain.parseOptions(["--no-web"])
    assert plain.fleet is None and plain.config.simulated


def test_spool_hands_each_camera_to_one_upload_at_a_time_oldest_first(tmp_path):
    stores = {name: recordSegments(tmp_path / name, count) for name, count in (("cam1", 3), ("cam2", 2))}
    spool = Spool(str(tmp_path / "spool"), "", "rec", maxBytes=10 ** 8)
    spool.open()
    for name, store in stores.items():
        spool.catchUp(name, store)
    first, second = spool.take(0), spool.take(0)
    assert [(e.data["camera"], e.data["segment_id"]) for e in (first, second)] == [("cam1", 1), ("cam2", 1)]
    assert spool.take(0) is None  # both cameras have an upload in flight
    spool.putBack(first)  # it failed: the same entry comes again, not the camera's next one
    again = spool.take(0)
    assert again.seq == first.seq
    spool.remove(again)
    assert (spool.take(0).data["camera"], spool.waiting) == ("cam1", 4)
    for store in stores.values():
        store.close()
