"""``tcpcam serve`` options, the twistd plugin, and a real twistd run."""

import argparse
import os
import socket
import subprocess
import sys
import time

import pytest
from twisted.application.service import IServiceMaker
from twisted.plugin import getPlugins
from twisted.python import usage

from tcpcam.commands import serve
from tcpcam.framing import FrameDecoder
from tcpcam.server_options import buildFactory, fromNamespace
from tcpcam.tap import server as tap

_SCRIPT = os.path.join(os.path.dirname(sys.executable), "twistd")
#: The installed twistd script, or the same entry point through this interpreter.
TWISTD = [_SCRIPT] if os.path.exists(_SCRIPT) else [
    sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def parse(*argv):
    parser = argparse.ArgumentParser(prog="tcpcam serve")
    serve.add_arguments(parser)
    return parser.parse_args(list(argv))


def test_defaults_are_the_originals():
    options = fromNamespace(parse())
    assert options["listen"] == "tcp:3333"
    assert options["pin"] == "1235"
    assert options["source"] == "pattern"
    assert options["keepalive"] == (5, 5, 3)
    assert options["max-clients"] == 16


def test_options_reach_the_factory():
    args = parse("--pin", "4321", "--source", "hello", "--interval-ms", "250", "--max-clients", "3",
                 "--handshake-timeout", "2.5", "--keepalive", "7,2,9", "--pin-failures", "4",
                 "--pin-window", "30", "--pin-block", "90")
    factory = buildFactory(fromNamespace(args))
    assert (factory.pin, factory.interval, factory.maxClients, factory.handshakeTimeout, factory.keepAlive) == (
        "4321", 0.25, 3, 2.5, (7, 2, 9))
    assert (factory.throttle.max_failures, factory.throttle.window, factory.throttle.block) == (4, 30, 90)
    assert factory.source.nextFrame() == b"Hello World"


def test_keepalive_and_throttling_can_be_turned_off():
    factory = buildFactory(fromNamespace(parse("--source", "hello", "--keepalive", "off", "--pin-failures", "0")))
    assert factory.keepAlive is None and factory.throttle is None


@pytest.mark.parametrize("argv", [
    ("--interval-ms", "-1"), ("--max-clients", "0"), ("--keepalive", "5,5"), ("--handshake-timeout", "x"),
])
def test_bad_numbers_are_usage_errors(argv, capsys):
    with pytest.raises(SystemExit) as exit:
        parse(*argv)
    assert exit.value.code == 2
    assert "error: argument" in capsys.readouterr().err


@pytest.mark.parametrize("argv, message", [
    (("--source", "nonsense"), "unknown frame source 'nonsense'"),
    (("--source", "jpeg:/nonexistent/x.jpg"), "cannot read /nonexistent/x.jpg"),
    (("--source", "hello", "--pin", "12\n3"), "PIN"),
    (("--source", "hello", "--listen", "nosuch:1"), "nosuch"),
])
def test_bad_values_are_one_line_with_status_2(argv, message, capsys):
    assert serve.run(parse(*argv)) == 2
    error = capsys.readouterr().err
    assert message in error and error.count("\n") == 1 and error.startswith("tcpcam serve: ")


def test_tap_options_are_the_same_and_check_the_source():
    options = tap.Options()
    options.parseOptions(["--source", "hello", "--listen", "tcp:0:interface=127.0.0.1", "--max-clients", "4"])
    service = tap.makeService(options)
    assert service.factory.maxClients == 4
    assert service.factory.keepAlive == (5, 5, 3)
    with pytest.raises(usage.UsageError, match="unknown frame source"):
        tap.Options().parseOptions(["--source", "nonsense"])


def test_the_plugin_is_found():
    names = [maker.tapname for maker in getPlugins(IServiceMaker)]
    assert "tcpcam-server" in names


def test_twistd_help_lists_the_plugin():
    result = subprocess.run(TWISTD + ["--help"], capture_output=True, text=True, timeout=60)
    assert "tcpcam-server" in result.stdout


def freePort():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_twistd_serves_frames(tmp_path):
    port = freePort()
    process = subprocess.Popen(
        TWISTD + ["--nodaemon", "--pidfile=", "--logfile=-", "tcpcam-server", "--source", "hello",
                  "--listen", "tcp:%d:interface=127.0.0.1" % port, "--interval-ms", "0"],
        stdout=subprocess.PIPE, stderr=subprocess.STDOUT, cwd=str(tmp_path), env=dict(os.environ))
    try:
        frames = []
        connection = None
        for _ in range(100):
            try:
                connection = socket.create_connection(("127.0.0.1", port), timeout=10)
                break
            except OSError:
                if process.poll() is not None:
                    break
                time.sleep(0.1)
        assert connection is not None, "twistd did not listen"
        with connection:
            connection.sendall(b"1235\n3\n")
            decoder = FrameDecoder()
            while True:
                data = connection.recv(65536)
                if not data:
                    break
                frames.extend(decoder.feed(data))
    finally:
        process.terminate()
        output = process.communicate(timeout=30)[0].decode()
    assert frames == [b"Hello World"] * 3, output
    assert "streams 3 frames" in output
