"""The timeline page in Debian's headless chromium: the day drawn, a click that plays, stepping, speed, export.

A segment store of a camera (two stretches of a minute at 10 frames/s, two
motion events with thumbnails) is written first; then a recorder runs over
it in its own process (its camera refused, so nothing new is recorded), and
the browser uses the page as a person would: real mouse clicks and drags. The
frames the page shows are compared byte for byte with the recorded ones, and
the file exported from the page is checked with Debian's ffprobe. Runs in
the ``browser`` tox env (which has chromium, chromedriver and ffmpeg).
Screenshots are kept in each test's ``tmp_path``.
"""

import base64
import io
import os
import socket
import time

import pytest
from browser_support import (
    BROWSER_ONLY,
    assertNotBlank,
    browser,
    colourPixels,
    elementBox,
    pictureShown,
    quit,
    screenshot,
    startRecorder,
    waitForDownload,
    waitUntil,
)
from ffprobe_support import ffprobe

pytestmark = BROWSER_ONLY

T0 = time.mktime((2024, 5, 6, 10, 0, 0, 0, 0, -1))
#: The recorded times: a minute from T0, a pause of a minute, another minute.
TIMES = [round(T0 + i * 0.1, 3) for i in range(600)] + [round(T0 + 120 + i * 0.1, 3) for i in range(600)]
#: The page's colours: recorded spans, motion marks.
SPAN_BLUE = (0x2F, 0x6F, 0xC4)
MOTION_ORANGE = (0xF0, 0xA0, 0x20)
#: The colour of the events' thumbnails (nothing else on the page has it).
THUMBNAIL_MAGENTA = (200, 30, 200)


def _frame(index):
    """A 320x240 JPEG: a colour of its own, its number, a box that moves."""
    from PIL import Image, ImageDraw

    picture = Image.new("RGB", (320, 240), (40 + (index * 37) % 160, 60 + (index * 13) % 120, 120 + (index * 7) % 120))
    draw = ImageDraw.Draw(picture)
    box = (index * 4) % 260
    draw.rectangle([box, 150, box + 50, 200], fill=(255, 255, 255))
    draw.text((12, 12), "frame %d" % index, fill=(255, 255, 0))
    out = io.BytesIO()
    picture.save(out, "JPEG", quality=85)
    return out.getvalue()


def _thumbnail():
    from PIL import Image

    out = io.BytesIO()
    Image.new("RGB", (160, 120), THUMBNAIL_MAGENTA).save(out, "JPEG", quality=90)
    return out.getvalue()


def _event(start, end):
    return {"start_ms": int((T0 + start) * 1000), "end_ms": int((T0 + end) * 1000),
            "peak_ms": int((T0 + start + 1) * 1000), "peak_score": 0.3, "x0": 10, "y0": 150, "x1": 60, "y1": 200,
            "pre_roll_ms": 1000, "post_roll_ms": 2000, "thumbnail": _thumbnail()}


def writeRecording(root, times=TIMES):
    """Camera ``door``'s segment store under ``root``: a frame at each time, and two events."""
    from tcpcam.record.segments import SegmentStore

    store = SegmentStore(str(root / "door"))
    store.open()
    for index, when in enumerate(times):
        store.write(_frame(index), when)
    store.saveEvent(_event(5, 9))
    store.saveEvent(_event(130, 133))
    store.close()


@pytest.fixture
def refusedPort():
    """A loopback port that refuses connections (bound, never listening): a camera that is down."""
    refused = socket.socket()
    refused.bind(("127.0.0.1", 0))
    yield refused.getsockname()[1]
    refused.close()


@pytest.fixture
def recorded(tmp_path, refusedPort):
    """``(url of the timeline, recordings folder, downloads folder, recorder)``."""
    root = tmp_path / "recordings"
    writeRecording(root)
    recorder, url = startRecorder(tmp_path, "--web-login", "false", "--camera",
                                  "door=tcp:host=127.0.0.1:port=%d" % refusedPort)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    try:
        yield url + "door/timeline", root, downloads, recorder
    finally:
        recorder.stop()


def recordedFrame(root, when):
    """The recorded frame shown at ``when`` (read with the project's read API)."""
    from tcpcam.record.footage import Footage

    footage = Footage(str(root))
    try:
        return footage.frameAt("door", when)
    finally:
        footage.close()


def shown(driver):
    """``(time, bytes)`` of the frame the page shows now (paused)."""
    data = driver.execute_async_script(
        "const done = arguments[arguments.length - 1], player = tcpcamTimeline.player;"
        "player.blob.arrayBuffer().then(b => {"
        "  const a = new Uint8Array(b); let s = ''; for (let i = 0; i < a.length; i++) s += String.fromCharCode(a[i]);"
        "  done([player.time, btoa(s)]); }).catch(e => done([null, String(e)]));")
    assert data[0] is not None, data[1]
    return data[0], base64.b64decode(data[1])


def player(driver, field):
    return driver.execute_script("return tcpcamTimeline.player[arguments[0]]", field)


def openTimeline(driver, url):
    driver.get(url)
    waitUntil(lambda: driver.execute_script("return document.querySelectorAll('#spans .span').length") == 2,
              what="the day's two spans")
    waitUntil(lambda: pictureShown(driver, "#frame") and player(driver, "time") is not None, what="the first frame")


def trackOffset(driver, when):
    """The offset from the track's centre of the moment ``when``, in CSS pixels."""
    x = driver.execute_script("return tcpcamTimeline.xOf(arguments[0])", when)
    width = driver.execute_script("return document.getElementById('track').clientWidth")
    return int(round(x - width / 2))


def clickAt(driver, when):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    track = driver.find_element(By.ID, "track")
    ActionChains(driver).move_to_element_with_offset(track, trackOffset(driver, when), 0).click().perform()


def dragAcross(driver, start, end):
    from selenium.webdriver.common.action_chains import ActionChains
    from selenium.webdriver.common.by import By

    track = driver.find_element(By.ID, "track")
    first, last = trackOffset(driver, start), trackOffset(driver, end)
    (ActionChains(driver).move_to_element_with_offset(track, first, 0).click_and_hold()
     .move_by_offset((last - first) // 2, 0).move_by_offset(last - first - (last - first) // 2, 0).release().perform())


def watchFrames(driver):
    """Note the time of every frame the page shows from now on, in ``window.seen``."""
    driver.execute_script(
        "window.seen = []; const p = tcpcamTimeline.player;"
        "if (!p.watched) { const shown = p.onframe; p.watched = true;"
        "  p.onframe = function (t) { window.seen.push(t); shown(t); }; }")


def test_the_timeline_shows_the_day_its_spans_and_events(recorded, tmp_path):
    url, root, _, _ = recorded
    driver = browser()
    try:
        openTimeline(driver, url)
        waitUntil(lambda: driver.execute_script(
            "return [...document.querySelectorAll('#events img')].filter(i => i.naturalWidth > 0).length") == 2,
            what="both events' thumbnails")
        page = screenshot(driver, tmp_path / "timeline.png")
        assertNotBlank(page, "the timeline page")
        track = elementBox(driver, "#track")
        assert colourPixels(page, SPAN_BLUE, tolerance=12, box=track) > 8000, "the recorded spans are not drawn"
        assert colourPixels(page, MOTION_ORANGE, tolerance=12, box=track) > 50, "the motion events are not drawn"
        assert colourPixels(page, THUMBNAIL_MAGENTA, tolerance=20, box=elementBox(driver, "#events")) > 4000
        # The first recorded frame is shown, and it is the recorded one.
        when, data = shown(driver)
        assert (when, data) == recordedFrame(root, TIMES[0]) and when == TIMES[0]
        stage = elementBox(driver, "#stage")
        assert stage[2] - stage[0] > 600 and stage[3] - stage[1] > 250, "the picture is too small: %r" % (stage,)
        assert driver.execute_script("return document.getElementById('day').value") == "2024-05-06"
        assert driver.execute_script("return document.querySelectorAll('#events li').length") == 2
        assert driver.find_element("id", "status").text == "2 min recorded · 2 motion events"
        # The page fits the window: nothing sticks out sideways.
        assert driver.execute_script("return document.documentElement.scrollWidth <= innerWidth")
    finally:
        quit(driver)


def test_a_click_on_the_timeline_plays_the_recorded_frames(recorded, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select

    url, root, _, _ = recorded
    driver = browser()
    try:
        openTimeline(driver, url)
        watchFrames(driver)
        clickAt(driver, T0 + 20)
        waitUntil(lambda: len(driver.execute_script("return window.seen")) >= 12, what="frames playing")
        assert player(driver, "playing")
        screenshot(driver, tmp_path / "playing.png")
        driver.find_element(By.ID, "play").click()  # pause
        waitUntil(lambda: not player(driver, "playing"), what="the pause")
        seen = driver.execute_script("return window.seen")
        # From where the click was (within a pixel of the axis), every recorded frame in turn, at 1x.
        start = TIMES.index(seen[0])
        assert abs(seen[0] - (T0 + 20)) < 1.0, seen[0]
        assert seen == TIMES[start:start + len(seen)]
        first = shown(driver)
        assert first == recordedFrame(root, first[0]) and first[0] == seen[-1]
        # Step frame by frame, forward and back.
        driver.find_element(By.ID, "next").click()
        waitUntil(lambda: player(driver, "time") == TIMES[start + len(seen)], what="the next frame")
        stepped = shown(driver)
        assert stepped == recordedFrame(root, stepped[0]) and stepped[1] != first[1]
        driver.find_element(By.ID, "prev").click()
        driver.find_element(By.ID, "prev").click()
        waitUntil(lambda: player(driver, "time") == TIMES[start + len(seen) - 2], what="two frames back")
        assert shown(driver) == recordedFrame(root, TIMES[start + len(seen) - 2])
        # Faster: 4x covers more recording in as many frames (frames in between are skipped by the recorder).
        Select(driver.find_element(By.ID, "speed")).select_by_value("4")
        watchFrames(driver)
        driver.find_element(By.ID, "play").click()
        waitUntil(lambda: len(driver.execute_script("return window.seen")) >= 12, what="frames at 4x")
        fast = driver.execute_script("return window.seen.slice(0, 12)")
        assert fast[-1] - fast[0] > 11 * 0.1 * 1.3 and all(t in TIMES for t in fast)
        assert all(b > a for a, b in zip(fast, fast[1:], strict=False))
        # A click on the other stretch plays from there; the picture changes with it.
        clickAt(driver, T0 + 150)
        waitUntil(lambda: (player(driver, "time") or 0) > T0 + 149, what="the second stretch")
        driver.find_element(By.ID, "play").click()
        waitUntil(lambda: not player(driver, "playing"), what="the pause")
        later = shown(driver)
        assert later == recordedFrame(root, later[0]) and later[1] != first[1]
        page = screenshot(driver, tmp_path / "paused.png")
        assertNotBlank(page, "the paused player")
        seeks = player(driver, "seekTimes")
        assert len(seeks) >= 2 and all(value > 0 for value in seeks)
    finally:
        quit(driver)


def test_an_export_from_the_page_downloads_a_file_ffprobe_reads(recorded, tmp_path):
    from selenium.webdriver.common.by import By

    url, root, downloads, _ = recorded
    driver = browser(downloads)
    try:
        openTimeline(driver, url)
        # A range dragged across the timeline, exported as a video at recorded pace.
        dragAcross(driver, T0 + 30, T0 + 40)
        selection = driver.execute_script("return tcpcamTimeline.state.selection")
        assert selection and 8 < selection[1] - selection[0] < 12, selection
        assert driver.find_element(By.ID, "export-from").get_attribute("value").startswith("10:00:")
        assert not player(driver, "playing"), "a drag selects; it does not play"
        driver.find_element(By.ID, "export").click()
        link = waitUntil(lambda: driver.find_elements(By.CSS_SELECTOR, ".job.done a.download"), timeout=60,
                         what="the export to be done")[0]
        job = driver.execute_script("return Object.values(tcpcamTimeline.state.jobs)[0]")
        screenshot(driver, tmp_path / "exported.png")
        link.click()
        name = waitForDownload(downloads, ".mp4")
        assert name == job["name"] and name.startswith("door_2024-05-06_10-00-")
        assert abs(job["from"] - (T0 + 30)) < 1 and abs(job["to"] - (T0 + 40)) < 1, job
        expected = [t for t in TIMES if job["from"] <= t < job["to"]]
        probe = ffprobe(downloads / name)
        assert (probe["codec_name"], probe["pix_fmt"], probe["width"], probe["height"]) == ("h264", "yuv420p", 320, 240)
        assert int(probe["nb_read_frames"]) == len(expected) == job["frames"]
        assert float(probe["duration"]) == pytest.approx(expected[-1] - expected[0] + 0.1, abs=0.002)
        # An event as a time-lapse: one frame every second of its clip, 10 frames a second.
        driver.find_element(By.CSS_SELECTOR, 'input[name="kind"][value="timelapse"]').click()
        every = driver.find_element(By.ID, "every")
        every.clear()
        every.send_keys("1")
        driver.find_element(By.CSS_SELECTOR, "#events li:last-child .export-event").click()
        waitUntil(lambda: len(driver.find_elements(By.CSS_SELECTOR, ".job.done a.download")) == 2, timeout=60,
                  what="the time-lapse to be done")
        lapse = driver.execute_script(
            "return Object.values(tcpcamTimeline.state.jobs).find(j => j.kind === 'timelapse')")
        driver.find_element(By.CSS_SELECTOR, "#job-%s a.download" % lapse["id"]).click()
        lapseName = waitForDownload(downloads, ".mp4", known={name})
        exported = [job["id"] + ".mp4", lapse["id"] + ".mp4"]
        assert lapseName == lapse["name"] and "timelapse-1s" in lapseName
        clip = (T0 + 130 - 1, T0 + 133 + 2 + 0.001)  # the event with its pre- and post-roll
        assert (lapse["from"], lapse["to"]) == pytest.approx(clip)
        probe = ffprobe(downloads / lapseName)
        assert int(probe["nb_read_frames"]) == lapse["frames"] == 7  # 129 s to 135 s, a frame a second
        assert float(probe["duration"]) == pytest.approx(0.7, abs=0.002)
        # A long one, cancelled from the page: it says so, and nothing is left.
        driver.find_element(By.CSS_SELECTOR, 'input[name="kind"][value="video"]').click()
        driver.execute_script(
            "document.getElementById('export-from').value = '10:00:00';"
            "document.getElementById('export-to').value = '10:03:00';"
            "document.getElementById('export-to').dispatchEvent(new Event('change'));")
        driver.find_element(By.ID, "export").click()
        cancel = waitUntil(lambda: driver.find_elements(By.CSS_SELECTOR, ".job.new .cancel, .job.running .cancel"),
                           what="the long export to start")[0]
        cancel.click()
        waitUntil(lambda: driver.find_elements(By.CSS_SELECTOR, ".job.cancelled"), what="the export cancelled")
        assert "Cancelled" in driver.find_element(By.CSS_SELECTOR, ".job.cancelled .job-state").text
        page = screenshot(driver, tmp_path / "export-jobs.png")
        assertNotBlank(page, "the export jobs")
        waitUntil(lambda: sorted(name for _, _, names in os.walk(root / ".exports") for name in names
                                 if name.endswith(".mp4")) == sorted(exported), what="only the two done exports' files")
    finally:
        quit(driver)


def test_the_timeline_on_a_phone(recorded, tmp_path):
    url, _, _, _ = recorded
    driver = browser(size=(400, 850))
    try:
        openTimeline(driver, url)
        stage, track = elementBox(driver, "#stage"), elementBox(driver, "#track")
        width = driver.execute_script("return document.documentElement.clientWidth * devicePixelRatio")
        assert stage[3] <= track[1] and track[2] <= width, (stage, track, width)
        assert driver.execute_script("return document.documentElement.scrollWidth <= innerWidth")
        page = screenshot(driver, tmp_path / "timeline-phone.png")
        assertNotBlank(page, "the timeline on a phone")
        assert colourPixels(page, SPAN_BLUE, tolerance=12, box=track) > 2000
    finally:
        quit(driver)


def test_ffmpeg_saves_a_stretch_of_play_mjpg_with_a_token(tmp_path, refusedPort):
    """docs/recorder.md: ffmpeg -v error -headers 'Authorization: Bearer TOKEN' -i '...' -c copy clip.mjpeg"""
    import shutil
    import subprocess
    import sys

    from browser_support import TCPCAM

    root = tmp_path / "recordings"
    writeRecording(root, TIMES[:60])
    made = subprocess.run([sys.executable, "-c", TCPCAM, "password", "--token"], cwd=str(tmp_path),
                          capture_output=True, text=True, timeout=60)
    assert made.returncode == 0, made.stderr
    token = made.stdout.strip()
    recorder, url = startRecorder(tmp_path, "--camera", "door=tcp:host=127.0.0.1:port=%d" % refusedPort)
    try:
        program = shutil.which("ffmpeg")
        assert program, "ffmpeg is not installed: apt-get install -y ffmpeg"
        stretch = "%sdoor/play.mjpg?from=%.3f&to=%.3f" % (url, T0 + 1, T0 + 3)
        saved = subprocess.run([program, "-v", "error", "-headers", "Authorization: Bearer " + token, "-i", stretch,
                                "-c", "copy", str(tmp_path / "clip.mjpeg")], capture_output=True, text=True,
                               timeout=60)
        assert saved.returncode == 0, saved.stderr
        # The recorded frames of those two seconds, one after the other, as they are in the segment.
        assert (tmp_path / "clip.mjpeg").read_bytes() == b"".join(_frame(index) for index in range(10, 30))
        refused = subprocess.run([program, "-v", "error", "-i", stretch, "-c", "copy", str(tmp_path / "no.mjpeg")],
                                 capture_output=True, text=True, timeout=60)
        assert refused.returncode != 0 and "401" in refused.stderr
    finally:
        recorder.stop()
