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

from tcpcam import firmware_bundle, firmware_simulate
from tcpcam.framing import FrameDecoder

#: Seconds any single wait in these helpers may take.
WAIT = 10.0
#: Settings every test firmware starts with (small and fast).
BASE_CONFIG = {"bind": "127.0.0.1", "interval_ms": 20, "handshake_timeout_ms": 3000}
#: The sample JPEG that the stand-in camera serves without a folder.
TEST_JPEG = (firmware_bundle.find_firmware_dir() / "test.jpg").read_bytes()



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


class Firmware:
    """One firmware process; its console lines are collected in :attr:`lines`."""

    def __init__(self, workdir, config=None, frames_dir=None, env=None, mpy=False):
        self.workdir = Path(workdir)
        self.config = dict(BASE_CONFIG, **(config or {}))
        self.frames_dir = frames_dir
        self.env = env or {}
        self.mpy = mpy
        self.port = None
        self.process = None
        self.lines = []
        self._queue = queue.Queue()
        self._ended = False

    def start(self):
        """Start it and wait for its listening line; a taken port is retried."""
        for _ in range(3):
            self.port = free_port()
            config = dict(self.config, port=self.port)
            device = firmware_simulate.prepare(self.workdir, config, mpy=self.mpy)
            argv, env, cwd = firmware_simulate.command(device, self.frames_dir)
            env.update(self.env)
            self.lines, self._queue, self._ended = [], queue.Queue(), False
            self.process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.PIPE,
                                            stderr=subprocess.STDOUT, text=True)
            threading.Thread(target=self._read, args=(self.process, self._queue), daemon=True).start()
            line = self.wait_for(("server: listening", "server: cannot listen"))
            if "listening" in line:
                return self
            self.stop()
        raise AssertionError("firmware did not start:\n" + "\n".join(self.lines))

    @staticmethod
    def _read(process, lines):
        for line in process.stdout:
            lines.put(line.rstrip("\n"))
        lines.put(None)

    def wait_for(self, needles, timeout=WAIT):
        """The first console line (already printed or still to come) containing one of ``needles``."""
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
            if self._ended:
                raise AssertionError("firmware exited; no %r in:\n%s" % (needles, "\n".join(self.lines)))
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                raise AssertionError("no line with %r in:\n%s" % (needles, "\n".join(self.lines)))
            try:
                line = self._queue.get(timeout=min(remaining, 0.5))
            except queue.Empty:
                continue
            if line is None:
                self._ended = True
            else:
                self.lines.append(line)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc_info):
        self.stop()

    def drain(self):
        """Collect the console lines printed so far."""
        while True:
            try:
                line = self._queue.get_nowait()
            except queue.Empty:
                return self.lines
            if line is None:
                self._ended = True
            else:
                self.lines.append(line)

    def count(self, needle):
        """How many console lines so far contain ``needle``."""
        return sum(needle in line for line in self.drain())

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


def read_frames(sock, limit=1000):
    """Decode frames until the firmware closes the connection (at most ``limit``)."""
    decoder = FrameDecoder()
    frames = []
    while len(frames) < limit:
        data = sock.recv(65536)
        if not data:
            break
        frames.extend(decoder.feed(data))
    assert not decoder.in_frame, "connection closed in the middle of a frame"
    return frames


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


def run_micropython(script, cwd, env=None, timeout=WAIT):
    """Run a MicroPython script with the firmware's lib and the stand-in camera importable."""
    device = Path(cwd)
    argv, full_env, _ = firmware_simulate.command(device)
    full_env.update(env or {})
    return subprocess.run(argv[:-1] + ["-c", script], cwd=str(device), env=full_env, capture_output=True,
                          text=True, timeout=timeout, check=False)
