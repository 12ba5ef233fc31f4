"""plural(): the one way counts are written in messages (also run under MicroPython)."""

from tcpcam.core.text import plural


def test_plural():
    assert plural(1, "frame") == "1 frame"
    assert plural(0, "frame") == "0 frames"
    assert plural(2, "byte") == "2 bytes"
    assert plural(-1, "frame") == "-1 frames"
    assert plural(1, "address", "addresses") == "1 address"
    assert plural(5, "address", "addresses") == "5 addresses"
