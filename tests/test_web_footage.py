"""The timeline's endpoints and playback over real HTTP: days, spans, events, thumbnails, frames, play.mjpg.

Each test writes a segment store first, then starts a recorder over it with a
camera that stays silent (so nothing new is recorded). Pacing runs on a
``task.Clock`` over a real HTTP channel; the limits are performed on loopback.
"""

import json
import time

import pytest
import pytest_twisted
from record_support import jpegFrame, makeConfig, realJpeg, startRecorder, waitFor
from twisted.internet import defer, reactor, task
from twisted.internet.address import IPv4Address
from twisted.internet.testing import StringTransport
from twisted.web.http import HTTPChannel
from twisted.web.server import Site
from web_support import get, header, rawRequest, recording, stop, streamParts, wholeStream

from tcpcam.record.config import WebSettings
from tcpcam.record.footage import Footage
from tcpcam.record.segments import SegmentStore
from tcpcam.record.web import playback, service, timeline
from tcpcam.record.web.playback import GAP_SECONDS, MAX_PLAY_FPS, PlaybackStream, PlayResource
from tcpcam.record.web.reads import FootageReads, ReadsBusy
from tcpcam.record.web.stream import ViewerLimits

pytestmark = pytest.mark.filterwarnings("ignore:Using readBody:DeprecationWarning")

T0 = time.mktime((2024, 5, 6, 10, 0, 0, 0, 0, -1))
DAY = "2024-05-06"
MIDNIGHT = time.mktime((2024, 5, 6, 0, 0, 0, 0, 0, -1))
NEXT_MIDNIGHT = time.mktime((2024, 5, 7, 0, 0, 0, 0, 0, -1))


def writeFootage(folder, times, frames=None, events=()):
    """A segment store with one frame per time (``jpegFrame(i)`` unless given) and the events; returns the frames."""
    store = SegmentStore(str(folder), maxSegmentSeconds=10)
    store.open()
    frames = frames or [jpegFrame(i, 600) for i in range(len(times))]
    for frame, when in zip(frames, times, strict=True):
        store.write(frame, when)
    for event in events:
        store.saveEvent(dict(event))
    store.close()
    return frames


def event(start, end, thumbnail=None, score=0.25):
    """An event row starting and ending at these offsets from T0."""
    return {"start_ms": int((T0 + start) * 1000), "end_ms": int((T0 + end) * 1000),
            "peak_ms": int((T0 + start) * 1000), "peak_score": score, "x0": 1, "y0": 2, "x1": 30, "y1": 40,
            "pre_roll_ms": 500, "post_roll_ms": 500, "thumbnail": thumbnail}


def silentRecorder(tmp_path, **webSettings):
    """A recorder of camera ``cam`` (silent) over what tmp_path/cam holds, its web interface on a free port."""
    return recording(tmp_path, scripts=[[("silence",)]], **webSettings)


def oneLine(body):
    return body.count(b"\n") == 1 and body.endswith(b"\n")


@pytest_twisted.inlineCallbacks
def test_days_spans_events_thumbnails_and_frames(tmp_path):
    times = [T0 + i * 0.5 for i in range(40)] + [T0 + 100 + i for i in range(10)] + [T0 + 86400]
    thumbnail = realJpeg(size=(32, 24))
    frames = writeFootage(tmp_path / "cam", times, events=[event(5, 8, thumbnail), event(101, 103)])
    recorder, servers = yield silentRecorder(tmp_path)
    url = recorder.web.url + "cam/"
    try:
        response, body = yield get(url + "days.json")
        assert response.code == 200 and header(response, b"content-type") == b"application/json"
        assert json.loads(body) == {"camera": "cam", "days": [DAY, "2024-05-07"], "truncated": False}
        response, body = yield get(url + "spans.json?day=" + DAY)
        spans = json.loads(body)
        assert spans["spans"] == [[T0, T0 + 19.5], [T0 + 100, T0 + 109]] and not spans["truncated"]
        assert (spans["from"], spans["to"], spans["day"]) == (MIDNIGHT, NEXT_MIDNIGHT, DAY)
        response, body = yield get(url + "spans.json?from=%f&to=%f" % (T0 + 50, T0 + 200))
        assert json.loads(body)["spans"] == [[T0 + 100, T0 + 109]]
        response, body = yield get(url + "events.json?day=" + DAY)
        first, second = json.loads(body)["events"]
        assert (first["start"], first["end"], first["peak_score"], first["region"]) == (T0 + 5, T0 + 8, 0.25,
                                                                                          [1, 2, 30, 40])
        assert (first["clip_start"], first["clip_end"]) == (T0 + 4.5, T0 + 8.5)
        assert first["thumbnail"] == "event/%d/thumbnail.jpg" % first["id"] and second["thumbnail"] is None
        response, body = yield get(url + first["thumbnail"])
        assert response.code == 200 and body == thumbnail
        assert header(response, b"cache-control").startswith(b"private, max-age=")
        for missing in ("event/%d/thumbnail.jpg" % second["id"], "event/999/thumbnail.jpg",
                        "event/abc/thumbnail.jpg", "event/1/other.jpg", "event/1/thumbnail.jpg/more", "event/0"):
            response, body = yield get(url + missing)
            assert response.code == 404 and oneLine(body), missing
        # The frame shown at a moment, the next one, the previous one; each with its recorded time.
        for query, index in (("t=%f" % (T0 + 1.7), 3), ("t=%f&step=next" % times[3], 4),
                             ("t=%f&step=prev" % times[3], 2), ("t=%f&step=next" % (T0 + 50), 40)):
            response, body = yield get(url + "frame.jpg?" + query)
            assert response.code == 200 and body == frames[index], query
            assert header(response, b"x-timestamp") == b"%.3f" % times[index]
            assert header(response, b"content-type") == b"image/jpeg"
        for query in ("t=%f&step=prev" % T0, "t=%f&step=next" % times[-1]):
            response, body = yield get(url + "frame.jpg?" + query)
            assert response.code == 404 and oneLine(body) and b"no recorded frame" in body
        response, page = yield get(url + "timeline")
        assert response.code == 200 and b"/static/timeline.js" in page and b"/static/player.js" in page
    finally:
        yield stop(recorder, servers)


BAD_QUERIES = [
    ("frame.jpg", b"give t"),
    ("frame.jpg?t=soon", b"t must be a time in Unix seconds"),
    ("frame.jpg?t=nan", b"t must be a time"),
    ("frame.jpg?t=-5", b"t must be a time"),
    ("frame.jpg?t=1e300", b"t must be a time"),
    ("frame.jpg?t=1&t=2", b"give t once"),
    ("frame.jpg?t=" + "1" * 100, b"t is too long"),
    ("frame.jpg?t=1&step=sideways", b"step must be one of next, prev"),
    ("spans.json", b"give day=YYYY-MM-DD, or from and to"),
    ("spans.json?day=yesterday", b"day must be YYYY-MM-DD"),
    ("spans.json?day=2024-02-30", b"does not exist"),
    ("spans.json?day=2024-05-06&from=1&to=2", b"either day or from and to"),
    ("spans.json?from=100", b"give to"),
    ("events.json?from=200&to=100", b"to must be after from"),
    ("events.json?from=0&to=%d" % (8 * 86400), b"that range is too long: at most 7 days"),
    ("play.mjpg", b"give from"),
    ("play.mjpg?from=%f&speed=9" % T0, b"speed must be a number from 0.25 to 8"),
    ("play.mjpg?from=%f&speed=0" % T0, b"speed must be a number from 0.25 to 8"),
    ("play.mjpg?from=%f&to=%f" % (T0, T0 - 1), b"to must be after from"),
    ("play.mjpg?from=%f&to=%f" % (T0, T0 + 2 * 86400), b"a stream plays at most 1 day"),
]


@pytest_twisted.inlineCallbacks
def test_bad_queries_get_one_line_400s(tmp_path):
    writeFootage(tmp_path / "cam", [T0, T0 + 1])
    recorder, servers = yield silentRecorder(tmp_path)
    try:
        for path, expected in BAD_QUERIES:
            response, body = yield get(recorder.web.url + "cam/" + path)
            assert response.code == 400 and expected in body and oneLine(body), (path, body)
        assert recorder.web.players.viewers == set() and recorder.web.reads.pending == 0
    finally:
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_lists_are_capped_and_say_so(tmp_path, monkeypatch):
    monkeypatch.setattr(timeline, "MAX_SPANS_LISTED", 1)
    monkeypatch.setattr(timeline, "MAX_EVENTS_LISTED", 1)
    monkeypatch.setattr(timeline, "MAX_DAYS_LISTED", 1)
    writeFootage(tmp_path / "cam", [T0, T0 + 60, T0 + 86400], events=[event(0, 1), event(60, 61)])
    recorder, servers = yield silentRecorder(tmp_path)
    url = recorder.web.url + "cam/"
    try:
        _, body = yield get(url + "days.json")
        assert json.loads(body) == {"camera": "cam", "days": ["2024-05-07"], "truncated": True}
        _, body = yield get(url + "spans.json?day=" + DAY)
        assert json.loads(body)["spans"] == [[T0, T0]] and json.loads(body)["truncated"]
        _, body = yield get(url + "events.json?day=" + DAY)
        assert len(json.loads(body)["events"]) == 1 and json.loads(body)["truncated"]
    finally:
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_a_camera_with_nothing_recorded_and_a_recorder_without_segments(tmp_path):
    recorder, servers = yield silentRecorder(tmp_path)
    url = recorder.web.url + "cam/"
    try:
        _, body = yield get(url + "days.json")
        assert json.loads(body)["days"] == []
        _, body = yield get(url + "spans.json?day=" + DAY)
        assert json.loads(body)["spans"] == []
        response, body = yield get(url + "frame.jpg?t=%f" % T0)
        assert response.code == 404 and oneLine(body)
        parts, _ = yield wholeStream(url + "play.mjpg?from=%f" % T0)
        assert parts == []
    finally:
        yield stop(recorder, servers)
    recorder = startRecorder(makeConfig(tmp_path / "jpg", [("cam", "tcp:host=127.0.0.1:port=9")], format="jpg",
                                        web="tcp:0:interface=127.0.0.1", webSettings=WebSettings(login=False)))
    try:
        yield waitFor(lambda: recorder.web.url is not None, what="the web interface to listen")
        for path in ("days.json", "spans.json?day=" + DAY, "frame.jpg?t=1", "play.mjpg?from=1", "exports"):
            response, body = yield get(recorder.web.url + "cam/" + path)
            assert response.code == 404 and b"the timeline needs --format segments" in body and oneLine(body)
        response, _ = yield get(recorder.web.url + "cam/timeline")
        assert response.code == 200
    finally:
        yield recorder.stopService()


@pytest_twisted.inlineCallbacks
def test_playback_sends_the_recorded_frames_with_their_times(tmp_path):
    times = [T0 + i * 0.1 for i in range(60)]
    frames = writeFootage(tmp_path / "cam", times)
    recorder, servers = yield silentRecorder(tmp_path)
    url = recorder.web.url + "cam/play.mjpg"
    try:
        # At recorded speed, every frame of the range, in order, each with its time; then the stream ends.
        parts, headers = yield wholeStream(url + "?from=%f&to=%f&speed=1" % (T0 + 1, T0 + 2))
        assert parts == frames[10:20]
        assert [float(h[b"X-Timestamp"]) for h in headers] == pytest.approx(times[10:20], abs=0.0006)
        # Fast: at most MAX_PLAY_FPS parts a second, the frames in between skipped; still recorded frames.
        parts, headers = yield wholeStream(url + "?from=%f&speed=8" % T0)
        shown = [float(h[b"X-Timestamp"]) for h in headers]
        every = 8 / MAX_PLAY_FPS
        assert shown[0] == pytest.approx(T0) and len(parts) < len(frames) / 2
        # One frame per slot of `every` s of recording: two shown frames are within a frame interval of it.
        assert all(every - 0.101 <= b - a <= every + 0.101 for a, b in zip(shown, shown[1:], strict=False))
        for part, when in zip(parts, shown, strict=True):
            assert part == frames[round((when - T0) * 10)]
        # From a moment inside a gap or before the recording: the next recorded frame first.
        parts = yield streamParts(url + "?from=%f" % (T0 - 3600), 1)
        assert parts == [frames[0]]
        parts, _ = yield wholeStream(url + "?from=%f" % (T0 + 3600))
        assert parts == []
        yield waitFor(lambda: not recorder.web.players.viewers, what="the players to leave")
    finally:
        yield stop(recorder, servers)


def _playOnAClock(tmp_path, query, times):
    """A real HTTP channel (on a StringTransport) playing ``times`` with the pacing on a Clock."""
    writeFootage(tmp_path / "cam", times)
    clock = task.Clock()
    reads = FootageReads(str(tmp_path), reactor)
    reads.start()
    limits = ViewerLimits(4)
    site = Site(PlayResource(reads, "cam", limits, clock), reactor=clock)
    site.timeout = None
    site.protocol = HTTPChannel
    channel = site.buildProtocol(IPv4Address("TCP", "127.0.0.1", 5000))
    transport = StringTransport(peerAddress=IPv4Address("TCP", "127.0.0.1", 5000))
    channel.makeConnection(transport)
    channel.dataReceived(b"GET /play.mjpg?" + query + b" HTTP/1.1\r\nHost: localhost\r\n\r\n")
    return clock, reads, limits, channel, transport


def _stamps(transport):
    return [float(line.split(b": ")[1]) for line in transport.value().split(b"\r\n") if line.startswith(b"X-Timestamp")]


@pytest_twisted.inlineCallbacks
def test_playback_is_paced_by_the_recorded_times(tmp_path):
    offsets = [0, 0.1, 0.2, 0.3, 3.3, 3.4]  # a pause of 3 s in the recording
    times = [T0 + offset for offset in offsets]
    clock, reads, limits, channel, transport = _playOnAClock(tmp_path, b"from=%f&speed=2" % T0, times)
    try:
        yield waitFor(lambda: clock.getDelayedCalls(), what="the first frame to be read")
        clock.advance(0)
        assert _stamps(transport) == [times[0]]  # the first frame goes out as soon as it is read
        sentAt = {times[0]: 0.0}
        yield waitFor(lambda: clock.getDelayedCalls(), what="the frames after it to be read")
        for _ in range(100):
            clock.advance(0.01)
            for stamp in _stamps(transport)[len(sentAt):]:
                sentAt[stamp] = round(clock.seconds(), 3)
        # Half the recorded intervals at speed 2; the pause shown as GAP_SECONDS (halved too).
        expected = [0, 0.05, 0.1, 0.15, 0.15 + GAP_SECONDS / 2, 0.2 + GAP_SECONDS / 2]
        assert list(sentAt) == pytest.approx(times, abs=0.0006)
        assert list(sentAt.values()) == pytest.approx(expected, abs=0.011)
        yield waitFor(lambda: transport.value().endswith(b"0\r\n\r\n"), what="the stream to end")
        assert not limits.viewers
    finally:
        reads.stop()


@pytest_twisted.inlineCallbacks
def test_a_full_connection_pauses_playback_and_a_stalled_one_is_dropped(tmp_path):
    times = [T0 + i * 0.1 for i in range(20)]
    clock, reads, limits, channel, transport = _playOnAClock(tmp_path, b"from=%f&speed=1" % T0, times)
    try:
        yield waitFor(lambda: clock.getDelayedCalls(), what="the first frame to be read")
        clock.advance(0)
        yield waitFor(lambda: clock.getDelayedCalls(), what="the frames after it to be read")
        clock.advance(0.1)
        assert len(_stamps(transport)) == 2
        channel.pauseProducing()  # what the transport does when the client's buffer is full
        clock.advance(1)
        assert len(_stamps(transport)) == 2
        # Resumed: the next frame at once, then the recorded pace again (no burst for the time paused).
        channel.resumeProducing()
        clock.advance(0)
        assert len(_stamps(transport)) == 3
        clock.advance(0.05)
        assert len(_stamps(transport)) == 3
        clock.advance(0.05)
        assert len(_stamps(transport)) == 4
        channel.pauseProducing()
        [stream] = limits.viewers
        clock.advance(PlaybackStream.stallTimeout)
        assert stream.stalled and not limits.viewers and transport.disconnecting
    finally:
        reads.stop()


@pytest_twisted.inlineCallbacks
def test_playback_streams_are_bounded_per_address_and_in_all(tmp_path, monkeypatch):
    monkeypatch.setattr(service, "PLAYERS_PER_ADDRESS", 2)
    monkeypatch.setattr(PlayResource, "maxPlayers", 3)
    times = [T0 + i * 0.1 for i in range(100)]
    writeFootage(tmp_path / "cam", times)
    recorder, servers = yield silentRecorder(tmp_path)
    port = recorder.web.port.getHost().port
    slow = "/cam/play.mjpg?from=%f&speed=0.25" % T0
    held = []
    try:
        for _ in range(2):
            held.append(rawRequest(port, slow))
        yield waitFor(lambda: len(recorder.web.players.viewers) == 2, what="two players")
        response, body = yield get(recorder.web.url + slow[1:])
        assert response.code == 429 and b"too many playback streams from your address" in body and oneLine(body)
        assert header(response, b"retry-after") == b"5"
        parts = yield streamParts(recorder.web.url + slow[1:], 1, source="127.0.0.2")
        assert len(parts) == 1
        held.append(rawRequest(port, slow, source="127.0.0.3"))
        yield waitFor(lambda: len(recorder.web.players.viewers) == 3, what="three players")
        response, body = yield get(recorder.web.url + slow[1:], source="127.0.0.4")
        assert response.code == 503 and b"too many playback streams (at most 3)" in body
        assert recorder.web.webStatus()["refused_players"] == 1
    finally:
        for client in held:
            client.close()
    try:
        yield waitFor(lambda: not recorder.web.players.viewers, what="the players to leave")
    finally:
        yield stop(recorder, servers)


@pytest_twisted.inlineCallbacks
def test_reads_waiting_are_bounded_per_address_and_in_all(tmp_path):
    writeFootage(tmp_path / "cam", [T0])
    reads = FootageReads(str(tmp_path), reactor)
    reads.maxPending, reads.perAddress = 5, 3
    # The pool is not started yet: reads wait for a thread, as they would behind slow disks.
    waiting = [reads.run("127.0.0.1", Footage.count, "cam", T0, T0 + 1) for _ in range(3)]
    with pytest.raises(ReadsBusy, match="too many footage requests from your address") as refused:
        reads.check("127.0.0.1")
    assert refused.value.code == 429
    waiting += [reads.run("127.0.0.2", Footage.count, "cam", T0, T0 + 1) for _ in range(2)]
    failed = reads.run("127.0.0.3", Footage.count, "cam", T0, T0 + 1)
    assert reads.pending == 5 and reads.refused == 2
    with pytest.raises(ReadsBusy, match="busy reading footage"):
        yield failed
    reads.start()
    try:
        counts = yield defer.gatherResults(waiting)
        assert counts == [1] * 5 and reads.pending == 0
        assert (yield reads.run("127.0.0.3", Footage.count, "cam", T0, T0 + 1)) == 1
    finally:
        reads.stop()


@pytest_twisted.inlineCallbacks
def test_footage_needs_the_login(tmp_path):
    from tcpcam.record.web.auth import AuthFile, hashPassword

    writeFootage(tmp_path / "cam", [T0])
    AuthFile(str(tmp_path / "web-auth.json")).save(password=hashPassword("a long password"))
    recorder, servers = yield silentRecorder(tmp_path, login=True)
    try:
        for path in ("days.json", "spans.json?day=" + DAY, "frame.jpg?t=%f" % T0, "play.mjpg?from=%f" % T0,
                     "event/1/thumbnail.jpg", "exports", "timeline"):
            response, _ = yield get(recorder.web.url + "cam/" + path)
            assert response.code == 401, path
    finally:
        yield stop(recorder, servers)


def test_the_stream_reads_a_frame_per_slot_of_the_speed(tmp_path):
    """The skipping happens in the index: at 8x only one frame per 8/MAX_PLAY_FPS s of recording is read."""
    times = [T0 + i * 0.1 for i in range(30)]
    writeFootage(tmp_path / "cam", times)
    footage = Footage(str(tmp_path))
    try:
        batch = playback.readBatch(footage, "cam", T0, T0 + 10, 8 / MAX_PLAY_FPS)
        assert len(batch) <= playback.READ_AHEAD_FRAMES
        assert [round(when - T0, 1) for when, _ in batch] == [0.0, 0.4, 0.7, 1.0, 1.3, 1.6, 2.0, 2.3, 2.6, 2.9]
    finally:
        footage.close()

