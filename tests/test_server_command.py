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

from tcpcam.cli import serve
from tcpcam.common.optionparsers import textsFromNamespace
from tcpcam.core.framing import FrameDecoder
from tcpcam.server.options import OPTIONS, buildFactory, checkedValues
from tcpcam.tap import server as tap

_SCRIPT = os.path.join(os.path.dirname(sys.executable), "twistd")
#: The installed twistd script, or the same entry point through this interpreter.
TWISTD = [_SCRIPT] if os.path.exists(_SCRIPT) else [
    sys.executable, "-c", "from twisted.scripts.twistd import run; run()"]


def parse(*argv):
    parser = argparse.ArgumentParser(prog="tcpcam serve")
    serve.add_arguments(parser)
    return parser.parse_args(list(argv))


def values(*argv):
    return checkedValues(textsFromNamespace(parse(*argv), OPTIONS))


def test_defaults_are_the_originals_and_the_core_limits():
    defaults = values()
    assert (defaults["listen"], defaults["pin"], defaults["source"]) == ("tcp:3333", "1235", "pattern")
    assert defaults["keepalive"] == (5, 5, 3)
    assert defaults["max_clients"] == 8


def test_options_reach_the_core():
    factory = buildFactory(values("--pin", "4321", "--source", "hello", "--interval-ms", "250",
                                  "--max-clients", "3", "--handshake-timeout", "2.5", "--keepalive", "7,2,9",
                                  "--pin-failures", "4", "--pin-window", "30", "--pin-block", "90"))
    role = factory.role
    assert (factory.pin, role.pacer.interval_ms, role.max_clients, role.handshake_timeout_ms, factory.keepAlive) == (
        "4321", 250, 3, 2500, (7, 2, 9))
    assert (role.throttle.max_failures, role.throttle.window, role.throttle.block) == (4, 30000, 90000)
    assert factory.source.nextFrame() == b"Hello World"


def test_keepalive_and_throttling_can_be_turned_off():
    factory = buildFactory(values("--source", "hello", "--keepalive", "off", "--pin-failures", "0"))
    assert factory.keepAlive is None and factory.role.throttle is None


@pytest.mark.parametrize("argv, message", [
    (("--interval-ms", "-1"), 'bad --interval-ms "-1": expected a number from 0 to 3600000'),
    (("--max-clients", "0"), "bad --max-clients"),
    (("--keepalive", "5,5"), "IDLE,INTERVAL,COUNT"),
    (("--handshake-timeout", "x"), 'bad --handshake-timeout "x"'),
    (("--source", "nonsense"), "unknown frame source 'nonsense'"),
    (("--source", "jpeg:/nonexistent/x.jpg"), "cannot read /nonexistent/x.jpg"),
    (("--source", "hello", "--pin", "12\n3"), "bad --pin"),
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
    with pytest.raises(usage.UsageError, match='bad --max-clients "0"'):
        tap.Options().parseOptions(["--max-clients", "0"])


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
