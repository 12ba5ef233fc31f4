"""Frame sources chosen by spec: built-in ones, replay timing, entry-point plugins."""

import io
import os
import sys
import time

import pytest
from PIL import Image
from twisted.internet.task import Clock

from tcpcam.server.sources import FrameUnavailable, IFrameSource, SourceSpecError, sourceFromSpec
from tcpcam.server.sources.pattern import FRAME_SIZES, parseSize
from tcpcam.server.sources.replay import ReplaySource


def jpeg(tmp_path, name, colour=(255, 0, 0), size=(32, 24)):
    output = io.BytesIO()
    Image.new("RGB", size, colour).save(output, "JPEG")
    path = tmp_path / name
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(output.getvalue())
    return output.getvalue()


def test_hello_is_the_original_test_payload():
    source = sourceFromSpec("hello")
    assert IFrameSource.providedBy(source)
    assert source.nextFrame() == b"Hello World"


def test_jpeg_repeats_one_file(tmp_path):
    data = jpeg(tmp_path, "a.jpg")
    source = sourceFromSpec("jpeg:%s" % (tmp_path / "a.jpg"))
    assert [source.nextFrame() for _ in range(3)] == [data] * 3


def test_dir_loops_in_name_order_and_sees_new_files(tmp_path):
    b = jpeg(tmp_path, "b.jpg", (0, 255, 0))
    a = jpeg(tmp_path, "a.JPEG", (255, 0, 0))
    (tmp_path / "notes.txt").write_text("not a picture")
    source = sourceFromSpec("dir:%s" % tmp_path)
    assert [source.nextFrame() for _ in range(3)] == [a, b, a]
    c = jpeg(tmp_path, "c.jpg", (0, 0, 255))
    assert [source.nextFrame() for _ in range(3)] == [b, a, b]
    assert source.nextFrame() == c


def test_dir_frames_that_cannot_be_read_are_skipped_not_fatal(tmp_path):
    jpeg(tmp_path, "a.jpg")
    (tmp_path / "b.jpg").write_bytes(b"not a jpeg")
    source = sourceFromSpec("dir:%s" % tmp_path)
    source.nextFrame()
    with pytest.raises(FrameUnavailable, match="not a JPEG"):
        source.nextFrame()
    os.remove(tmp_path / "a.jpg")
    os.remove(tmp_path / "b.jpg")
    with pytest.raises(FrameUnavailable, match="no .jpg"):
        source.nextFrame()


@pytest.mark.parametrize("spec, message", [
    ("nonsense", "unknown frame source 'nonsense': expected hello, jpeg:PATH"),
    ("jpeg", "jpeg source needs a path"),
    ("jpeg:/nonexistent/a.jpg", "cannot read /nonexistent/a.jpg"),
    ("dir:/nonexistent", "cannot list /nonexistent"),
    ("pattern:big", "bad size 'big'"),
    ("pattern:8x8", "out of range"),
    ("replay:/nonexistent", "is not a folder"),
    ("hello:there", "takes no argument"),
])
def test_bad_specs_raise_one_line_value_errors(spec, message):
    with pytest.raises(ValueError, match=message) as error:
        sourceFromSpec(spec)
    assert isinstance(error.value, SourceSpecError)
    assert "\n" not in str(error.value)


def test_jpeg_and_dir_refuse_what_is_not_a_picture(tmp_path):
    (tmp_path / "x.jpg").write_bytes(b"GIF89a")
    with pytest.raises(SourceSpecError, match="not a JPEG"):
        sourceFromSpec("jpeg:%s" % (tmp_path / "x.jpg"))
    empty = tmp_path / "empty"
    empty.mkdir()
    with pytest.raises(SourceSpecError, match="no .jpg or .jpeg files"):
        sourceFromSpec("dir:%s" % empty)


def test_pattern_sizes():
    assert parseSize("") == (640, 480)
    assert parseSize("qvga") == (320, 240)
    assert parseSize("UXGA") == (1600, 1200)
    assert parseSize("240x240") == (240, 240)
    assert parseSize("1000X500") == (1000, 500)
    assert set(FRAME_SIZES.values()) >= {(240, 240), (320, 240), (640, 480), (1600, 1200)}


@pytest.mark.parametrize("spec, size", [("pattern", (640, 480)), ("pattern:QVGA", (320, 240)),
                                        ("pattern:240x240", (240, 240))])
def test_pattern_draws_real_moving_jpegs(spec, size):
    source = sourceFromSpec(spec)
    first, second = source.nextFrame(), source.nextFrame()
    assert first[:2] == b"\xff\xd8" and first[-2:] == b"\xff\xd9"
    assert first != second
    image = Image.open(io.BytesIO(second))
    assert image.format == "JPEG" and image.size == size


def record(tmp_path, camera, day, names):
    """Recorder-style files; returns {name: bytes}."""
    made = {}
    for index, name in enumerate(names):
        made[name] = jpeg(tmp_path, "%s/%s/%s" % (camera, day, name), (index * 40 % 256, 0, 0))
    return made


def collect(source, clock, count, step=0.05, limit=2000):
    """Run ``count`` requests through a Clock; return [(time delivered, frame)]."""
    got = []

    def request():
        source.nextFrame().addCallback(lambda frame: got.append((clock.seconds(), frame)))

    request()
    for _ in range(limit):
        if len(got) >= count:
            break
        before = len(got)
        clock.advance(step)
        if len(got) > before and len(got) < count:
            request()
    return got


def test_replay_keeps_recorded_order_and_timing_across_days(tmp_path):
    first = record(tmp_path, "door", "2024-05-01", ["23-59-59.000_7.jpg", "23-59-58.500_6.jpg"])
    second = record(tmp_path, "door", "2024-05-02", ["00-00-00.000_8.jpg", "00-00-00.000_9.jpg"])
    (tmp_path / "door" / "events.jsonl").write_text("{}\n")
    clock = Clock()
    source = sourceFromSpec("replay:%s" % (tmp_path / "door"), reactor=clock)
    got = collect(source, clock, 5)
    frames = [frame for _, frame in got]
    assert frames == [first["23-59-58.500_6.jpg"], first["23-59-59.000_7.jpg"],
                      second["00-00-00.000_8.jpg"], second["00-00-00.000_9.jpg"],
                      first["23-59-58.500_6.jpg"]]
    times = [moment for moment, _ in got]
    assert times[1] - times[0] == pytest.approx(0.5, abs=0.051)
    assert times[2] - times[1] == pytest.approx(1.0, abs=0.051)
    assert times[3] - times[2] == pytest.approx(0.0, abs=0.051)


def test_replay_shortens_long_gaps_and_takes_a_day_folder(tmp_path):
    record(tmp_path, "yard", "2024-05-01", ["08-00-00.000_1.jpg", "20-00-00.000_2.jpg"])
    clock = Clock()
    source = ReplaySource(str(tmp_path / "yard" / "2024-05-01"), reactor=clock)
    source.maxGap = 2.0
    got = collect(source, clock, 2)
    assert got[1][0] - got[0][0] == pytest.approx(2.0, abs=0.051)


def test_replay_finds_the_single_camera_and_refuses_several(tmp_path):
    record(tmp_path, "door", "2024-05-01", ["10-00-00.000_1.jpg"])
    assert isinstance(sourceFromSpec("replay:%s" % tmp_path, reactor=Clock()), ReplaySource)
    record(tmp_path, "yard", "2024-05-01", ["10-00-00.000_1.jpg"])
    with pytest.raises(SourceSpecError, match="several cameras"):
        sourceFromSpec("replay:%s" % tmp_path, reactor=Clock())
    (tmp_path / "empty").mkdir()
    with pytest.raises(SourceSpecError, match="no recorded pictures"):
        sourceFromSpec("replay:%s" % (tmp_path / "empty"), reactor=Clock())


def test_replay_skips_a_picture_deleted_meanwhile(tmp_path):
    record(tmp_path, "door", "2024-05-01", ["10-00-00.000_1.jpg", "10-00-00.100_2.jpg"])
    clock = Clock()
    source = sourceFromSpec("replay:%s" % (tmp_path / "door"), reactor=clock)
    os.remove(tmp_path / "door" / "2024-05-01" / "10-00-00.000_1.jpg")
    failures = []
    source.nextFrame().addErrback(failures.append)
    clock.advance(1)
    assert failures and failures[0].check(FrameUnavailable)


PLUGIN = '''
from tcpcam.server.sources.files import HelloSource

class Shout(HelloSource):
    def __init__(self, argument):
        self.payload = argument.upper().encode()

def make(argument, reactor):
    return Shout(argument)

def broken(argument, reactor):
    return object()
'''


@pytest.fixture
def plugins(tmp_path, monkeypatch):
    """A distribution on sys.path with entry points in the tcpcam.server.sources group."""
    (tmp_path / "shout_source.py").write_text(PLUGIN)
    info = tmp_path / "shout_source-1.0.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: shout-source\nVersion: 1.0\n")
    (info / "entry_points.txt").write_text(
        "[tcpcam.server.sources]\nshout = shout_source:make\nbroken = shout_source:broken\n"
        "missing = no_such_module:make\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    yield
    sys.modules.pop("shout_source", None)


def test_third_party_sources_come_from_entry_points(plugins):
    assert sourceFromSpec("shout:hi there").nextFrame() == b"HI THERE"
    with pytest.raises(SourceSpecError, match="no nextFrame"):
        sourceFromSpec("broken")
    with pytest.raises(SourceSpecError, match="'missing' cannot be loaded"):
        sourceFromSpec("missing")
    with pytest.raises(SourceSpecError, match="replay:PATH, broken, missing, shout"):
        sourceFromSpec("nonsense")


def test_replay_plays_hourly_mjpeg_files_in_order(tmp_path):
    day = tmp_path / "door" / "2024-05-01"
    pictures = [jpeg(tmp_path, "p%d.jpg" % index, (index * 60, 0, 0)) for index in range(4)]
    day.mkdir(parents=True)
    (day / "10.mjpeg").write_bytes(pictures[0] + b"junk" + pictures[1] + pictures[2][:1])
    (day / "11.mjpeg").write_bytes(pictures[3])
    (day / "12.mjpeg").write_bytes(b"")
    source = sourceFromSpec("replay:%s" % (tmp_path / "door"), reactor=Clock())
    frames = [source.nextFrame() for _ in range(4)]
    assert frames == [pictures[0], pictures[1], pictures[3], pictures[0]]


def test_replay_skips_an_oversized_frame_in_an_hour_file(tmp_path, monkeypatch):
    from tcpcam.server.sources import replay

    monkeypatch.setattr(replay, "MAX_SOURCE_FRAME_BYTES", 1000)
    small = jpeg(tmp_path, "small.jpg", size=(8, 8))
    day = tmp_path / "2024-05-01"
    day.mkdir()
    (day / "09.mjpeg").write_bytes(b"\xff\xd8" + b"\x00" * 70000 + b"\xff\xd9" + small)
    source = replay.ReplaySource(str(day), reactor=Clock())
    with pytest.raises(FrameUnavailable, match="over 1000 bytes"):
        source.nextFrame()
    assert source.nextFrame() == small


@pytest.mark.parametrize("chunk", [1, 2, 3, 7, 1 << 16])
def test_hour_file_frames_split_across_reads(tmp_path, monkeypatch, chunk):
    from tcpcam.server.sources import replay

    monkeypatch.setattr(replay.HourFileReader, "chunkBytes", chunk)
    pictures = [jpeg(tmp_path, "p%d.jpg" % index, (index * 60, 0, 0)) for index in range(3)]
    (tmp_path / "10.mjpeg").write_bytes(b"\xff" + pictures[0] + b"\xd9junk\xff" + pictures[1] + pictures[2])
    reader = replay.HourFileReader(str(tmp_path / "10.mjpeg"))
    assert [reader.nextFrame() for _ in range(4)] == pictures + [None]


@pytest.mark.timeout(10)
def test_replay_of_hour_files_without_frames_skips_instead_of_hanging(tmp_path):
    day = tmp_path / "door" / "2024-05-01"
    day.mkdir(parents=True)
    (day / "10.mjpeg").write_bytes(b"")
    (day / "11.mjpeg").write_bytes(b"junk, no picture")
    source = sourceFromSpec("replay:%s" % (tmp_path / "door"), reactor=Clock())
    for _ in range(2):
        with pytest.raises(FrameUnavailable, match="no frames in the recordings"):
            source.nextFrame()
    picture = jpeg(tmp_path, "late.jpg", (0, 0, 0))
    (day / "12.mjpeg").write_bytes(picture)
    assert source.nextFrame() == picture


def test_replay_of_a_segment_store_keeps_order_and_pace_and_wraps(tmp_path):
    from record_support import jpegFrame

    from tcpcam.record.segments import SegmentStore
    from tcpcam.server.sources.replay import SegmentReplaySource

    start = time.mktime((2024, 5, 1, 23, 59, 59, 0, 0, -1))
    store = SegmentStore(str(tmp_path / "door"))
    store.open()
    frames = [jpegFrame(i, 300) for i in range(4)]
    for frame, when in zip(frames, (start, start + 0.5, start + 1.5, start + 100), strict=True):
        store.write(frame, when)
    store.close()
    clock = Clock()
    for spec in ("replay:%s" % (tmp_path / "door"), "replay:%s" % tmp_path):
        source = sourceFromSpec(spec, reactor=clock)
        assert isinstance(source, SegmentReplaySource)
    source.maxGap = 2.0
    got = collect(source, clock, 6)
    assert [frame for _, frame in got] == frames + frames[:2]
    gaps = [b[0] - a[0] for a, b in zip(got, got[1:], strict=False)]
    assert gaps[:3] == [pytest.approx(0.5, abs=0.051), pytest.approx(1.0, abs=0.051), pytest.approx(2.0, abs=0.051)]
    # A day folder replays that day only.
    day = sourceFromSpec("replay:%s" % (tmp_path / "door" / "2024-05-02"), reactor=clock)
    day.maxGap = 0.5
    assert [frame for _, frame in collect(day, clock, 3)] == frames[2:] + frames[2:3]
