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
    assert config.out == "recordings" and config.format == "jpg"
    assert config.web == "tcp:8080:interface=127.0.0.1"
    assert config.keepDays == 0 and config.maxBytes == 0


def test_cameras_pin_and_settings(tmp_path):
    out = str(tmp_path / "cams")
    config = parse(
        "--camera", "door=tcp:host=192.168.1.50:port=3333", "-C", "yard=tcp:host=cam2:port=4000",
        "--pin", "4321", "--out", out, "--format", "mjpeg", "--keep-days", "14",
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
        out, "mjpeg", 14, 20_000_000_000, "tcp:8081")
    assert (config.backoffInitial, config.backoffMax) == (0.5, 30)
    assert parse("--no-web").web is None


CONFIG = """
out = "OUT"
format = "mjpeg"
keep_days = 30
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
    assert config.keepDays == 7 and config.out == str(tmp_path / "cams") and config.format == "mjpeg"
    assert config.maxBytes == 500 * 1024 ** 3


@pytest.mark.parametrize("argv, message", [
    (["--camera", "door"], "expected NAME=ENDPOINT"),
    (["--camera", "a/b=tcp:host=h:port=1"], "bad camera name"),
    (["--camera", "a=tcp:host=h:port=1", "--camera", "a=tcp:host=h:port=2"], "used twice"),
    (["--camera", "metrics=tcp:host=h:port=1"], "the live view uses /metrics"),
    (["--camera", "a=nosuchendpoint:1"], "bad endpoint for camera a"),
    (["--web", "nosuchendpoint:1"], "bad endpoint for --web"),
    (["--format", "avi"], 'bad --format "avi": expected one of jpg, mjpeg'),
    (["--max-bytes", "lots"], 'bad --max-bytes "lots": expected a size in bytes'),
    (["--keep-days", "-1"], "bad --keep-days"),
    (["--frame-timeout", "0"], "bad --frame-timeout"),
    (["--pin", ""], "bad --pin"),
    (["--backoff-initial", "5", "--backoff-max", "1"], "backoff"),
    (["--config", "/nonexistent/cams.toml"], "cannot read config file"),
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
])
def test_bad_config_files(tmp_path, text, message):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(usage.UsageError) as raised:
        parse("--config", str(path))
    assert message in str(raised.value)


def test_tcpcam_record_takes_the_same_options_and_gives_the_same_config():
    argv = ["--camera", "door=tcp:host=h:port=1", "-C", "yard=tcp:host=h:port=2",
            "--pin", "77", "--no-web", "--max-bytes", "1G", "-f", "mjpeg"]
    parser = argparse.ArgumentParser()
    record_command.add_arguments(parser)
    args = parser.parse_args(argv)
    config = checkedConfig({"pin": args.pin, "max_bytes": args.max_bytes, "format": args.format},
                           args.camera, args.config, args.no_web)
    assert config == parse(*argv)
    assert [c.name for c in config.cameras] == ["door", "yard"]
    assert config.cameras[1].pin == "77" and config.web is None
    assert config.maxBytes == 1_000_000_000 and config.format == "mjpeg"


def test_tcpcam_record_refuses_with_one_line_and_status_2(capsys):
    parser = argparse.ArgumentParser()
    record_command.add_arguments(parser)
    assert record_command.run(parser.parse_args(["--camera", "oops"])) == 2
    assert capsys.readouterr().err == (
        "tcpcam record: bad --camera 'oops': expected NAME=ENDPOINT, such as door=tcp:host=192.168.1.50:port=3333\n")
