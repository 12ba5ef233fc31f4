"""Staying up, under the real unix MicroPython: watchdog, reset cause, WiFi before the camera, NTP, health.

The unix port has no ``machine.WDT`` and no ``reset_cause()``: the stand-in
``firmware/simulator/machine.py`` adds the ESP32 port's, and a watchdog that
expires kills the process (SIGKILL) the way a reset ends a board, leaving
``WDT_RESET`` for the next start in the file named by
``TCPCAM_RESET_CAUSE_FILE``.
"""

import ast
import signal

import pytest
from firmware_support import WAIT, Firmware, connect, needs_micropython, read_frames, run_micropython

from tcpcam.board import simulate as firmware_simulate

pytestmark = needs_micropython

#: Exit status of a process the stand-in watchdog reset.
RESET_STATUS = -signal.SIGKILL


@pytest.fixture(scope="module")
def device(tmp_path_factory):
    """A bundle folder to run scripts in."""
    return firmware_simulate.prepare(tmp_path_factory.mktemp("up"), {"source": "hello"})


def run(device, script, env=None, timeout=WAIT):
    result = run_micropython(script, device, env, timeout=timeout)
    assert result.returncode == 0, result.stdout + result.stderr
    return result.stdout.splitlines()


def said(lines, prefix):
    """The firmware's console lines that start with ``prefix`` (after the time stamp)."""
    found = []
    for line in lines:
        text = line.strip().split(" ", 1)[-1]
        if text.startswith(prefix):
            found.append(text)
    return found


def test_stand_in_wdt_and_reset_cause_match_the_esp32_port(device, tmp_path):
    cause = tmp_path / "cause"
    script = """
import machine
def report(call):
    try:
        print(repr(call()))
    except Exception as error:
        print(type(error).__name__, repr(error.args))
print(machine.PWRON_RESET, machine.HARD_RESET, machine.WDT_RESET, machine.DEEPSLEEP_RESET, machine.SOFT_RESET)
print(hasattr(machine, "BROWNOUT_RESET"), callable(machine.soft_reset), machine.reset_cause())
report(lambda: machine.WDT(1, 1000))
report(lambda: machine.WDT(timeout=0))
report(lambda: machine.WDT(0, -5))
wdt = machine.WDT(timeout=5000)
print(wdt.feed(), type(wdt).__name__)
"""
    assert run(device, script) == [
        "1 2 3 4 5", "False True 1", "ValueError ()", "ValueError ('WDT timeout too short',)",
        "ValueError ('WDT timeout too short',)", "None WDT"]
    cause.write_text("5\n")
    lines = run(device, "import machine\nprint(machine.reset_cause())", {"TCPCAM_RESET_CAUSE_FILE": str(cause)})
    assert lines == ["5"]


def test_an_unfed_watchdog_resets_the_board(device, tmp_path):
    cause = tmp_path / "cause"
    result = run_micropython("""
import machine, time
wdt = machine.WDT(timeout=300)
for _ in range(5):
    time.sleep_ms(100)
    wdt.feed()
print("fed for 500 ms")
time.sleep_ms(5000)
print("still running")
""", device, {"TCPCAM_RESET_CAUSE_FILE": str(cause)})
    assert result.returncode == RESET_STATUS
    lines = result.stdout.splitlines()
    assert lines[0] == "fed for 500 ms"
    assert "Task watchdog got triggered" in lines[1] and lines[-1] == "Rebooting..."
    assert "still running" not in result.stdout
    assert cause.read_text() == "3\n"
    assert run(device, "import machine\nprint(machine.reset_cause())", {"TCPCAM_RESET_CAUSE_FILE": str(cause)}) == ["3"]


LIVENESS = """
import asyncio, time
from tcpcam_fw.watchdog import Liveness, Watchdog
liveness = Liveness()
streaming = [False]
liveness.expect("frames", 150, idle=lambda: not streaming[0])
liveness.expect("server", 150)
watchdog = Watchdog(400, liveness)
print(watchdog.start(), watchdog.period_ms())
async def server(rounds):
    for _ in range(rounds):
        liveness.mark("server")
        await asyncio.sleep_ms(20)
async def main():
    asyncio.create_task(server(1000))
    await watchdog.run(rounds=8)  # frames idle: no client streams
    print("idle", watchdog.feeds, liveness.stalled())
    streaming[0] = True
    liveness.mark("frames")
    for _ in range(8):
        liveness.mark("frames")
        await watchdog.run(rounds=1)
    print("marked", watchdog.feeds)
    await watchdog.run()  # frames stop while a client streams
asyncio.run(main())
"""


def test_watchdog_is_fed_only_while_every_part_makes_progress(device):
    result = run_micropython(LIVENESS, device)
    lines = result.stdout.splitlines()
    assert result.returncode == RESET_STATUS, result.stdout + result.stderr
    assert lines[1] == "True 100"
    assert lines[2] == "idle 8 []"
    assert lines[3] == "marked 16"
    stalled = said(lines, "watchdog: no progress")
    assert len(stalled) == 1 and stalled[0].startswith("watchdog: no progress from frames for ")
    assert "the board resets within 400 ms" in stalled[0]
    assert "Task watchdog got triggered" in result.stdout


def test_a_stuck_frame_loop_gets_the_board_reset(tmp_path):
    cause = tmp_path / "cause"
    env = {"TCPCAM_CAMERA_HANG": "3", "TCPCAM_RESET_CAUSE_FILE": str(cause)}
    firmware = Firmware(tmp_path / "fw", {"watchdog_ms": 1000}, env=env)
    with firmware:
        assert "PWRON_RESET (power-on, or a brownout" in firmware.wait_for("boot: reset cause")
        firmware.wait_for("watchdog: started, 1000 ms")
        with connect(firmware.port) as sock:
            sock.sendall(b"1235\n0\n")
            assert len(read_frames(sock, 2, until_closed=False)) == 2
            firmware.wait_for("Task watchdog got triggered")
        assert firmware.process.wait(WAIT) == RESET_STATUS
    assert cause.read_text() == "3\n"
    again = Firmware(tmp_path / "fw", {"watchdog_ms": 1000, "source": "hello"}, env=env)
    with again:
        assert "WDT_RESET (the watchdog reset the board)" in again.wait_for("boot: reset cause")


FAKE_NETWORK = """
import asyncio
class WLAN:
    def __init__(self, mode):
        self.polls = 0
        self.connecting = False
    def active(self, on):
        pass
    def connect(self, ssid, password):
        print("wifi connect starts")
        self.connecting = True
    def disconnect(self):
        pass
    def isconnected(self):
        if self.connecting:
            self.polls += 1
        return JOINS and self.polls > 3
    def status(self, *what):
        if what == ("rssi",):
            return -61
        return 1001
    def ifconfig(self):
        return ("192.168.4.7", "255.255.255.0", "192.168.4.1", "192.168.4.1")
class network:
    STA_IF = 0
    WLAN = WLAN
from tcpcam.core import device_config
from tcpcam_fw import app
config = device_config.defaults()
config.update(ssid="home", password="secret123", wifi_timeout_ms=1000, bind="127.0.0.1", port=PORT,
              watchdog_ms=0, ntp_host="")
firmware = app.Firmware(config, network)
async def main():
    try:
        await asyncio.wait_for_ms(firmware.run(), 2500)
    except asyncio.TimeoutError:
        pass
    print("rssi", firmware.health.snapshot()["wifi_rssi"])
asyncio.run(main())
"""


@pytest.mark.parametrize(("joins", "first"), [(True, "wifi: joined home as 192.168.4.7"),
                                              (False, "wifi: could not join home (status 1001)")])
def test_the_camera_starts_only_after_the_first_wifi_attempt(device, joins, first):
    from firmware_support import free_port

    script = FAKE_NETWORK.replace("JOINS", str(joins)).replace("PORT", str(free_port()))
    lines = run(device, script)
    order = [line for line in lines if "wifi" in line or "camera: started" in line]
    assert order[0] == "wifi connect starts"
    assert first in order[1]
    assert "camera: started" in order[2]
    assert lines[-1] == ("rssi -61" if joins else "rssi None")


NTP = """
import asyncio
from tcpcam_fw import ntp, wifi
from tcpcam_fw.health import Health
ntp.CHECK_MS = 10
class ntptime:
    host = "pool.ntp.org"
    calls = 0
    def settime():
        ntptime.calls += 1
        if ntptime.calls not in WORKS:
            raise OSError(116)
link = wifi.WifiLink()
link.joined = True
link.joins = 1
health = Health()
config = {"ntp_host": "time.example"}
async def rejoin():
    await asyncio.sleep_ms(150)
    print(ntptime.calls, health.clock_synced, ntptime.host)
    link.joins = 2
async def main():
    asyncio.create_task(rejoin())
    await ntp.keep_synced(config, link, health, ntptime, rounds=30, pause_ms=10)
    print(ntptime.calls, health.clock_synced)
asyncio.run(main())
"""


def test_ntp_sets_the_clock_with_a_bounded_retry(device):
    lines = run(device, NTP.replace("WORKS", "(3,)"))
    # Set at the third try; a new join soon after does not set it again.
    assert [line for line in lines if "ntp:" not in line] == ["3 True time.example", "3 True"]
    assert len(said(lines, "ntp: clock set from time.example: ")) == 1
    lines = run(device, NTP.replace("WORKS", "()"))
    # Three tries after the join, none while the same join lasts, three after the next join.
    assert [line for line in lines if "ntp:" not in line] == ["3 False time.example", "6 False"]
    failures = said(lines, "ntp: no time from time.example after 3 tries")
    assert len(failures) == 2 and "116" in failures[0]


def test_ntp_without_ntptime_or_host_is_said_once(device):
    lines = run(device, """
import asyncio
from tcpcam_fw import ntp, wifi
from tcpcam_fw.health import Health
health = Health()
asyncio.run(ntp.keep_synced({"ntp_host": "pool.ntp.org"}, wifi.WifiLink(), health))
print(health.clock_synced)
asyncio.run(ntp.keep_synced({"ntp_host": ""}, wifi.WifiLink(), health))
""")
    assert said(lines, "ntp:") == ["ntp: no ntptime module here; the clock is the host's",
                                   "ntp: no ntp_host in config.json; the clock is not set"]
    assert "True" in lines


HEALTH = """
from tcpcam_fw.health import Health
from tcpcam_fw.wifi import WifiLink
class Station:
    def status(self, what):
        if FAIL:
            raise OSError("Wifi Not Connected")
        return -70
health = Health()
health.link = WifiLink()
health.link.station = Station()
print(sorted(health.snapshot().items()))
health.link.joined = True
for ok in (True, True, False, True):
    health.captured(ok)
health.clients = lambda: 3
snapshot = health.snapshot()
print(snapshot["wifi_rssi"], snapshot["frames"], snapshot["capture_errors"], snapshot["clients"],
      snapshot["reset_cause"], snapshot["psram"], type(snapshot["free_heap"]).__name__)
"""


def test_health_is_a_plain_dict(device, tmp_path):
    cause = tmp_path / "cause"
    cause.write_text("3\n")
    lines = run(device, HEALTH.replace("FAIL", "False"), {"TCPCAM_RESET_CAUSE_FILE": str(cause)})
    first = dict(ast.literal_eval(lines[0]))
    assert sorted(first) == ["allocated_heap", "capture_errors", "clients", "clock_synced", "fps", "frames",
                             "free_heap", "largest_free_block", "psram", "reset_cause", "uptime_ms", "wifi_rssi"]
    assert first["wifi_rssi"] is None and first["largest_free_block"] is None and first["clients"] == 0
    assert lines[1] == "-70 3 1 3 WDT_RESET True int"
    lines = run(device, HEALTH.replace("FAIL", "True"), {"TCPCAM_RESET_CAUSE_FILE": str(cause)})
    assert lines[1].startswith("None 3 1 3 WDT_RESET")


def test_the_firmware_reports_its_health(tmp_path):
    with Firmware(tmp_path, {"stats_every": 5, "interval_ms": 10}) as firmware:
        with connect(firmware.port) as sock:
            sock.sendall(b"1235\n0\n")
            read_frames(sock, 12, until_closed=False)
            line = firmware.wait_for("health: {")
    health = ast.literal_eval(line.split("health: ", 1)[1])
    assert health["clients"] == 1 and health["frames"] in (2, 7, 12) and health["capture_errors"] == 0
    assert health["reset_cause"] == "PWRON_RESET" and health["clock_synced"] is True
