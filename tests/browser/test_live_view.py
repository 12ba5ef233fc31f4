"""The web interface in Debian's headless chromium, as a new user meets it.

Runs in the ``browser`` tox env (which sets TCPCAM_BROWSER_TEST=1) with
Debian's ``chromium`` and ``chromium-driver``; there a missing one is a
failure. Elsewhere the tests are skipped. Screenshots are kept in each test's
``tmp_path`` for a person to look at.
"""

import os
import re

from browser_support import (
    ACCENT,
    BROWSER_ONLY,
    DOWN_RED,
    assertBars,
    assertNotBlank,
    browser,
    colourPixels,
    elementBox,
    pictureShown,
    quit,
    screenshot,
    startCamera,
    startRecorder,
    waitUntil,
)

pytestmark = BROWSER_ONLY

#: The file name a snapshot of the simulated camera downloads as.
SNAPSHOT_NAME = re.compile(r"^simulated_\d{4}-\d\d-\d\d_\d\d-\d\d-\d\d\.\d{3}\.jpg$")


def _text(driver, selector):
    return driver.execute_script("const e = document.querySelector(arguments[0]); return e ? e.textContent : null;",
                                 selector)


def test_first_start_login_grid_camera_and_snapshot(tmp_path):
    """``twistd -n tcpcam-record`` with no option: the printed password logs in; live pictures; a snapshot."""
    from PIL import Image
    from selenium.webdriver.common.by import By

    recorder, url = startRecorder(tmp_path)
    downloads = tmp_path / "downloads"
    downloads.mkdir()
    driver = browser(downloads)
    try:
        password = recorder.waitFor(r"the web interface's password is (\S+) ").group(1)
        # The address asks for the login first.
        driver.get(url)
        assert driver.current_url == url + "login?next=/"
        login = screenshot(driver, tmp_path / "login.png")
        assertNotBlank(login, "the login page")
        assert colourPixels(login, ACCENT, tolerance=20) > 5000, "the login button is not shown"
        # A wrong password says so.
        driver.find_element(By.ID, "password").send_keys("not the password")
        driver.find_element(By.ID, "submit").click()
        waitUntil(lambda: driver.find_element(By.ID, "message").is_displayed(), what="the message")
        assert _text(driver, "#message") == "Wrong password."
        screenshot(driver, tmp_path / "login-wrong.png")
        # The printed one logs in, to the grid.
        driver.find_element(By.ID, "password").send_keys(password)
        driver.find_element(By.ID, "submit").click()
        waitUntil(lambda: driver.current_url == url, what="the grid")
        cookie = driver.get_cookie("tcpcam_session_" + url.rstrip("/").rsplit(":", 1)[1])
        assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
        waitUntil(lambda: pictureShown(driver, "#cam-simulated img"), what="the tile's picture")
        waitUntil(lambda: _text(driver, "#cam-simulated .badge") == "Live", what="the live badge")
        # The simulated camera speaks protocol 2: its state line has its uptime from its health figures.
        waitUntil(lambda: re.search(r"fps · up \d+ s$", _text(driver, "#cam-simulated .meta") or ""),
                  what="the camera's uptime on the state line")
        grid = screenshot(driver, tmp_path / "grid.png")
        assertBars(grid, "the grid", box=elementBox(driver, "#cam-simulated .picture"))
        # A click on the camera shows it full size, on its stream.
        driver.find_element(By.CSS_SELECTOR, "#cam-simulated a.view").click()
        waitUntil(lambda: driver.current_url == url + "simulated/", what="the camera's page")
        waitUntil(lambda: pictureShown(driver, "#picture"), what="the stream's first frame")
        assert driver.find_element(By.ID, "picture").get_attribute("src").startswith(url + "simulated/stream.mjpg")
        waitUntil(lambda: _text(driver, "#badge") == "Live", what="the live badge")
        camera = screenshot(driver, tmp_path / "camera.png")
        tile = elementBox(driver, "#stage")
        assertBars(camera, "the camera's page", atLeast=8000, box=tile)
        assert tile[2] - tile[0] > 1000, "the camera is not shown full size: %r" % (tile,)
        # The snapshot button downloads the newest frame, named after the camera and its time.
        snapshot = driver.find_element(By.ID, "snapshot")
        waitUntil(lambda: "disabled" not in snapshot.get_attribute("class"), what="the snapshot button")
        snapshot.click()
        names = waitUntil(lambda: [n for n in os.listdir(downloads) if n.endswith(".jpg")], what="the download")
        assert SNAPSHOT_NAME.match(names[0]), names
        picture = Image.open(downloads / names[0]).convert("RGB")
        assert picture.size == (640, 480)
        assertBars(picture, "the snapshot", atLeast=5000)
        # Logging out ends the session: the pages ask for the login again.
        driver.get(url)
        waitUntil(lambda: driver.find_element(By.ID, "logout").is_displayed(), what="the log-out button")
        driver.find_element(By.CSS_SELECTOR, "#logout button").click()
        waitUntil(lambda: driver.current_url.startswith(url + "login"), what="the login page")
        driver.get(url + "simulated/")
        assert driver.current_url == url + "login?next=/simulated/"
    finally:
        quit(driver)
        recorder.stop()


def test_one_time_link_logs_in_once(tmp_path):
    """The link printed at the first start logs in with one click, and only once."""
    recorder, url = startRecorder(tmp_path, twistd=False)
    link = recorder.waitFor(r"one-time link: (\S+)").group(1)
    first, second = browser(), browser()
    try:
        first.get(link)
        waitUntil(lambda: first.current_url == url, what="the grid")
        waitUntil(lambda: pictureShown(first, "#cam-simulated img"), what="the tile's picture")
        second.get(link)
        waitUntil(lambda: second.current_url.startswith(url + "login?failed=link"), what="the refusal")
        assert "used already" in _text(second, "#message")
    finally:
        quit(first)
        quit(second)
        recorder.stop()


def test_a_down_camera_never_stalls_the_pages(tmp_path):
    """A refused camera and a silent one show their state at once; the live one its picture."""
    import socket

    camera, endpoint = startCamera(tmp_path)
    silent = socket.socket()
    silent.bind(("127.0.0.1", 0))
    silent.listen(8)  # accepts connections (the kernel does) and never sends a byte
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))  # bound, not listening: connections are refused
    recorder, url = startRecorder(
        tmp_path, "--web-login", "false", "--pin", "1235",
        "--camera", "down=tcp:host=127.0.0.1:port=%d" % closed.getsockname()[1],
        "--camera", "silent=tcp:host=127.0.0.1:port=%d" % silent.getsockname()[1],
        "--camera", "live=" + endpoint)
    driver = browser()
    try:
        recorder.waitFor(r"camera live: connected")
        # The page loads completely (the load event fires) within the page load timeout.
        driver.get(url)
        assert driver.execute_script("return document.readyState") == "complete"
        waitUntil(lambda: _text(driver, "#cam-down .badge") == "Unreachable", what="the down camera's state")
        waitUntil(lambda: _text(driver, "#cam-silent .badge") in ("Waiting", "Connecting"),
                  what="the silent camera's state")
        waitUntil(lambda: pictureShown(driver, "#cam-live img"), what="the live camera's picture")
        assert "Connection refused" in _text(driver, "#cam-down .placeholder")
        grid = screenshot(driver, tmp_path / "grid-down.png")
        assertBars(grid, "the live tile", box=elementBox(driver, "#cam-live .picture"))
        assert colourPixels(grid, DOWN_RED, tolerance=30, box=elementBox(driver, "#cam-down .picture")) > 200
        assert "disabled" in driver.find_element("css selector", "#cam-down .snapshot").get_attribute("class")
        # One camera's page, for each of the cameras that have no picture.
        for name, label in (("down", "Unreachable"), ("silent", None)):
            driver.get(url + name + "/")
            assert driver.execute_script("return document.readyState") == "complete"
            waitUntil(lambda: _text(driver, "#badge") not in ("…", None), what="the state")
            if label:
                assert _text(driver, "#badge") == label
            assert not driver.execute_script("return document.getElementById('picture').hasAttribute('src')")
            page = screenshot(driver, tmp_path / ("camera-%s.png" % name))
            assertNotBlank(page, "the page of camera %s" % name)
    finally:
        quit(driver)
        recorder.stop()
        camera.stop()
        silent.close()
        closed.close()


def test_grid_on_a_phone(tmp_path):
    """The grid fits a narrow window: one column, the name and state readable."""
    camera, endpoint = startCamera(tmp_path)
    recorder, url = startRecorder(tmp_path, "--web-login", "false", "--camera", "front=" + endpoint,
                                  "--camera", "back=" + endpoint)
    driver = browser(size=(400, 850))
    try:
        driver.get(url)
        waitUntil(lambda: pictureShown(driver, "#cam-front img") and pictureShown(driver, "#cam-back img"),
                  what="both pictures")
        front, back = elementBox(driver, "#cam-front"), elementBox(driver, "#cam-back")
        width = driver.execute_script("return document.documentElement.clientWidth")
        assert back[1] >= front[3] and front[2] <= width, (front, back, width)
        name = elementBox(driver, "#cam-front .name")
        assert name[2] - name[0] > 20, "the camera's name is squeezed out"
        shot = screenshot(driver, tmp_path / "grid-phone.png")
        assertBars(shot, "the phone grid", atLeast=1000, box=elementBox(driver, "#cam-front .picture"))
    finally:
        quit(driver)
        recorder.stop()
        camera.stop()
