"""The recorder's options, config file and ``tcpcam record`` arguments parse as documented."""

import argparse

import pytest
from twisted.python import usage

from tcpcam.cli import record as record_command
from tcpcam.core.limits import MAX_FRAME_BYTES
from tcpcam.tap.record import Options, checkedConfig


def parse(*argv):
    options = Options()
    options.parseOptions(list(argv))
    return options.config


def test_defaults_record_the_simulated_camera():
    config = parse()
    assert [c.name for c in config.cameras] == ["simulated"]
    assert config.simulated and config.cameras[0].pin == "1235"
    assert config.out == "recordings" and config.format == "segments"
    assert config.web == "tcp:8080:interface=127.0.0.1"
    assert config.keepDays == 0 and config.maxBytes == 0
    # The free-space floor is on by default: the larger of 1 GiB and 5 % of the disk.
    assert config.minFree == 1024 ** 3 and config.minFreePercent == 5
    assert not config.cameras[0].motion and config.cameras[0].mode == "continuous"


def test_cameras_pin_and_settings(tmp_path):
    out = str(tmp_path / "cams")
    config = parse(
        "--camera", "door=tcp:host=192.168.1.50:port=3333", "-C", "yard=tcp:host=cam2:port=4000",
        "--pin", "4321", "--out", out, "--format", "jpg", "--keep-days", "14",
        "--max-bytes", "20G", "--web", "tcp:8081", "--frame-timeout", "3",
        "--max-frame-bytes", "2M", "--backoff-initial", "0.5", "--backoff-max", "30",
    )
    assert [(c.name, c.endpoint, c.pin) for c in config.cameras] == [
        ("door", "tcp:host=192.168.1.50:port=3333", "4321"),
        ("yard", "tcp:host=cam2:port=4000", "4321"),
    ]
    assert not config.simulated
    assert config.cameras[0].frameTimeout == 3 and config.cameras[1].maxFrameBytes == 2_000_000
    assert (config.out, config.format, config.keepDays, config.maxBytes, config.web) == (
        out, "jpg", 14, 20_000_000_000, "tcp:8081")
    assert (config.backoffInitial, config.backoffMax) == (0.5, 30)
    assert parse("--no-web").web is None


CONFIG = """
out = "OUT"
format = "jpg"
keep_days = 30
keep_motion_days = 90
min_free = "2GiB"
min_free_percent = 1
segment_seconds = 30
segment_bytes = "8MiB"
max_bytes = "500GiB"
pin = "1111"
frame_timeout = 20

[cameras.door]
endpoint = "tcp:host=192.168.1.50:port=3333"
pin = "9999"

[cameras.garden]
endpoint = "tcp:host=192.168.1.51:port=3333"
max_frame_bytes = "1M"
frame_timeout = 5
mode = "motion"
motion_threshold = 0.02
motion_mask = [[0, 0, 1, 0.1], [0.5, 0.5, 0.75, 1]]
pre_roll = 3
post_roll = 20
"""


def test_config_file_with_overrides(tmp_path):
    path = tmp_path / "cams.toml"
    path.write_text(CONFIG.replace("OUT", str(tmp_path / "cams")))
    config = parse("--config", str(path), "--keep-days", "7", "--camera", "extra=tcp:host=h:port=1")
    assert [(c.name, c.pin, c.frameTimeout, c.maxFrameBytes) for c in config.cameras] == [
        ("door", "9999", 20, MAX_FRAME_BYTES),
        ("garden", "1111", 5, 1_000_000),
        ("extra", "1111", 20, MAX_FRAME_BYTES),
    ]
    assert config.keepDays == 7 and config.out == str(tmp_path / "cams") and config.format == "jpg"
    assert config.maxBytes == 500 * 1024 ** 3
    assert (config.keepMotionDays, config.minFree, config.minFreePercent) == (90, 2 * 1024 ** 3, 1)
    assert (config.segmentSeconds, config.segmentBytes) == (30, 8 * 1024 ** 2)
    door, garden, extra = config.cameras
    assert not door.motion and door.motionMask == ()
    assert garden.motion and garden.mode == "motion" and garden.motionThreshold == 0.02
    assert garden.motionMask == ((0, 0, 1, 0.1), (0.5, 0.5, 0.75, 1))
    assert (garden.preRoll, garden.postRoll) == (3, 20)
    assert parse("--motion", "true").cameras[0].motion


@pytest.mark.parametrize("argv, message", [
    (["--camera", "door"], "expected NAME=ENDPOINT"),
    (["--camera", "a/b=tcp:host=h:port=1"], "bad camera name"),
    (["--camera", "a=tcp:host=h:port=1", "--camera", "a=tcp:host=h:port=2"], "used twice"),
    (["--camera", "metrics=tcp:host=h:port=1"], "the web interface uses /metrics"),
    (["--camera", "a=nosuchendpoint:1"], "bad endpoint for camera a"),
    (["--web", "nosuchendpoint:1"], "bad endpoint for --web"),
    (["--format", "avi"], 'bad --format "avi": expected one of segments, jpg'),
    (["--format", "mjpeg"], "mjpeg is gone: use segments"),
    (["--min-free-percent", "60"], "bad --min-free-percent"),
    (["--mode", "sometimes"], "bad --mode"),
    (["--motion-threshold", "2"], "bad --motion-threshold"),
    (["--max-bytes", "lots"], 'bad --max-bytes "lots": expected a size in bytes'),
    (["--keep-days", "-1"], "bad --keep-days"),
    (["--frame-timeout", "0"], "bad --frame-timeout"),
    (["--pin", ""], "bad --pin"),
    (["--backoff-initial", "5", "--backoff-max", "1"], "backoff"),
    (["--config", "/nonexistent/cams.toml"], "cannot read config file"),
    (["--camera", "login=tcp:host=h:port=1"], "the web interface uses /login"),
    (["--camera", "static=tcp:host=h:port=1"], "the web interface uses /static"),
    (["--web-login", "maybe"], 'bad --web-login "maybe": expected true or false'),
    (["--web-hosts", "evil/example"], "bad --web-hosts name 'evil/example'"),
    (["--web-max-connections", "2"], "bad --web-max-connections"),
    (["--web-viewers-per-address", "0"], "bad --web-viewers-per-address"),
    (["--web-idle-timeout", "0"], "bad --web-idle-timeout"),
])
def test_bad_options_one_line(argv, message):
    with pytest.raises(usage.UsageError) as raised:
        parse(*argv)
    assert message in str(raised.value) and "\n" not in str(raised.value)


@pytest.mark.parametrize("text, message", [
    ("out = [", "not valid TOML"),
    ("colour = 1", "unknown setting 'colour'"),
    ("[cameras.door]\npin = '1'", "needs an endpoint"),
    ("[cameras.door]\nendpoint = 'tcp:host=h:port=1'\nzoom = 2", "unknown setting 'zoom'"),
    ("cameras = 3", "must be a table"),
    ("format = 'mjpeg'", "mjpeg is gone"),
    ("[cameras.door]\nendpoint = 'tcp:host=h:port=1'\nmotion_mask = [[0, 0, 2, 1]]", "bad motion_mask"),
    ("[cameras.door]\nendpoint = 'tcp:host=h:port=1'\nmotion_mask = [[0.5, 0, 0.2, 1]]", "x0 < x1"),
    ("[cameras.door]\nendpoint = 'tcp:host=h:port=1'\nmotion_mask = 'all'", "bad motion_mask"),
])
def test_bad_config_files(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(usage.UsageError) as raised:
        parse("--config", str(path))
    assert message in str(raised.value)


def test_tcpcam_record_takes_the_same_options_and_gives_the_same_config():
    argv = ["--camera", "door=tcp:host=h:port=1", "-C", "yard=tcp:host=h:port=2",
            "--pin", "77", "--no-web", "--max-bytes", "1G", "-f", "jpg"]
    parser = argparse.ArgumentParser()
    record_command.add_arguments(parser)
    args = parser.parse_args(argv)
    config = checkedConfig({"pin": args.pin, "max_bytes": args.max_bytes, "format": args.format},
                           args.camera, args.config, args.no_web)
    assert config == parse(*argv)
    assert [c.name for c in config.cameras] == ["door", "yard"]
    assert config.cameras[1].pin == "77" and config.web is None
    assert config.maxBytes == 1_000_000_000 and config.format == "jpg"


def test_tcpcam_record_refuses_with_one_line_and_status_2(capsys):
    parser = argparse.ArgumentParser()
    record_command.add_arguments(parser)
    assert record_command.run(parser.parse_args(["--camera", "oops"])) == 2
    assert capsys.readouterr().err == (
        "tcpcam record: bad --camera 'oops': expected NAME=ENDPOINT, such as door=tcp:host=192.168.1.50:port=3333\n")


def test_web_interface_settings():
    from tcpcam.record import config as recordconfig

    settings = parse().webSettings
    assert settings == recordconfig.WebSettings()
    assert settings.login is True and settings.accessLog is False and settings.hosts == ()
    assert (settings.maxConnections, settings.connectionsPerAddress, settings.viewersPerAddress,
            settings.idleTimeout) == (256, 32, 8, 60)
    assert parse().authFile == "recordings/web-auth.json"
    config = parse("--web-login", "off", "--web-hosts", "Cams.Example.org, nas", "--web-access-log", "yes",
                   "--web-max-connections", "100", "--web-connections-per-address", "10",
                   "--web-viewers-per-address", "2", "--web-idle-timeout", "30", "--web-auth-file", "/var/lib/a.json")
    assert config.webSettings == recordconfig.WebSettings(
        login=False, authFile="/var/lib/a.json", hosts=("cams.example.org", "nas"), accessLog=True,
        maxConnections=100, connectionsPerAddress=10, viewersPerAddress=2, idleTimeout=30)
    assert config.authFile == "/var/lib/a.json"
    assert parse("--web-hosts", "*").webSettings.hosts == ("*",)


def test_web_interface_settings_from_the_config_file(tmp_path):
    path = tmp_path / "cams.toml"
    path.write_text('web_login = false\nweb_hosts = "cams.example.org"\nweb_max_connections = 64\n')
    settings = parse("--config", str(path)).webSettings
    assert settings.login is False and settings.hosts == ("cams.example.org",) and settings.maxConnections == 64


KEY_A = bytes(range(1, 21))
KEY_B = bytes(range(101, 121))


def test_keys_and_camera_settings(tmp_path):
    from tcpcam.core.mac import key_text

    keyFile = tmp_path / "door.key"
    keyFile.write_text(key_text(KEY_A) + "\n")
    path = tmp_path / "cams.toml"
    path.write_text("""
key = "%s"

[cameras.door]
endpoint = "tcp:host=192.168.1.50:port=3333"
key_file = "%s"
settings = {framesize = "svga", quality = 80}

[cameras.yard]
endpoint = "tcp:host=192.168.1.51:port=3333"

[cameras.yard.settings]
flip = true
brightness = -1

[cameras.old]
endpoint = "tcp:host=192.168.1.52:port=3333"
key = ""
""" % (key_text(KEY_B).lower(), keyFile))
    config = parse("--config", str(path), "--camera", "extra=tcp:host=h:port=1")
    door, yard, old, extra = config.cameras
    assert (door.key, door.settings) == (KEY_A, {"framesize": "SVGA", "quality": 80})
    assert (yard.key, yard.settings) == (KEY_B, {"flip": True, "brightness": -1})
    assert (old.key, old.settings) == (None, {})
    assert (extra.key, extra.settings) == (KEY_B, {})
    # A key is never shown.
    for key in (KEY_A, KEY_B):
        assert key_text(key) not in repr(config) and key.hex() not in repr(config) and repr(key) not in repr(config)
    # docs/recorder.md: twistd -n tcpcam-record --camera door=tcp:host=192.168.1.50:port=3333 \
    #     --key-file /etc/tcpcam/door.key (a key file made here)
    assert parse("--camera", "door=tcp:host=192.168.1.50:port=3333", "--key-file", str(keyFile)).cameras[0].key == KEY_A
    assert parse("--camera", "a=tcp:host=h:port=1", "--key", key_text(KEY_B)).cameras[0].key == KEY_B
    assert parse("--camera", "a=tcp:host=h:port=1").cameras[0].key is None


@pytest.mark.parametrize("argv, message", [
    (["--key", "AEBA-GBAF-AYDQ-QCIK-BMGA-2DQP-CAIR-EE1U"], "camera a: bad key: expected the device key"),
    (["--key", "AEBA-GBAF"], "camera a: bad key"),
    (["--key", "A" * 300], "bad --key: expected the device key"),
    (["--key", "AEBA-GBAF-AYDQ-QCIK-BMGA-2DQP-CAIR-EEYU", "--key-file", "/etc/passwd"], "key or key_file, not both"),
    (["--key-file", "/nonexistent/door.key"], "cannot read key_file /nonexistent/door.key"),
])
def test_bad_keys_one_line_without_the_key(argv, message):
    with pytest.raises(usage.UsageError) as raised:
        parse("--camera", "a=tcp:host=h:port=1", *argv)
    text = str(raised.value)
    assert message in text and "\n" not in text
    assert "AEBA" not in text and "EE1U" not in text


@pytest.mark.parametrize("text, message", [
    ("settings = {quality = 120}", "[cameras.door]: settings: bad quality 120: expected a whole number from 1 to 100"),
    ("settings = {zoom = 2}", "settings: unknown key 'zoom' (known: framesize, quality,"),
    ("settings = {framesize = 'HUGE'}", "settings: bad framesize \"HUGE\": expected one of 240X240"),
    ("settings = 3", "bad settings: expected a table"),
    ("key = 'not a key at all, not one'", "[cameras.door]: bad key: expected the device key"),
    ("key = 1234", "[cameras.door]: bad key: expected the device key"),
    ("key_file = 'EMPTY'", "is empty: expected the device key"),
    ("key_file = 'BINARY'", "expected the device key"),
])
def test_bad_keys_and_settings_in_the_config_file(tmp_path, text, message):
    empty = tmp_path / "empty.key"
    empty.write_text("\n")
    binary = tmp_path / "binary.key"
    binary.write_bytes(b"\xff\xfe" * 10)
    path = tmp_path / "bad.toml"
    path.write_text("[cameras.door]\nendpoint = 'tcp:host=h:port=1'\n"
                    + text.replace("EMPTY", str(empty)).replace("BINARY", str(binary)) + "\n")
    with pytest.raises(usage.UsageError) as raised:
        parse("--config", str(path))
    assert message in str(raised.value) and "\n" not in str(raised.value)
    assert "not one" not in str(raised.value) and "1234" not in str(raised.value)


def test_the_config_file_of_the_docs_parses(tmp_path):
    """docs/recorder.md's TOML example, with its key file made here."""
    import os
    import re

    from tcpcam.core.mac import key_text

    docs = open(os.path.join(os.path.dirname(__file__), "..", "docs", "recorder.md")).read()
    example = re.search(r"```toml\n(.*?)```", docs, re.S).group(1)
    keyFile = tmp_path / "door.key"
    keyFile.write_text(key_text(KEY_A) + "\n")
    path = tmp_path / "cams.toml"
    path.write_text(example.replace("/etc/tcpcam/door.key", str(keyFile)))
    config = parse("--config", str(path))
    door = config.cameras[0]
    assert (door.name, door.pin, door.key) == ("door", "4321", KEY_A)
    assert door.settings == {"framesize": "SVGA", "quality": 80}
    assert all(camera.key is None for camera in config.cameras[1:])
