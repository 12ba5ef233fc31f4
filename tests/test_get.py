"""``tcpcam get``: arguments, output files and exit statuses, run as a real process."""

import argparse
import datetime
import io
import os
import signal

import pytest
import pytest_twisted
from client_support import (  # noqa: F401 - the fixtures are used by name
    WAIT,
    frames_bytes,
    ports_fixture,
    reactor_fixture,
    run_python,
    serve,
    spawn,
    unused_port,
)
from twisted.internet import defer, task
from twisted.internet.endpoints import serverFromString

from tcpcam.cli import get
from tcpcam.client.output import OutputError, SplitSink, StreamSink, check_pattern
from tcpcam.client.progress import ProgressLine, human_bytes, progress_text

PAYLOADS = [b"\xff\xd8first\x00", (b"y" * 1023 + b"\x00") * 2, b"", b"last\x00\x00"]
GET = ["-m", "tcpcam.cli.get"]
#: ``tcpcam get`` started with SIGINT ignored, as a script's background job is.
GET_IGNORING_INTERRUPT = ["-c", "import runpy, signal; signal.signal(signal.SIGINT, signal.SIG_IGN);"
                          " runpy.run_module('tcpcam.cli.get', run_name='__main__', alter_sys=True)"]


@defer.inlineCallbacks
def listening_port(reactor, ports, factory):
    """Listen with ``factory`` on a loopback port closed after the test; returns the port number as text."""
    port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
    ports.append(port)
    return str(port.getHost().port)


def parse(*argv):
    parser = argparse.ArgumentParser()
    get.add_arguments(parser)
    return parser.parse_args(argv)


def test_arguments_are_parsed_and_checked(capsys):
    args = parse("cam.local", "3333", "1235", "-5", "out.bin", "--timeout", "2", "--max-frame-bytes", "10")
    assert (args.host, args.port, args.pin, args.cmd, args.fname) == ("cam.local", 3333, "1235", -5, "out.bin")
    assert (args.timeout, args.max_frame_bytes, args.pause, args.quiet) == (2.0, 10, 0.05, False)
    for bad in (
        ["h", "0", "1235", "1"],
        ["h", "3333", "", "1"],
        ["h", "3333", "1235", "five"],
        ["h", "3333", "1235", "99999999999"],
        ["h", "3333", "1235", "1", "--timeout", "-1"],
        ["h", "3333", "1235", "1", "--timeout", "nan"],
        ["h", "3333", "1235", "1", "--max-frame-bytes", "-3"],
        ["h", "3333", "1235", "1", "--split", "same.jpg"],
        ["h", "3333", "1235", "1", "--split", "{m}.jpg"],
    ):
        with pytest.raises(SystemExit) as exited:
            parse(*bad)
        assert exited.value.code == 2
    assert "error" in capsys.readouterr().err


def test_split_sink_writes_whole_files_named_by_pattern(tmp_path):
    when = datetime.datetime(2024, 5, 6, 7, 8, 9)
    sink = SplitSink(str(tmp_path / "sub" / "{time:%Y%m%d}-{n:03d}.jpg"), now=lambda: when)
    sink(memoryview(b"one\x00"))
    sink(memoryview(b""))
    sink.close()
    assert sorted(os.listdir(tmp_path / "sub")) == ["20240506-001.jpg", "20240506-002.jpg"]
    assert (tmp_path / "sub" / "20240506-001.jpg").read_bytes() == b"one\x00"
    assert (tmp_path / "sub" / "20240506-002.jpg").read_bytes() == b""
    umask = os.umask(0o027)
    try:
        SplitSink(str(tmp_path / "{n}.jpg"))(memoryview(b"x"))
    finally:
        os.umask(umask)
    assert os.stat(tmp_path / "1.jpg").st_mode & 0o777 == 0o640


def test_split_sink_error_leaves_no_partial_file(tmp_path):
    (tmp_path / "blocker").write_bytes(b"")
    sink = SplitSink(str(tmp_path / "blocker" / "{n}.jpg"))
    with pytest.raises(OutputError, match="cannot write"):
        sink(memoryview(b"data"))
    assert os.listdir(tmp_path) == ["blocker"]


def test_pattern_check():
    check_pattern("frame-{n:05d}.jpg")
    for bad in ("x.jpg", "{n:q}.jpg", "{0}.jpg", "{n}/"):
        with pytest.raises(ValueError):
            check_pattern(bad)


def test_stream_sink_reports_write_errors():
    stream = io.BytesIO()
    sink = StreamSink(stream, "buffer")
    sink(memoryview(b"ab"))
    assert stream.getvalue() == b"ab"
    stream.close()
    with pytest.raises((OutputError, ValueError)):
        sink(memoryview(b"cd"))


def test_progress_line():
    assert human_bytes(999) == "999 B"
    assert human_bytes(1_234_567) == "1.2 MB"
    assert progress_text(5, 10, 2000, 2.0) == "frames 5/10 [############............]  50%  2.5 frames/s  2.0 kB"
    assert progress_text(7, 0, 10, 0) == "frames 7  0.0 frames/s  10 B"
    out = io.StringIO()
    times = iter([0.0, 0.01, 0.02, 0.5, 0.6])
    line = ProgressLine(out, 3, clock=lambda: next(times))
    line.update(1, 10)
    line.update(2, 20)
    line.update(3, 30)
    line.finish(3, 30)
    assert out.getvalue().count("\r") == 3
    assert out.getvalue().endswith("100%  5.0 frames/s  30 B\x1b[K\n")


@pytest_twisted.inlineCallbacks
def test_payloads_to_stdout_byte_exact(reactor, ports):
    factory, _address = yield serve(reactor, ports, lambda s: s.sendAndClose(frames_bytes(PAYLOADS)))
    port = factory.port
    done = yield run_python(reactor, [*GET, "127.0.0.1", port, "1235", "4", "--pause", "0"])
    assert done.status == 0, done.err
    assert done.out == b"".join(PAYLOADS)
    assert factory.connections[0].received == b"1235\n4\n"
    assert b"4 frames" in done.err


@pytest_twisted.inlineCallbacks
def test_appends_to_fname_quietly(reactor, ports, tmp_path):
    target = tmp_path / "all.bin"
    target.write_bytes(b"before")
    factory, _address = yield serve(reactor, ports, lambda s: s.sendAndClose(frames_bytes(PAYLOADS)))
    port = factory.port
    done = yield run_python(reactor, [*GET, "-q", "127.0.0.1", port, "1235", "4", str(target)])
    assert (done.status, done.out, done.err) == (0, b"", b"")
    assert target.read_bytes() == b"before" + b"".join(PAYLOADS)


@pytest_twisted.inlineCallbacks
def test_progress_line_on_a_terminal(reactor, ports, tmp_path):
    factory, _address = yield serve(reactor, ports, lambda s: s.sendAndClose(frames_bytes(PAYLOADS)))
    port = factory.port
    target = tmp_path / "out.bin"
    done = yield run_python(reactor, [*GET, "127.0.0.1", port, "1235", "4", str(target)], usePTY=True)
    assert done.status == 0, done.out
    assert b"frames 4/4 [########################] 100%" in done.out
    assert target.read_bytes() == b"".join(PAYLOADS)

    done = yield run_python(reactor, [*GET, "-q", "127.0.0.1", port, "1235", "4", str(target)], usePTY=True)
    assert b"frames" not in done.out


@pytest_twisted.inlineCallbacks
def test_split_writes_one_file_per_frame(reactor, ports, tmp_path):
    factory, _address = yield serve(reactor, ports, lambda s: s.sendAndClose(frames_bytes(PAYLOADS)))
    port = factory.port
    done = yield run_python(
        reactor, [*GET, "-q", "--split", "frames/f-{n:05d}.bin", "127.0.0.1", port, "1235", "0"], cwd=str(tmp_path)
    )
    assert done.status == 0, done.err
    names = sorted(os.listdir(tmp_path / "frames"))
    assert names == ["f-%05d.bin" % n for n in range(1, 5)]
    assert [(tmp_path / "frames" / name).read_bytes() for name in names] == PAYLOADS


@pytest.mark.parametrize(
    "wire, cmd, message",
    [
        (b"", "3", b"PIN may be wrong"),
        (frames_bytes([b"a"]), "3", b"after 1 of the 3 frames"),
        (frames_bytes([b"a"]) + b"\x00\x00\x01", "3", b"truncated"),
        (frames_bytes([b"a" * 100]), "1", b"over the limit of 50 bytes"),
    ],
)
@pytest_twisted.inlineCallbacks
def test_protocol_errors_exit_1_with_one_line(reactor, ports, tmp_path, wire, cmd, message):
    factory, _address = yield serve(reactor, ports, lambda s: s.sendAndClose(wire))
    port = factory.port
    done = yield run_python(
        reactor, [*GET, "-q", "--max-frame-bytes", "50", "127.0.0.1", port, "1235", cmd, str(tmp_path / "out")]
    )
    assert done.status == 1
    assert message in done.err
    assert done.err.count(b"\n") == 1 and done.err.startswith(b"tcpcam get: error: ")


@pytest_twisted.inlineCallbacks
def test_refused_and_silent_servers_exit_1(reactor, ports):
    port = str(unused_port())
    done = yield run_python(reactor, [*GET, "127.0.0.1", port, "1235", "1"])
    assert done.status == 1
    assert b"cannot connect to 127.0.0.1:%s: connection refused" % port.encode() in done.err

    factory, _address = yield serve(reactor, ports, lambda s: None)
    port = factory.port
    done = yield run_python(reactor, [*GET, "--timeout", "0.3", "127.0.0.1", port, "1235", "1"])
    assert done.status == 1
    assert b"nothing received for 0.3 s" in done.err


@pytest_twisted.inlineCallbacks
def test_bad_arguments_exit_2(reactor, tmp_path):
    done = yield run_python(reactor, [*GET, "127.0.0.1", "3333", "1235", "x"])
    assert done.status == 2
    done = yield run_python(reactor, [*GET, "--split", "{n}", "127.0.0.1", "3333", "1235", "1", "file"])
    assert done.status == 2
    assert b"not both" in done.err


@pytest_twisted.inlineCallbacks
def test_ctrl_c_stops_cleanly_with_whole_files(reactor, ports, tmp_path):
    payload = b"\xff\xd8" + os.urandom(20_000) + b"\xff\xd9"

    def stream(server):
        server.sending = task.LoopingCall(server.transport.write, frames_bytes([payload]))
        server.sending.start(0.02)
        server.lost.addCallback(lambda _: server.sending.stop())

    factory, _address = yield serve(reactor, ports, stream)
    port = factory.port
    child = spawn(reactor, [*GET_IGNORING_INTERRUPT, "--split", "{n}.jpg", "127.0.0.1", port, "1235", "0"],
                  cwd=str(tmp_path))
    try:
        for _ in range(WAIT * 20):
            if len([name for name in os.listdir(tmp_path) if name.endswith(".jpg")]) >= 3:
                break
            yield task.deferLater(reactor, 0.05, lambda: None)
        child.transport.signalProcess("INT")
        yield child.ended.addTimeout(WAIT, reactor)
    finally:
        if child.status is None:
            child.transport.signalProcess("KILL")
    assert child.status == 130, child.err
    assert b"interrupted after" in child.err
    names = os.listdir(tmp_path)
    assert len(names) >= 3
    assert all(name.endswith(".jpg") for name in names)
    assert all((tmp_path / name).read_bytes() == payload for name in names)
    yield factory.connections[0].lost.addTimeout(WAIT, reactor)


@pytest_twisted.inlineCallbacks
def test_console_script_runs_get(reactor, ports):
    factory, _address = yield serve(reactor, ports, lambda s: s.sendAndClose(frames_bytes([b"via cli"])))
    port = factory.port
    done = yield run_python(reactor, ["-m", "tcpcam.cli", "get", "-q", "127.0.0.1", port, "1235", "1"])
    assert (done.status, done.out) == (0, b"via cli"), done.err


@pytest.mark.parametrize("command", [["-m", "tcpcam.cli", "get"], GET], ids=["tcpcam", "module"])
@pytest_twisted.inlineCallbacks
def test_options_between_positionals(reactor, ports, tmp_path, command):
    factory, _address = yield serve(reactor, ports, lambda s: s.sendAndClose(frames_bytes([b"a", b"b"])))
    done = yield run_python(reactor, [*command, "127.0.0.1", factory.port, "1235", "2", "-q", "out.bin"],
                            cwd=str(tmp_path))
    assert (done.status, done.err) == (0, b"")
    assert (tmp_path / "out.bin").read_bytes() == b"ab"
    done = yield run_python(reactor, [*command, "127.0.0.1", "--timeout", "5", factory.port, "1235",
                                      "--pause", "0", "2", "-q"], cwd=str(tmp_path))
    assert (done.status, done.out) == (0, b"ab"), done.err


@pytest_twisted.inlineCallbacks
def test_blocked_after_wrong_pins_names_both_causes(reactor, ports):
    # The real server: five wrong PINs block the address, and then the right
    # PIN is turned away the same way; the legacy protocol cannot say which.
    from server_support import quickFactory

    factory = quickFactory(pinFailures=5, pinBlock=60.0)
    port = yield listening_port(reactor, ports, factory)
    messages = []
    for pin in ["9999"] * 5 + ["1235"]:
        done = yield run_python(reactor, [*GET, "-q", "--pause", "0", "127.0.0.1", port, pin, "1"])
        assert done.status == 1
        assert done.err.count(b"\n") == 1
        messages.append(done.err.decode())
    assert factory.role.status()["refused_blocked"] >= 1, factory.role.status()
    blocked = messages[-1]
    assert "the PIN may be wrong" in blocked and "blocked for a while after wrong PINs" in blocked, blocked
    assert "even with the right PIN" in blocked


JPEGS = [b"\xff\xd8one\xff\xd9", b"\xff\xd8two\xff\xd9"]


@pytest_twisted.inlineCallbacks
def test_frames_that_are_not_jpegs_are_skipped_and_counted_for_a_jpg_output(reactor, ports, tmp_path):
    wire = frames_bytes([b"", JPEGS[0], b"Hello World", JPEGS[1]])
    factory, _address = yield serve(reactor, ports, lambda s: s.sendAndClose(wire))
    done = yield run_python(reactor, [*GET, "-q", "--split", "f-{n}.JPG", "127.0.0.1", factory.port, "1235", "4"],
                            cwd=str(tmp_path))
    assert done.status == 0, done.err
    assert sorted(os.listdir(tmp_path)) == ["f-1.JPG", "f-2.JPG"]
    assert [(tmp_path / name).read_bytes() for name in ("f-1.JPG", "f-2.JPG")] == JPEGS
    assert done.err == (b"tcpcam get: skipped 2 frames: not a JPEG (the first: too short for a JPEG (0 bytes));"
                        b" 2 frames written\n")
    done = yield run_python(reactor, [*GET, "-q", "127.0.0.1", factory.port, "1235", "4", "all.jpeg"],
                            cwd=str(tmp_path))
    assert (tmp_path / "all.jpeg").read_bytes() == b"".join(JPEGS)
    assert b"skipped 2 frames" in done.err
    # Any other name keeps every payload, byte-exact.
    done = yield run_python(reactor, [*GET, "-q", "127.0.0.1", factory.port, "1235", "4", "all.bin"],
                            cwd=str(tmp_path))
    assert (done.status, done.err) == (0, b"")
    assert (tmp_path / "all.bin").read_bytes() == b"".join([b"", JPEGS[0], b"Hello World", JPEGS[1]])


class EndlessEmptyFrames:
    """A pull producer that writes empty frames for as long as the client reads them: the attack of issue 11."""

    CHUNK = b"\x00\x00\x00\x00" * 1024

    def __init__(self, server):
        self.server = server
        server.transport.registerProducer(self, False)

    def resumeProducing(self):
        self.server.transport.write(self.CHUNK)

    def stopProducing(self):
        pass


@pytest.mark.slow
@pytest_twisted.inlineCallbacks
def test_endless_empty_frames_stop_at_the_default_file_bound(reactor, ports, tmp_path):
    factory, _address = yield serve(reactor, ports, EndlessEmptyFrames)
    done = yield run_python(reactor, [*GET, "-q", "--split", "frames/{n}.bin", "127.0.0.1", factory.port,
                                      "1235", "0"], cwd=str(tmp_path), timeout=120)
    assert done.status == 1
    assert done.err == (b"tcpcam get: error: stopped after %d files: the --max-files bound"
                        b" (raise it to keep more)\n" % get.GET_MAX_FILES)
    names = os.listdir(tmp_path / "frames")
    assert len(names) == get.GET_MAX_FILES == 10000
    assert not [name for name in names if name.endswith(".part")]
    yield factory.connections[0].lost.addTimeout(WAIT, reactor)


@pytest_twisted.inlineCallbacks
def test_max_files_and_max_bytes(reactor, ports, tmp_path):
    factory, _address = yield serve(reactor, ports, EndlessEmptyFrames)
    done = yield run_python(reactor, [*GET, "--max-files", "7", "--split", "{n}.bin", "127.0.0.1", factory.port,
                                      "1235", "-5"], cwd=str(tmp_path))
    assert done.status == 1 and b"stopped after 7 files: the --max-files bound" in done.err
    assert sorted(os.listdir(tmp_path)) == sorted("%d.bin" % n for n in range(1, 8))

    frames = [b"abcd"] * 5
    factory, _address = yield serve(reactor, ports, lambda s: s.sendAndClose(frames_bytes(frames)))
    done = yield run_python(reactor, [*GET, "-q", "--max-bytes", "10", "127.0.0.1", factory.port, "1235", "5",
                                      "out.bin"], cwd=str(tmp_path))
    assert done.status == 1
    assert done.err == (b"tcpcam get: error: stopped after 2 frames (8 bytes): the next frame would pass"
                        b" --max-bytes 10 (raise it to keep more)\n")
    assert (tmp_path / "out.bin").read_bytes() == b"abcd" * 2
    # Exactly at the bound is within it.
    done = yield run_python(reactor, [*GET, "-q", "--max-bytes", "20", "127.0.0.1", factory.port, "1235", "5"])
    assert (done.status, done.out) == (0, b"abcd" * 5), done.err


@pytest_twisted.inlineCallbacks
def test_bounds_are_checked_before_connecting(reactor, tmp_path):
    port = str(unused_port())
    done = yield run_python(reactor, [*GET, "--split", "{n}.jpg", "127.0.0.1", port, "1235", "10001"])
    assert done.status == 2
    assert b"CMD 10001 asks for more frames than --max-files 10000 lets --split write" in done.err
    for bad in (["--max-files", "0"], ["--max-bytes", "lots"], ["--max-bytes", "0"]):
        done = yield run_python(reactor, [*GET, *bad, "127.0.0.1", port, "1235", "1"])
        assert done.status == 2 and b"expected" in done.err


@pytest_twisted.inlineCallbacks
def test_a_frame_trickling_in_is_given_up_after_the_timeout(reactor, ports):
    # One byte every 2 s keeps the silence timer happy; the frame as a whole
    # must still arrive within --timeout, counted from its first byte.
    factory, _address = yield serve(reactor, ports, lambda s: s.trickle(reactor, frames_bytes([b"x" * 100]), 2.0))
    done = yield run_python(reactor, [*GET, "--timeout", "5", "127.0.0.1", factory.port, "1235", "1"], timeout=30)
    assert done.status == 1
    assert done.err == (b"tcpcam get: error: frame 1 did not arrive whole within 5 s"
                        b" (raise the timeout if the camera is slow)\n")
    yield factory.connections[0].lost.addTimeout(WAIT, reactor)


def test_signal_number_of_interrupt_status():
    assert get.EXIT_INTERRUPTED == 128 + signal.SIGINT
