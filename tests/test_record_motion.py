"""Motion detection: the background model on real JPEGs, the event state machine, mode motion on loopback."""

import io
import os
import sqlite3

import numpy as np
import pytest_twisted
from PIL import Image
from record_support import ScriptedCameraFactory, indexedFrames, makeConfig, startRecorder, waitFor
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString

from tcpcam.record.config import CameraConfig
from tcpcam.record.footage import Footage
from tcpcam.record.motion import MotionDetector, MotionEvents

_TEXTURE = np.random.default_rng(7).integers(40, 200, size=(120, 160, 3), dtype=np.uint8)


def picture(box=None, noise=0, seed=0):
    """A 160x120 JPEG of a fixed texture, with a white box ``(x0, y0, x1, y1)`` and sensor noise if asked."""
    pixels = _TEXTURE.astype(np.int16)
    if noise:
        pixels = pixels + np.random.default_rng(seed).normal(0, noise, pixels.shape).astype(np.int16)
    if box is not None:
        x0, y0, x1, y1 = box
        pixels[y0:y1, x0:x1] = 255
    out = io.BytesIO()
    Image.fromarray(np.clip(pixels, 0, 255).astype(np.uint8)).save(out, "JPEG", quality=80)
    return out.getvalue()


def test_static_noisy_scene_scores_nothing_and_a_box_is_found_where_it_is():
    detector = MotionDetector()
    scores = [detector.analyse(picture(noise=3, seed=i))[0] for i in range(10)]
    assert scores == [0.0] * 10
    score, region = detector.analyse(picture(box=(96, 40, 136, 88)))
    assert score > 0.05
    x0, y0, x1, y1 = region
    assert 88 <= x0 <= 96 and 32 <= y0 <= 40 and 136 <= x1 <= 144 and 88 <= y1 <= 96


def test_a_masked_zone_is_ignored():
    detector = MotionDetector(mask=[(0.5, 0.0, 1.0, 1.0)])
    detector.analyse(picture())
    assert detector.analyse(picture(box=(96, 40, 136, 88))) == (0.0, None)
    score, region = detector.analyse(picture(box=(16, 40, 56, 88)))
    assert score > 0.05 and region[2] <= 80


def test_the_background_adapts_to_a_change_that_stays():
    detector = MotionDetector(alpha=0.2)
    detector.analyse(picture())
    scores = [detector.analyse(picture(box=(40, 40, 80, 80)))[0] for _ in range(30)]
    assert scores[0] > 0.05 and scores[-1] == 0.0


def test_a_picture_that_is_not_a_jpeg_raises_oserror():
    try:
        MotionDetector().analyse(b"\xff\xd8 not really a picture \xff\xd9")
    except OSError:
        return
    raise AssertionError("no OSError")


def test_events_start_keep_their_peak_and_end_after_the_post_roll():
    events = MotionEvents(threshold=0.01, preRoll=1.0, postRoll=2.0)
    assert events.feed(0, 0.0, None) == []
    [(kind, event)] = events.feed(100, 0.02, (1, 2, 3, 4))
    assert kind == "start" and event.startMs == 100 and event.preRollMs == 1000
    assert events.feed(200, 0.05, (5, 6, 7, 8)) == [("peak", event)]
    assert events.feed(300, 0.03, None) == []
    assert events.feed(2300, 0.0, None) == []          # 2.0 s of calm: not yet more than the post-roll
    assert events.feed(2301, 0.0, None) == [("end", event)]
    assert (event.endMs, event.peakMs, event.peakScore, event.region) == (300, 200, 0.05, (5, 6, 7, 8))
    # A new event after the end; a still-open one ends with flush().
    assert events.feed(5000, 0.5, None)[0][0] == "start"
    assert events.flush().endMs == 5000 and events.current is None


class PictureCamera(ScriptedCameraFactory):
    """A scripted camera whose frames are real pictures: calm, then a moving box, then calm."""

    def __init__(self, scripts, calm, moving):
        ScriptedCameraFactory.__init__(self, scripts)
        self.calm, self.moving = calm, moving

    def nextFrame(self):
        self._count += 1
        index = self._count - 1 - self.calm
        if 0 <= index < self.moving:
            return picture(box=(10 + 8 * index, 30, 50 + 8 * index, 80))
        return picture(noise=2, seed=self._count)


@pytest_twisted.inlineCallbacks
def test_mode_motion_keeps_pre_roll_the_event_and_post_roll_only(tmp_path):
    factory = PictureCamera([[("stream", 0.02)]], calm=40, moving=10)
    port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    camera = CameraConfig(name="cam", endpoint="tcp:host=127.0.0.1:port=%d" % port.getHost().port,
                          frameTimeout=1.0, motion=True, mode="motion", motionThreshold=0.01,
                          preRoll=0.3, postRoll=0.3)
    recorder = startRecorder(makeConfig(tmp_path, [camera]))
    cam = recorder.cameras["cam"]
    try:
        yield waitFor(lambda: cam.motionStats.events == 1 and not cam.motionStats.active and cam.frames > 90,
                      what="a motion event that ended")
    finally:
        yield recorder.stopService()
        yield port.stopListening()
    sent = factory.sent
    stored = [frame for _, frame in indexedFrames(str(tmp_path / "cam"))]
    positions = [sent.index(frame) for frame in stored]
    assert positions == list(range(positions[0], positions[0] + len(positions)))  # one stretch, in order
    # Pre-roll: calm frames before the first moving one (40) were kept; not the whole calm start.
    assert 10 < positions[0] < 40
    # The whole event, then the post-roll of calm, then nothing more.
    assert positions[-1] >= 50 and positions[-1] < cam.frames - 5
    footage = Footage(str(tmp_path))
    [event] = footage.events("cam", 0, 2 ** 40)
    assert event.end is not None and event.peakScore > 0.01 and event.postRoll == 0.3
    thumb = footage.thumbnail("cam", event.id)
    assert Image.open(io.BytesIO(thumb)).size == (160, 120)
    db = sqlite3.connect(os.path.join(tmp_path, "cam", "index.sqlite3"))
    assert db.execute("SELECT COUNT(*) FROM segments WHERE motion = 0").fetchone()[0] == 0
    db.close()
    status = recorder.status()["cameras"]["cam"]
    assert status["motion_events"] == 1 and status["motion_analysed"] > 50
    footage.close()


@pytest_twisted.inlineCallbacks
def test_continuous_mode_with_motion_records_everything_and_flags_the_event(tmp_path):
    factory = PictureCamera([[("stream", 0.01)]], calm=60, moving=8)
    port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    camera = CameraConfig(name="cam", endpoint="tcp:host=127.0.0.1:port=%d" % port.getHost().port,
                          frameTimeout=1.0, motion=True, motionThreshold=0.01, preRoll=0.1, postRoll=0.2)
    recorder = startRecorder(makeConfig(tmp_path, [camera], segmentSeconds=0.2))
    cam = recorder.cameras["cam"]
    try:
        yield waitFor(lambda: cam.motionStats.events == 1 and not cam.motionStats.active and cam.frames > 120,
                      what="a motion event that ended")
    finally:
        yield recorder.stopService()
        yield port.stopListening()
    stored = indexedFrames(str(tmp_path / "cam"))
    assert len(stored) == cam.frames
    db = sqlite3.connect(os.path.join(tmp_path, "cam", "index.sqlite3"))
    flags = [row[0] for row in db.execute("SELECT motion FROM segments ORDER BY start_ms")]
    db.close()
    # Short segments: the ones around the event hold motion, the first and the last do not.
    assert 1 in flags and flags[0] == 0 and flags[-1] == 0
