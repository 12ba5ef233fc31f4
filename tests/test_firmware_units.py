"""Firmware pieces run alone under the real unix MicroPython: config, WiFi, camera start, cleanup."""

import pytest
from firmware_support import needs_micropython, run_micropython

from tcpcam.board import deploy as firmware_deploy
from tcpcam.board import simulate as firmware_simulate

pytestmark = needs_micropython


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    """A bundle folder to run scripts in."""
    return firmware_simulate.prepare(tmp_path_factory.mktemp("units"), {"source": "hello"})


def run(device, script, env=None):
    result = run_micropython(script, device, env)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


def test_missing_and_broken_config_files_fall_back_to_defaults(device):
    (device / "broken.json").write_text("{port: 3333")
    (device / "list.json").write_text("[1, 2]")
    lines = run(device, """
from tcpcam_fw import config
for name in ("absent.json", "broken.json", "list.json"):
    c = config.load(name)
    print("port", c["port"], c["pin"], c["source"])
""")
    assert lines == [
        "config: no absent.json; using defaults", "port 3333 1235 camera",
        "config: broken.json is not valid JSON; using defaults", "port 3333 1235 camera",
        "config: expected a table of settings, not [1, 2]; using defaults", "port 3333 1235 camera",
    ]


def test_bad_pin_and_short_password(device):
    (device / "odd.json").write_text('{"pin": "12\\n34", "ssid": "home", "password": "short"}')
    lines = run(device, """
from tcpcam_fw import config
c = config.load("odd.json")
print(repr(c["pin"]), repr(c["password"]), c["ssid"])
""")
    assert lines[-1] == "'1235' '' home"
    assert len(lines) == 3


FAKE_NETWORK = """
import asyncio
class WLAN:
    def __init__(self, mode):
        self.joined = False
        self.attempts = 0
        self.since_join = 0
    def active(self, on):
        pass
    def connect(self, ssid, password):
        self.attempts += 1
        print("connect", ssid, password, self.attempts)
        self.joined = self.attempts >= 3
        self.since_join = 0
    def disconnect(self):
        pass
    def isconnected(self):
        if self.joined:
            self.since_join += 1
            if self.since_join == 3:
                self.joined = False
        return self.joined
    def status(self):
        return 201
    def ifconfig(self):
        return ("192.168.4.7", "255.255.255.0", "192.168.4.1", "192.168.4.1")
class network:
    STA_IF = 0
    WLAN = WLAN
from tcpcam.core import device_config
from tcpcam_fw import config, wifi
wifi.CHECK_MS = 5
c = device_config.defaults()
c.update(ssid="home", password="secret123", wifi_timeout_ms=50, wifi_retry_ms=20, wifi_retry_max_ms=30)
asyncio.run(wifi.keep_joined(c, network, rounds=8))
"""


def test_wifi_retries_with_backoff_and_rejoins(device):
    lines = [line.split(" ", 1)[-1] if line[:1] == " " else line for line in run(device, FAKE_NETWORK)]
    text = "\n".join(lines)
    assert text.count("could not join home (status 201); next try in 20 ms") == 1
    assert text.count("next try in 30 ms") == 1
    assert "wifi: joined home as 192.168.4.7" in text
    assert "wifi: lost home; joining again" in text
    assert "connect home secret123 4" in text


def test_no_network_module_skips_wifi(device):
    lines = run(device, """
import asyncio
from tcpcam.core import device_config
from tcpcam_fw import config, wifi
c = device_config.defaults()
c["ssid"] = "home"
asyncio.run(wifi.keep_joined(c))
""")
    assert lines[-1].endswith("wifi: no network module here; serving on the host's network")


def test_camera_still_running_after_a_soft_reset_is_deinit_first(device):
    lines = run(device, """
import camera
from tcpcam.core import device_config
from tcpcam_fw import config, sources
camera.init(0, format=camera.JPEG, framesize=camera.FRAME_VGA, fb_location=camera.PSRAM)
source = sources.CameraSource(device_config.defaults(), psram=True)
started = source.start()
settings = camera.state["settings"]
print(started, len(source.capture()), camera.state["inits"], settings["fb_location"], settings["fb_size"])
""")
    started, size, inits, location, buffers = lines[-1].split()
    assert (started, inits, location, buffers) == ("True", "2", "0", "2")
    assert int(size) > 1000


def test_without_a_camera_module_the_start_is_retried_later(device):
    lines = run(device, """
import sys
sys.path[:] = [path for path in sys.path if "simulator" not in path]
from tcpcam.core import device_config
from tcpcam_fw import config, sources
c = device_config.defaults()
c["camera_retry_ms"] = 60000
source = sources.CameraSource(c)
print([source.capture() for _ in range(3)])
""")
    assert lines[-1] == "[False, False, False]"
    assert sum("no camera module" in line for line in lines) == 1


def test_stand_in_camera_wedges_on_a_second_init_until_a_reset(device):
    lines = run(device, """
import camera
print(camera.init(0, format=camera.JPEG))
for attempt in range(2):
    try:
        camera.init(0, format=camera.JPEG)
    except OSError as error:
        print("OSError", error)
print(camera.deinit(), camera.capture())
""")
    assert lines[0] == "True"
    assert [line for line in lines if line.startswith("OSError")] == ["OSError Camera Init Failed"] * 2
    assert any("ESP_ERR_INVALID_STATE" in line for line in lines)
    assert any("cam intr alloc failed" in line for line in lines)
    assert lines[-1] == "False False"


def test_stand_in_camera_api_matches_the_driver(device):
    lines = run(device, """
import camera
print(camera.capture(), camera.deinit(), camera.flip(1), camera.quality(12))
print(camera.init(0, format=camera.JPEG, framesize=camera.FRAME_UXGA, fb_location=camera.PSRAM))
print(camera.flip(1), camera.mirror(0), camera.quality(10), camera.framesize(camera.FRAME_QVGA))
print(type(camera.capture()).__name__, camera.deinit(), camera.deinit())
def report(call):
    try:
        print(repr(call()))
    except Exception as error:
        print(type(error).__name__, error)
report(lambda: camera.init(0, format=99))
try:
    camera.init(0, camera.JPEG)
except TypeError:
    print("TypeError for a second positional argument")
report(lambda: camera.init(0, framesize=camera.FRAME_QSXGA + 1))
report(lambda: camera.init(0, xclk_freq=8000000))
report(lambda: camera.init(0, format=camera.JPEG, framesize=camera.FRAME_VGA, quality=12, fb_size=1,
                           fb_location=camera.DRAM, xclk_freq=camera.XCLK_20MHz))
report(lambda: camera.quality("10"))
report(lambda: camera.framesize(camera.FRAME_QSXGA + 1))
report(lambda: camera.flip(True))
report(lambda: camera.capture())
""", env={"TCPCAM_CAMERA_FAIL": "all"})
    assert lines == [
        "False False False False",
        "True",
        "None None None None",
        "bool True False",
        "ValueError Image format is not valid",
        "TypeError for a second positional argument",
        "ValueError Image framesize is not valid",
        "ValueError xclk frequency is not valid",
        "True",
        "TypeError can't convert str to int",
        "ValueError Image framesize is not valid",
        "None",
        "False",
    ]


def test_stand_in_camera_has_the_driver_constants(device):
    lines = run(device, """
import camera
names = ("JPEG YUV422 GRAYSCALE RGB565 FRAME_96X96 FRAME_240X240 FRAME_QVGA FRAME_VGA FRAME_UXGA FRAME_QSXGA"
         " WB_NONE WB_HOME EFFECT_NONE EFFECT_RETRO XCLK_10MHz XCLK_20MHz DRAM PSRAM")
print(" ".join(str(getattr(camera, name)) for name in names.split()))
""")
    # esp32-camera's enums (pixformat_t, framesize_t, camera_fb_location_t) and modcamera.h's defines.
    assert lines == ["4 1 3 0 0 4 5 8 13 21 0 4 0 6 10000000 20000000 1 0"]


def test_deploy_cleanup_script_removes_old_modules(tmp_path, device):
    (tmp_path / "lib" / "tcpcam_fw" / "sub").mkdir(parents=True)
    (tmp_path / "lib" / "tcpcam_fw" / "server.py").write_text("stale")
    (tmp_path / "lib" / "tcpcam_fw" / "sub" / "x.mpy").write_text("stale")
    (tmp_path / "lib" / "other.py").write_text("kept")
    result = run_micropython(firmware_deploy._CLEAN, tmp_path)
    assert result.returncode == 0, result.stderr
    assert not (tmp_path / "lib" / "tcpcam_fw").exists()
    assert (tmp_path / "lib" / "other.py").read_text() == "kept"
