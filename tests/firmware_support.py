"""Run the firmware under the unix MicroPython on a free loopback port, and talk to it.

Only the hardware is simulated (the stand-in ``camera`` module); the bundle
is the one ``tcpcam firmware bundle`` writes.
"""

import queue
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

from tcpcam.board import bundle as firmware_bundle
from tcpcam.board import simulate as firmware_simulate
from tcpcam.core.framing import FrameDecoder

#: The source checkout these tests belong to.
REPO = Path(__file__).resolve().parents[1]
#: The firmware application's modules, as the bundle must hold them.
APP_MODULES = ("__init__", "app", "camera_drivers", "client", "clock", "config", "health", "keepalive", "log", "ntp",
               "server", "sources", "watchdog", "wifi")
#: The core's modules, as the bundle must hold them.
CORE_MODULES = tuple(sorted(path.stem for path in (REPO / "src/tcpcam/core").glob("*.py")))
#: Seconds any single wait in these helpers may take.
WAIT = 10.0
#: Settings every test firmware starts with (small and fast).
BASE_CONFIG = {"bind": "127.0.0.1", "interval_ms": 20, "handshake_timeout_ms": 3000}
#: The sample JPEG that the stand-in camera serves without a folder.
TEST_JPEG = (firmware_bundle.firmware_files() / "test.jpg").read_bytes()


def _have_micropython():
    try:
        firmware_simulate.find_micropython()
    except firmware_bundle.BundleError:
        return False
    return True


#: Skips a test where the unix MicroPython is not installed.
needs_micropython = pytest.mark.skipif(not _have_micropython(), reason="the unix micropython is not installed")


def free_port():
    """A loopback port that was free a moment ago."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


class Console:
    """The output lines of a child process, collected by a thread; every wait is bounded."""

    def __init__(self, process, name="process"):
        self.name = name
        self.lines = []
        self.ended = False
        self._queue = queue.Queue()
        threading.Thread(target=self._read, args=(process, self._queue), daemon=True).start()

    @staticmethod
    def _read(process, lines):
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def _take(self, line):
        if line is None:
            self.ended = True
        else:
            self.lines.append(line)

    def drain(self):
        """Collect the lines printed so far."""
        while True:
            try:
                self._take(self._queue.get_nowait())
            except queue.Empty:
                return self.lines

    def wait_for(self, needles, timeout=WAIT):
        """The first line (already printed or still to come) containing one of ``needles``."""
        if isinstance(needles, str):
            needles = (needles,)
        deadline = time.monotonic() + timeout
        checked = 0
        while True:
            self.drain()
            for line in self.lines[checked:]:
                if any(needle in line for needle in needles):
                    return line
            checked = len(self.lines)
            if self.ended:
                raise AssertionError("%s exited; no %r in:\n%s" % (self.name, needles, "\n".join(self.lines)))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no line with %r in:\n%s" % (needles, "\n".join(self.lines)))
            try:
                self._take(self._queue.get(timeout=min(remaining, 0.5)))
            except queue.Empty:
                continue


    def wait_count(self, needle, count, timeout=WAIT):
        """Wait until ``count`` lines (already printed or still to come) contain ``needle``."""
        deadline = time.monotonic() + timeout
        while True:
            self.drain()
            if sum(needle in line for line in self.lines) >= count:
                return
            if self.ended:
                raise AssertionError("%s exited with %d of %d %r lines" % (
                    self.name, sum(needle in line for line in self.lines), count, needle))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("only %d of %d lines with %r in:\n%s" % (
                    sum(needle in line for line in self.lines), count, needle, "\n".join(self.lines)))
            try:
                self._take(self._queue.get(timeout=min(remaining, 0.5)))
            except queue.Empty:
                continue


class Firmware:
    """One firmware process; its console lines are collected in :attr:`lines`."""

    def __init__(self, workdir, config=None, frames_dir=None, env=None, mpy=False, driver="lemariva", heapsize=None):
        self.workdir = Path(workdir)
        self.config = dict(BASE_CONFIG, **(config or {}))
        self.frames_dir = frames_dir
        self.env = env or {}
        self.mpy = mpy
        self.driver = driver
        self.heapsize = heapsize
        #: Seconds from the process start to its listening line.
        self.started_in = None
        self.port = None
        self.process = None
        self.console = None

    @property
    def lines(self):
        """The console lines collected so far."""
        return self.console.lines if self.console else []

    def start(self):
        """Start it and wait for its listening line; a taken port is retried."""
        for _ in range(3):
            self.port = free_port()
            config = dict(self.config, port=self.port)
            device = firmware_simulate.prepare(self.workdir, config, mpy=self.mpy)
            argv, env, cwd = firmware_simulate.command(device, self.frames_dir, heapsize=self.heapsize,
                                                       driver=self.driver)
            env.pop(firmware_simulate.RESET_CAUSE_VARIABLE, None)
            env.update(self.env)
            began = time.monotonic()
            self.process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True)
            self.console = Console(self.process, "firmware")
            line = self.wait_for(("server: listening", "server: cannot listen"))
            if "listening" in line:
                self.started_in = time.monotonic() - began
                return self
            self.stop()
        raise AssertionError("firmware did not start:\n" + "\n".join(self.lines))

    def wait_for(self, needles, timeout=WAIT):
        """The first console line (already printed or still to come) containing one of ``needles``."""
        return self.console.wait_for(needles, timeout)

    def drain(self):
        """Collect the console lines printed so far."""
        return self.console.drain()

    def count(self, needle):
        """How many console lines so far contain ``needle``."""
        return sum(needle in line for line in self.drain())

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def stop(self):
        """Kill the process and wait for it."""
        if self.process is not None and self.process.poll() is None:
            self.process.kill()
        if self.process is not None:
            self.process.wait(WAIT)


def connect(port):
    """A raw client socket to the firmware."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
    sock.settimeout(WAIT)
    return sock


def stalled_stream(firmware):
    """A client that asks for an endless stream and never reads: its socket."""
    stuck = socket.socket()
    stuck.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 4096)
    stuck.settimeout(WAIT)
    try:
        stuck.connect(("127.0.0.1", firmware.port))
        stuck.sendall(b"1235\n0\n")
        firmware.wait_for("streams without end")
    except BaseException:
        stuck.close()
        raise
    return stuck


def read_frames(sock, limit=1000, until_closed=True):
    """Decode frames until the firmware closes the connection, or until ``limit`` frames.

    With ``until_closed`` false the connection must deliver ``limit`` frames
    before it closes.
    """
    decoder = FrameDecoder()
    frames = []
    while len(frames) < limit:
        data = sock.recv(65536)
        if not data:
            assert until_closed, "closed after %d frames" % len(frames)
            break
        frames.extend(decoder.feed(data))
    if until_closed:
        assert not decoder.in_frame, "connection closed in the middle of a frame"
    return frames[:limit]


def fetch_raw(port, parts, pause=0.15, limit=1000):
    """Send ``parts`` with a pause between them (as the original client) and read every frame."""
    with connect(port) as sock:
        for index, part in enumerate(parts):
            if index:
                time.sleep(pause)
            sock.sendall(part)
        return read_frames(sock, limit)


def write_jpegs(folder, count, size):
    """``count`` distinct fake JPEG files of ``size`` bytes; returns their contents in order."""
    folder = Path(folder)
    folder.mkdir(parents=True, exist_ok=True)
    contents = []
    for index in range(count):
        body = bytes([0xFF, 0xD8]) + bytes([index % 251]) * (size - 4) + bytes([0xFF, 0xD9])
        (folder / ("frame%03d.jpg" % index)).write_bytes(body)
        contents.append(body)
    return contents


def run_micropython(script, cwd, env=None, timeout=WAIT, driver="lemariva", heapsize=None):
    """Run a MicroPython script with the firmware's lib and the stand-in camera (of ``driver``) importable."""
    device = Path(cwd)
    argv, full_env, _ = firmware_simulate.command(device, driver=driver, heapsize=heapsize)
    full_env.pop(firmware_simulate.RESET_CAUSE_VARIABLE, None)
    full_env.update(env or {})
    return subprocess.run(argv[:-1] + ["-c", script], cwd=str(device), env=full_env, capture_output=True,
                          text=True, timeout=timeout, check=False)


def expected_tree(suffix):
    """The bundle's file list, modules ending in ``suffix`` (``.py`` or ``.mpy``)."""
    names = ["boot.py", "main.py", "test.jpg", "lib/tcpcam/__init__%s" % suffix]
    names += ["lib/tcpcam/core/%s%s" % (name, suffix) for name in CORE_MODULES]
    names += ["lib/tcpcam_fw/%s%s" % (name, suffix) for name in APP_MODULES]
    return sorted(names)


def tree(folder):
    """Every file under ``folder``, as sorted relative paths."""
    return sorted(str(path.relative_to(folder)) for path in Path(folder).rglob("*") if path.is_file())
