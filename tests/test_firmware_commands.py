"""``tcpcam firmware config|bundle|flash|deploy|simulate`` on the host."""

import argparse
import json
import shlex
import signal
import subprocess
import sys

import pytest
from firmware_support import (
    REPO,
    WAIT,
    Console,
    expected_tree,
    fetch_raw,
    free_port,
    needs_micropython,
    tree,
    write_jpegs,
)

from tcpcam.board import bundle as firmware_bundle
from tcpcam.board import flash as firmware_flash
from tcpcam.board import simulate as firmware_simulate
from tcpcam.cli import firmware
from tcpcam.core import device_config
from tcpcam.core.mac import KEY_BYTES, key_text, parse_key


def tcpcam_firmware(*argv):
    parser = argparse.ArgumentParser()
    firmware.add_arguments(parser)
    return firmware.run(parser.parse_args([str(arg) for arg in argv]))


def test_config_writes_every_key(tmp_path, capsys):
    path = tmp_path / "config.json"
    status = tcpcam_firmware("config", "--file", path, "--ssid", "home", "--password", "secret123",
                             "--framesize", "svga", "--flip", "yes", "--interval-ms", "250")
    assert status == 0
    written = json.loads(path.read_text())
    assert set(written) == {option.name for option in device_config.SCHEMA.options}
    chosen = (written["ssid"], written["framesize"], written["flip"], written["interval_ms"])
    assert chosen == ("home", "SVGA", True, 250)
    assert written["port"] == 3333 and written["pin"] == "1235"
    assert "secret123" not in capsys.readouterr().out


def test_config_updates_an_existing_file(tmp_path):
    path = tmp_path / "config.json"
    assert tcpcam_firmware("config", "--file", path, "--ssid", "home") == 0
    assert tcpcam_firmware("config", "--file", path, "--port", "4444") == 0
    written = json.loads(path.read_text())
    assert (written["ssid"], written["port"]) == ("home", 4444)


def test_config_makes_a_key_once_and_keeps_it_private(tmp_path, capsys):
    path = tmp_path / "config.json"
    assert tcpcam_firmware("config", "--file", path, "--ssid", "home") == 0
    out = capsys.readouterr().out
    key = json.loads(path.read_text())["key"]
    assert len(parse_key(key)) == KEY_BYTES and "device key (new): %s" % key in out
    assert "protocol 2 and legacy PIN" in out
    assert path.stat().st_mode & 0o777 == 0o600
    assert tcpcam_firmware("config", "--file", path, "--port", "4444") == 0
    assert json.loads(path.read_text())["key"] == key and key not in capsys.readouterr().out
    assert tcpcam_firmware("config", "--file", path, "--new-key") == 0
    replaced = json.loads(path.read_text())["key"]
    assert replaced != key and "device key (new): %s" % replaced in capsys.readouterr().out


def test_config_with_protocol_2_off_stays_off(tmp_path, capsys):
    path = tmp_path / "config.json"
    assert tcpcam_firmware("config", "--file", path, "--key", "") == 0
    assert tcpcam_firmware("config", "--file", path, "--port", "4444") == 0
    out = capsys.readouterr().out
    assert json.loads(path.read_text())["key"] == "" and "device key" not in out and "port 4444, legacy PIN, no" in out
    assert tcpcam_firmware("config", "--file", path, "--legacy", "false") == 2
    assert "legacy is false but there is no key" in capsys.readouterr().err


def test_config_takes_a_given_key_and_refuses_a_bad_one(tmp_path, capsys):
    path = tmp_path / "config.json"
    given = key_text(bytes(range(20)))
    assert tcpcam_firmware("config", "--file", path, "--key", given.lower()) == 0
    assert parse_key(json.loads(path.read_text())["key"]) == bytes(range(20))
    capsys.readouterr()
    for bad in ("not-a-key", key_text(bytes(16))[:-5]):
        assert tcpcam_firmware("config", "--file", path, "--key", bad) == 2
        error = capsys.readouterr().err
        assert error.count("\n") == 1 and "bad --key" in error and "at least 128 bits" in error
    assert tcpcam_firmware("config", "--file", path, "--key", given, "--new-key") == 2
    assert "--new-key makes a key" in capsys.readouterr().err
    assert parse_key(json.loads(path.read_text())["key"]) == bytes(range(20))


@pytest.mark.parametrize(("option", "value", "message"), [
    ("--port", "70000", 'bad --port "70000": expected a whole number from 1 to 65535'),
    ("--quality", "nine", 'bad --quality "nine"'),
    ("--source", "webcam", "expected one of camera, jpeg, hello"),
    ("--pin", "", "bad --pin"),
    ("--password", "short", "8 to 63 characters"),
    ("--password", "x" * 64, 'bad --password "xxx'),
    ("--password", "x" * 64, "expected empty, or 8 to 63 characters"),
    ("--mirror", "maybe", "expected true or false"),
    ("--bind", "my-board", "bad --bind \"my-board\": expected an IPv4 address"),
    ("--bind", "10.0.0.256", "expected an IPv4 address"),
])
def test_config_refuses_bad_values(tmp_path, capsys, option, value, message):
    path = tmp_path / "config.json"
    assert tcpcam_firmware("config", "--file", path, option, value) == 2
    error = capsys.readouterr().err
    assert message in error
    assert len(error.strip().splitlines()) == 1
    assert not path.exists()
    assert list(tmp_path.iterdir()) == []


def test_config_check(tmp_path, capsys):
    good = tmp_path / "good.json"
    good.write_text('{"ssid": "home", "port": 3334}')
    assert tcpcam_firmware("config", "--check", "--file", good) == 0
    bad = tmp_path / "bad.json"
    bad.write_text('{"port": "x", "colour": 1}')
    assert tcpcam_firmware("config", "--check", "--file", bad) == 2
    error = capsys.readouterr().err.splitlines()
    assert error == ["tcpcam firmware: config: unknown key 'colour'",
                     'tcpcam firmware: config: bad port "x": expected a whole number from 1 to 65535']
    broken = tmp_path / "broken.json"
    broken.write_text("{")
    assert tcpcam_firmware("config", "--check", "--file", broken) == 2
    assert tcpcam_firmware("config", "--check", "--file", tmp_path / "absent.json") == 2


def test_bundle_is_the_device_tree(tmp_path):
    destination = tmp_path / "bundle"
    assert tcpcam_firmware("bundle", destination) == 0
    assert tree(destination) == expected_tree(".py")
    core = REPO / "src/tcpcam/core"
    assert (destination / "lib/tcpcam/core/session.py").read_bytes() == (core / "session.py").read_bytes()
    assert "camera.py" not in {name.rsplit("/", 1)[-1] for name in tree(destination)}, "the stand-in stays home"


def test_bundle_mpy_with_config(tmp_path):
    config = tmp_path / "config.json"
    assert tcpcam_firmware("config", "--file", config, "--source", "hello") == 0
    destination = tmp_path / "bundle"
    assert tcpcam_firmware("bundle", destination, "--mpy", "--config", config) == 0
    assert tree(destination) == sorted(expected_tree(".mpy") + ["config.json"])
    assert (destination / "lib/tcpcam/core/session.mpy").read_bytes()[:1] == b"M"
    assert json.loads((destination / "config.json").read_text())["source"] == "hello"


def test_bundle_refuses_a_full_folder_and_bad_config(tmp_path, capsys):
    destination = tmp_path / "bundle"
    destination.mkdir()
    (destination / "mine.txt").write_text("keep")
    assert tcpcam_firmware("bundle", destination) == 1
    assert "not empty" in capsys.readouterr().err
    assert tree(destination) == ["mine.txt"]
    bad = tmp_path / "bad.json"
    bad.write_text('{"quality": 101}')
    assert tcpcam_firmware("bundle", tmp_path / "other", "--config", bad) == 2
    assert not (tmp_path / "other").exists()
    assert tcpcam_firmware("bundle", destination, "--force") == 0
    assert "mine.txt" not in tree(destination)


@pytest.fixture
def image(tmp_path):
    path = tmp_path / "micropython camera.bin"
    path.write_bytes(bytes([0xE9]) + bytes(100))
    return path


def test_flash_dry_run(image, capsys):
    assert tcpcam_firmware("flash", "--port", "/dev/ttyUSB0", "--image", image, "--dry-run") == 0
    lines = capsys.readouterr().out.splitlines()
    erase, write = firmware_flash.command_name("erase-flash"), firmware_flash.command_name("write-flash")
    assert lines == [
        "esptool --chip esp32 --port /dev/ttyUSB0 --baud 460800 %s" % erase,
        "esptool --chip esp32 --port /dev/ttyUSB0 --baud 460800 %s -z 0x1000 %s" % (write, shlex.quote(str(image))),
    ]


def test_flash_argv_for_esptool_4_and_no_erase(image):
    assert firmware_flash.esptool_argvs("COM3", image, 115200, erase=False, major=4) == [
        ["--chip", "esp32", "--port", "COM3", "--baud", "115200", "write_flash", "-z", "0x1000", str(image)]]


def test_flash_offset_follows_the_chip(image, capsys):
    assert tcpcam_firmware("flash", "--port", "COM3", "--image", image, "--chip", "esp32s3", "--no-erase",
                           "--dry-run") == 0
    assert shlex.split(capsys.readouterr().out)[-2:] == ["0x0", str(image)]
    with pytest.raises(firmware_flash.FlashError, match="unknown chip 'esp8266'"):
        firmware_flash.esptool_argvs("COM3", image, chip="esp8266")


def test_flash_refuses_what_is_not_an_image(tmp_path, capsys):
    html = tmp_path / "download.bin"
    html.write_text("<html>")
    assert tcpcam_firmware("flash", "--port", "/dev/ttyUSB0", "--image", html, "--dry-run") == 2
    assert "not an ESP32 firmware image" in capsys.readouterr().err
    assert tcpcam_firmware("flash", "--port", "/dev/ttyUSB0", "--image", tmp_path / "none.bin") == 2


def test_flash_without_a_board_fails_with_one_line(image, capsys):
    status = tcpcam_firmware("flash", "--port", "/nonexistent/ttyUSB9", "--image", image, "--baud", "115200")
    assert status == 1
    assert capsys.readouterr().err.strip().splitlines()[-1].startswith("tcpcam firmware: esptool")


def test_deploy_dry_run(tmp_path, capsys):
    config = tmp_path / "config.json"
    assert tcpcam_firmware("config", "--file", config, "--ssid", "home", "--password", "secret123") == 0
    capsys.readouterr()
    assert tcpcam_firmware("deploy", "--port", "/dev/ttyUSB0", "--config", config, "--dry-run") == 0
    lines = capsys.readouterr().out.splitlines()
    assert len(lines) == 3
    # No folder is named: the temporary bundle would be gone once deploy returns.
    written = tcpcam_firmware("bundle", tmp_path / "kept", "--config", config)
    assert written == 0 and capsys.readouterr()
    files = len([path for path in (tmp_path / "kept").rglob("*") if path.is_file()])
    assert lines[0] == ("# a bundle of %d files (config.json from %s) would be built in a temporary folder; in it:"
                        % (files, config))
    assert not any(line.startswith("cd ") for line in lines)
    assert lines[2] == "# to see or keep the bundle: tcpcam firmware bundle DIR --config %s, then deploy" \
        " --bundle DIR" % config
    argv = shlex.split(lines[1])
    assert argv[:5] == [sys.executable, "-m", "mpremote", "connect", "/dev/ttyUSB0"]
    chained = " ".join(argv[7:])
    assert "fs cp -r lib/tcpcam lib/tcpcam_fw :lib/" in chained
    assert "fs cp boot.py config.json main.py test.jpg :" in chained
    assert argv[-2:] == ["+", "reset"]


def test_deploy_an_existing_bundle(tmp_path, capsys):
    config = tmp_path / "config.json"
    assert tcpcam_firmware("config", "--file", config) == 0
    bundle = tmp_path / "bundle"
    assert tcpcam_firmware("bundle", bundle, "--config", config) == 0
    capsys.readouterr()
    assert tcpcam_firmware("deploy", "--port", "COM3", "--bundle", bundle, "--dry-run") == 0
    assert capsys.readouterr().out.splitlines()[0] == "cd %s" % shlex.quote(str(bundle))
    assert tcpcam_firmware("deploy", "--port", "COM3", "--bundle", tmp_path, "--dry-run") == 2


def test_deploy_needs_a_good_config(tmp_path, capsys):
    assert tcpcam_firmware("deploy", "--port", "COM3", "--config", tmp_path / "none.json", "--dry-run") == 2
    assert "write one with tcpcam firmware config" in capsys.readouterr().err


@needs_micropython
def test_simulate_serves_a_folder_and_stops_on_sigterm(tmp_path):
    frames = write_jpegs(tmp_path / "frames", 2, 2000)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tcpcam.cli.firmware", "simulate", "--port", str(port),
         "--frames", str(tmp_path / "frames"), "--interval-ms", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        console = Console(process, "simulate")
        assert "listening on 127.0.0.1:%d" % port in console.wait_for(("listening", "cannot listen"))
        assert fetch_raw(port, [b"1235", b"4"]) == [frames[0], frames[1], frames[0], frames[1]]
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            status = process.wait(WAIT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(WAIT)
    assert status == 0


#: The first four bytes of a bytecode-only .mpy: "M", the .mpy version, flags (0: no native code),
#: small-int bits. Every 6.x sub-version writes the same bytes for bytecode-only files.
MPY6_HEADER = b"M\x06\x00\x1f"


@pytest.mark.parametrize(("target", "compiler"), [
    ("1.19", "emitting mpy v6"), ("1.20.0", "emitting mpy v6.1"), ("1.21", "emitting mpy v6.1"),
    ("v1.22.2", "emitting mpy v6.2"), ("1.23", "emitting mpy v6.3"), ("1.28.0", "emitting mpy v6.3"),
])
def test_bundle_mpy_for_an_older_board_image(tmp_path, capsys, target, compiler):
    destination = tmp_path / "bundle"
    assert tcpcam_firmware("bundle", destination, "--mpy-for", target) == 0
    out = capsys.readouterr().out.splitlines()
    assert out[-2].startswith("compiled for MicroPython %s with MicroPython v" % target)
    assert out[-2].endswith(compiler)
    assert tree(destination) == expected_tree(".mpy")
    for path in destination.rglob("*.mpy"):
        assert path.read_bytes()[:4] == MPY6_HEADER, path
    assert firmware_bundle.mpy_version_for(target) == compiler.rsplit(" v", 1)[1]


@pytest.mark.parametrize(("target", "message"), [
    ("1.18", "cannot compile .mpy files for MicroPython 1.18 (mpy 5)"),
    ("1.11", "MicroPython 1.11 is too old"),
    ("one", "bad MicroPython version 'one'"),
    ("1.21b", "bad MicroPython version '1.21b'"),
])
def test_bundle_mpy_for_refuses_what_it_cannot_target(tmp_path, capsys, target, message):
    assert tcpcam_firmware("bundle", tmp_path / "bundle", "--mpy-for", target) == 2
    error = capsys.readouterr().err.strip().splitlines()
    assert len(error) == 1 and message in error[0]
    assert not (tmp_path / "bundle").exists()


def test_mpy_versions_of_the_releases():
    table = {"1.19.1": "6", "1.20": "6.1", "1.21.0": "6.1", "1.22": "6.2", "1.23.0": "6.3", "1.27": "6.3",
             "1.12": "5", "1.18": "5"}
    assert {version: firmware_bundle.mpy_version_for(version) for version in table} == table


@needs_micropython
@pytest.mark.parametrize("target", ["1.19", "1.21"])
def test_an_older_target_bundle_runs_on_a_newer_micropython(tmp_path, target):
    # Bytecode-only .mpy files of every 6.x version load on every MicroPython from 1.19 on.
    destination = tmp_path / "bundle"
    config = tmp_path / "config.json"
    assert tcpcam_firmware("config", "--file", config, "--source", "hello", "--bind", "127.0.0.1",
                           "--port", free_port(), "--watchdog-ms", "0") == 0
    assert tcpcam_firmware("bundle", destination, "--mpy-for", target, "--config", config) == 0
    argv, env, cwd = firmware_simulate.command(destination)
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        console = Console(process, "firmware")
        line = console.wait_for(("listening", "cannot listen", "Error"))
        assert "listening" in line
        port = int(line.rsplit(":", 1)[1].split(",")[0])
        assert fetch_raw(port, [b"1235\n2\n"]) == [b"Hello World"] * 2
    finally:
        process.kill()
        process.wait(WAIT)


def test_deploy_mpy_for_builds_for_the_board(tmp_path, capsys):
    config = tmp_path / "config.json"
    assert tcpcam_firmware("config", "--file", config) == 0
    capsys.readouterr()
    assert tcpcam_firmware("deploy", "--port", "COM3", "--config", config, "--mpy-for", "1.21", "--dry-run") == 0
    assert tcpcam_firmware("deploy", "--port", "COM3", "--config", config, "--mpy-for", "1.18", "--dry-run") == 2
    assert "cannot compile .mpy files for MicroPython 1.18" in capsys.readouterr().err


@needs_micropython
def test_simulate_with_the_camera_api_driver_and_a_small_heap(tmp_path):
    frames = write_jpegs(tmp_path / "frames", 2, 2000)
    port = free_port()
    process = subprocess.Popen(
        [sys.executable, "-m", "tcpcam.cli.firmware", "simulate", "--port", str(port), "--driver", "cnadler86",
         "--heapsize", "512k", "--frames", str(tmp_path / "frames"), "--interval-ms", "10"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
    try:
        console = Console(process, "simulate")
        started = console.wait_for("camera: started")
        assert "cnadler86 micropython-camera-API, 1 frame buffer in PSRAM, grab when empty" in started
        assert "listening on 127.0.0.1:%d" % port in console.wait_for(("listening", "cannot listen"))
        received = fetch_raw(port, [b"1235", b"4"])
        assert len(received) == 4 and set(received) <= set(frames)
    finally:
        process.send_signal(signal.SIGTERM)
        try:
            process.wait(WAIT)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait(WAIT)
