"""``tcpcam set``, ``info`` and ``snap`` as a user runs them, against the reference server on loopback."""

import io
import json
import os
import sys

import pytest_twisted
from server_support import listening
from twisted.internet import reactor, utils

from tcpcam.core.mac import key_text
from tcpcam.server import TCPCamServerFactory
from tcpcam.server.sources.files import HelloSource
from tcpcam.server.sources.pattern import PatternSource

KEY = key_text(bytes(range(40, 60)))


def tcpcam(*argv, env=None):
    """Run the console script in a child process; fires with (stdout, stderr, status)."""
    environment = {key: value for key, value in os.environ.items() if key != "TCPCAM_KEY"}
    environment.update(env or {})
    return utils.getProcessOutputAndValue(sys.executable, ["-m", "tcpcam", *[str(arg) for arg in argv]],
                                          env=environment)


@pytest_twisted.inlineCallbacks
def test_set_info_and_snap_remote_control_the_simulated_camera(tmp_path):
    from PIL import Image

    factory = TCPCamServerFactory(PatternSource((320, 240)), reactor=reactor, key=bytes(range(40, 60)), name="yard")
    port = yield listening(factory)
    where = ["127.0.0.1", "--port", port.getHost().port]
    try:
        out, err, status = yield tcpcam("set", *where, "--key", KEY, "framesize=XGA", "quality=40", "flip=on")
        assert status == 0, err
        assert json.loads(out)["framesize"] == "XGA" and json.loads(out)["flip"] is True
        out, err, status = yield tcpcam("info", *where, env={"TCPCAM_KEY": KEY})
        info = json.loads(out)
        assert status == 0 and info["device"]["name"] == "yard" and info["settings"]["quality"] == 40
        assert "uptime_s" in info["health"]
        out, err, status = yield tcpcam("snap", *where, "--key", KEY, tmp_path / "shot.jpg")
        assert status == 0, err
        assert Image.open(io.BytesIO((tmp_path / "shot.jpg").read_bytes())).size == (1024, 768)
        out, err, status = yield tcpcam("set", *where, "--key", KEY, "quality=900")
        assert status == 2 and err.decode().count("\n") == 1 and "bad quality" in err.decode()
        out, err, status = yield tcpcam("set", *where, "--key", key_text(bytes(20)), "quality=50")
        assert status == 1 and "wrong key" in err.decode() and err.decode().count("\n") == 1, err
    finally:
        yield port.stopListening()


@pytest_twisted.inlineCallbacks
def test_snap_from_a_legacy_camera_and_set_says_it_needs_protocol_2(tmp_path):
    port = yield listening(TCPCamServerFactory(HelloSource(), reactor=reactor))
    where = ["127.0.0.1", "--port", port.getHost().port]
    try:
        out, err, status = yield tcpcam("snap", *where, "-")
        assert status == 0 and out == b"Hello World"
        out, err, status = yield tcpcam("set", *where, "--key", KEY, "quality=50")
        assert status == 1 and "needs protocol 2" in err.decode()
    finally:
        yield port.stopListening()
