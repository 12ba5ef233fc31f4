"""Helpers of the browser tests: a recorder in its own process, Debian's chromium driven by Selenium, pixels.

Selenium drives ``/usr/bin/chromedriver`` given by path, so Selenium Manager
never looks for (or downloads) a driver or a browser. Chromium runs with the
project's flag set: headless, no network but loopback.
"""

import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile

import pytest
from wait_support import waitUntil

#: Runs ``twistd`` with the arguments after it.
TWISTD = "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"
#: Runs the ``tcpcam`` console script with the arguments after it.
TCPCAM = "import sys; from tcpcam.cli.main import main; sys.exit(main())"
#: Where Debian's chromium-driver package puts the driver.
CHROMEDRIVER = "/usr/bin/chromedriver"
#: Chromium's flags: headless, no sandbox (root in CI), nothing from the network but loopback.
FLAGS = ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--host-resolver-rules=MAP * ~NOTFOUND, EXCLUDE 127.0.0.1")
#: Colour bars of the simulated camera's test card (the pages themselves have none of these).
BARS = {"yellow": (192, 192, 0), "cyan": (0, 192, 192), "magenta": (192, 0, 192)}
#: Colours of the pages: the accent (buttons) and the "down" state.
ACCENT = (0x4F, 0x9D, 0xFF)
DOWN_RED = (0xF8, 0x51, 0x49)

BROWSER_ONLY = pytest.mark.skipif(
    os.environ.get("TCPCAM_BROWSER_TEST") != "1",
    reason="the browser tests run in their own tox env: tox -e browser")


def chromium():
    """The chromium binary; a failure (not a skip) when it is missing."""
    for name in ("chromium", "chromium-browser"):
        path = shutil.which(name)
        if path:
            return path
    pytest.fail("chromium is not installed: apt-get install -y chromium chromium-driver")


class Process:
    """A program of the project in its own process, its output in a file; stopped with SIGTERM."""

    def __init__(self, argv, cwd, name):
        self.logPath = os.path.join(str(cwd), name + ".log")
        with open(self.logPath, "w") as log:
            self.process = subprocess.Popen([sys.executable, "-c"] + list(argv), cwd=str(cwd), stdout=log,
                                            stderr=subprocess.STDOUT, env=dict(os.environ, PYTHONUNBUFFERED="1"))

    def log(self):
        """The output so far."""
        with open(self.logPath) as handle:
            return handle.read()

    def waitFor(self, pattern, timeout=30.0):
        """The first match of ``pattern`` in the output; fails if the process exits first."""
        def found():
            match = re.search(pattern, self.log())
            if match is None and self.process.poll() is not None:
                pytest.fail("the process exited:\n" + self.log())
            return match
        return waitUntil(found, timeout, "%r in the output of %s" % (pattern, self.logPath))

    def stop(self):
        """SIGTERM, then SIGKILL if it does not stop within 20 s."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=10)


def startRecorder(cwd, *options, twistd=True):
    """Start ``twistd -n tcpcam-record`` (or ``tcpcam record``) in ``cwd`` on a free loopback port.

    Returns ``(process, url)`` once the web interface listens.
    """
    if twistd:
        argv = [TWISTD, "-n", "--pidfile=", "tcpcam-record"]
    else:
        argv = [TCPCAM, "record"]
    process = Process(argv + ["--web", "tcp:0:interface=127.0.0.1"] + list(options), cwd, "recorder")
    url = process.waitFor(r"web interface on (http://\S+/)").group(1)
    return process, url


def startCamera(cwd):
    """``tcpcam serve`` with the pattern source on a free loopback port; returns ``(process, endpoint)``."""
    process = Process([TCPCAM, "serve", "--listen", "tcp:0:interface=127.0.0.1", "--interval-ms", "100"],
                      cwd, "camera")
    port = process.waitFor(r"starting on (\d+)").group(1)
    return process, "tcp:host=127.0.0.1:port=%s" % port


def browser(downloads=None, size=(1280, 800)):
    """A Selenium driver of Debian's chromium (with a fresh profile), downloading into ``downloads``."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    if not os.path.exists(CHROMEDRIVER):
        pytest.fail("chromedriver is not installed: apt-get install -y chromium-driver")
    options = webdriver.ChromeOptions()
    options.binary_location = chromium()
    profile = tempfile.mkdtemp(prefix="tcpcam-chromium-")
    for flag in FLAGS + ("--window-size=%d,%d" % size, "--user-data-dir=" + profile):
        options.add_argument(flag)
    if downloads is not None:
        options.add_experimental_option("prefs", {
            "download.default_directory": str(downloads), "download.prompt_for_download": False})
    driver = webdriver.Chrome(service=Service(CHROMEDRIVER), options=options)
    driver.set_page_load_timeout(10)
    driver.profile = profile
    return driver


def quit(driver):
    """Stop the browser and remove its profile."""
    try:
        driver.quit()
    finally:
        shutil.rmtree(driver.profile, ignore_errors=True)


def screenshot(driver, path):
    """Save a screenshot of the window to ``path``; returns it as a Pillow RGB image."""
    from PIL import Image

    driver.save_screenshot(str(path))
    return Image.open(str(path)).convert("RGB")


def colourPixels(image, colour, tolerance=40, box=None):
    """How many pixels of ``image`` (within ``box``: left, top, right, bottom) are near ``colour``."""
    if box is not None:
        image = image.crop(tuple(int(round(v)) for v in box))
    data = image.tobytes()
    red, green, blue = colour
    return sum(
        1 for i in range(0, len(data), 3)
        if abs(data[i] - red) <= tolerance and abs(data[i + 1] - green) <= tolerance
        and abs(data[i + 2] - blue) <= tolerance)


def assertNotBlank(image, what):
    """A page that shows something: many colours, and no single colour covering nearly all of it."""
    colours = image.getcolors(maxcolors=1 << 20)
    assert colours is not None and len(colours) > 50, "%s: only %s colours" % (what, len(colours or ()))
    biggest = max(count for count, _ in colours)
    assert biggest < 0.97 * image.width * image.height, "%s: one colour covers the page" % what


def assertBars(image, what, atLeast=2000, box=None):
    """The test card's colour bars are shown (at least ``atLeast`` pixels of each)."""
    for name, colour in BARS.items():
        count = colourPixels(image, colour, box=box)
        assert count >= atLeast, "%s: only %d %s pixels: the picture is not shown" % (what, count, name)


def elementBox(driver, selector):
    """The box (left, top, right, bottom) of the element in screenshot pixels."""
    return driver.execute_script(
        "const r = document.querySelector(arguments[0]).getBoundingClientRect(), d = devicePixelRatio;"
        "return [r.left * d, r.top * d, r.right * d, r.bottom * d];", selector)


def waitForDownload(folder, suffix, known=(), timeout=30.0):
    """The name of a whole file ending with ``suffix`` (not in ``known``) the browser downloaded into ``folder``."""
    def whole():
        names = os.listdir(folder)
        if any(name.endswith(".crdownload") for name in names):
            return None
        return [name for name in names if name.endswith(suffix) and name not in known]
    return waitUntil(whole, timeout, "a %s download in %s" % (suffix, folder))[0]


def pictureShown(driver, selector):
    """True once the ``img`` at ``selector`` shows a decoded picture."""
    return driver.execute_script(
        "const i = document.querySelector(arguments[0]); return !!i && i.naturalWidth > 0;",
        selector)
