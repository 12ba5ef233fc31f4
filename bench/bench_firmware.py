"""Firmware cost under the unix MicroPython, against the reference server, same run.

Serves 50 KB frames (``--size``) as fast as possible (interval 0) to 1, 4
and 8 raw-socket clients that read an endless stream (legacy protocol) for
``--seconds`` each, and reports for

- the firmware (the device bundle under ``micropython``, lemariva's stand-in
  driver reading the frame from a file, as the real driver hands over a new
  copy per capture), and
- the reference server (:class:`tcpcam.server.TCPCamServerFactory`, CPython
  and Twisted, ``dir:`` source on the same file),

the frames per second, MB/s, and the CPU time per frame per client
(process CPU time, user + system from ``/proc``, divided by the frames all
clients received), with the firmware/reference ratio. From the firmware's
``stats:`` console lines it reports the MicroPython heap: bytes allocated
between two ``gc.collect()`` calls (one frame cycle: garbage per frame) and
still allocated after collect, and the growth per extra client. A
per-client copy of the frame would add about one frame size per client.

Then the time from process start to the first frame a client receives
(the client connects as soon as the port accepts), for the firmware as
``.py`` and as ``.mpy`` and for the reference server.

Run: ``python bench/bench_firmware.py`` (about 40 s; loopback only; Linux, for ``/proc``).
"""

import argparse
import os
import re
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from firmware_support import Firmware, free_port, write_jpegs  # noqa: E402

from tcpcam.board import simulate as firmware_simulate  # noqa: E402

#: The reference server process stops by itself after this many seconds.
SERVER_LIFETIME = 100
#: Client counts measured.
CLIENTS = (1, 4, 8)
#: Start-up runs of each server; the median counts.
START_RUNS = 5
#: Seconds a start-up run may take.
START_TIMEOUT = 30.0

REFERENCE = """
import sys
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString
from tcpcam.server import TCPCamServerFactory
from tcpcam.server.sources import sourceFromSpec
factory = TCPCamServerFactory(sourceFromSpec("dir:" + sys.argv[1]), pin="1235", interval=0.0, maxClients=16)
listening = serverFromString(reactor, "tcp:%%s:interface=127.0.0.1" %% sys.argv[2]).listen(factory)
listening.addCallback(lambda port: print(port.getHost().port, flush=True))
reactor.callLater(%d, reactor.stop)
reactor.run()
""" % SERVER_LIFETIME


def cpu_seconds(pid):
    """User + system CPU seconds of process ``pid`` so far (Linux ``/proc``)."""
    with open("/proc/%d/stat" % pid) as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def read_stream(port, seconds, totals, index, started):
    """One client: ask for an endless stream, count whole frames and bytes for ``seconds``."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=10)
    sock.sendall(b"1235\n0\n")
    header = bytearray(4)
    payload = bytearray(1 << 20)
    frames = received = 0
    started.wait(10)
    deadline = time.monotonic() + seconds
    try:
        while time.monotonic() < deadline:
            _fill(sock, memoryview(header))
            length = int.from_bytes(header, "big")
            if length > len(payload):
                payload = bytearray(length)
            _fill(sock, memoryview(payload)[:length])
            frames += 1
            received += length
    finally:
        sock.close()
    totals[index] = (frames, received)


def _fill(sock, view):
    while len(view):
        count = sock.recv_into(view)
        if not count:
            raise ConnectionError("server closed the stream")
        view = view[count:]


def measure(port, pid, clients, seconds):
    """(frames/s, MB/s, CPU microseconds per frame per client) summed over ``clients`` concurrent streams."""
    totals = [None] * clients
    started = threading.Event()
    threads = [threading.Thread(target=read_stream, args=(port, seconds, totals, index, started))
               for index in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    cpu = cpu_seconds(pid)
    begin = time.monotonic()
    started.set()
    for thread in threads:
        thread.join(seconds + 30)
    elapsed = time.monotonic() - begin
    cpu = cpu_seconds(pid) - cpu
    frames = sum(total[0] for total in totals if total)
    received = sum(total[1] for total in totals if total)
    return frames / elapsed, received / elapsed / 1e6, cpu * 1e6 / max(frames, 1)


def heap_figures(lines, clients):
    """Median bytes allocated per frame cycle and retained after collect, with ``clients`` streaming."""
    before, after = [], []
    for line in lines:
        match = re.search(r"streaming=(\d+) alloc_before_gc=(\d+) alloc_after_gc=(\d+)", line)
        if match and int(match.group(1)) == clients:
            before.append(int(match.group(2)))
            after.append(int(match.group(3)))
    if not before:
        return None, None
    return statistics.median(before), statistics.median(after)


def first_frame(argv, env, cwd, port):
    """Seconds from starting ``argv`` to the first whole frame received on ``port``."""
    began = time.monotonic()
    process = subprocess.Popen(argv, env=env, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        while time.monotonic() - began < START_TIMEOUT:
            try:
                sock = socket.create_connection(("127.0.0.1", port), timeout=START_TIMEOUT)
            except OSError:
                time.sleep(0.005)
                continue
            with sock:
                sock.sendall(b"1235\n1\n")
                header = bytearray(4)
                _fill(sock, memoryview(header))
                _fill(sock, memoryview(bytearray(int.from_bytes(header, "big"))))
                return time.monotonic() - began
        raise RuntimeError("no frame within %g s" % START_TIMEOUT)
    finally:
        process.kill()
        process.wait(10)


def start_times(workdir, folder):
    """Median seconds to the first frame: firmware .py, firmware .mpy, reference server."""
    results = {}
    for name, mpy in (("firmware .py", False), ("firmware .mpy", True)):
        runs = []
        for _ in range(START_RUNS):
            port = free_port()
            config = {"bind": "127.0.0.1", "port": port, "interval_ms": 0, "pin": "1235"}
            device = firmware_simulate.prepare(Path(workdir) / ("start-%s" % mpy), config, mpy=mpy)
            argv, env, cwd = firmware_simulate.command(device, folder)
            runs.append(first_frame(argv, env, cwd, port))
        results[name] = statistics.median(runs)
    runs = []
    for _ in range(START_RUNS):
        port = free_port()
        runs.append(first_frame([sys.executable, "-c", REFERENCE, str(folder), str(port)], None, None, port))
    results["reference"] = statistics.median(runs)
    return results


def build_parser():
    """The benchmark's command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", type=int, default=50_000, help="frame size in bytes (default: %(default)s)")
    parser.add_argument("--seconds", type=float, default=3.0, help="seconds per measurement (default: %(default)s)")
    return parser


def main():
    """Run the benchmark and print the table."""
    args = build_parser().parse_args()
    with tempfile.TemporaryDirectory(prefix="tcpcam-bench-") as workdir:
        folder = Path(workdir) / "frames"
        write_jpegs(folder, 1, args.size)
        results = {}
        reference = subprocess.Popen([sys.executable, "-c", REFERENCE, str(folder), "0"], stdout=subprocess.PIPE,
                                     text=True)
        try:
            reference_port = int(reference.stdout.readline())
            for clients in CLIENTS:
                results["reference", clients] = measure(reference_port, reference.pid, clients, args.seconds)
        finally:
            reference.kill()
            reference.wait(10)
        heap = {}
        for clients in CLIENTS:
            config = {"interval_ms": 0, "stats_every": 10, "max_clients": 8, "pending_per_address": 8}
            with Firmware(Path(workdir) / ("fw%d" % clients), config, frames_dir=folder) as firmware:
                results["firmware", clients] = measure(firmware.port, firmware.process.pid, clients, args.seconds)
                time.sleep(0.2)
                heap[clients] = heap_figures(firmware.drain(), clients)
        starts = start_times(workdir, folder)
    print("frames of %d bytes, %.1f s per measurement, loopback" % (args.size, args.seconds))
    print("%-8s %-34s %-34s %s" % ("clients", "firmware (frames/s MB/s us/frame/client)",
                                   "reference (frames/s MB/s us/frame/client)", "ratio (MB/s, CPU)"))
    for clients in CLIENTS:
        fw, ref = results["firmware", clients], results["reference", clients]
        print("%-8d %8.1f %8.1f %10.1f          %8.1f %8.1f %10.1f          %.2f  %.1f" % (
            clients, fw[0], fw[1], fw[2], ref[0], ref[1], ref[2], fw[1] / ref[1], fw[2] / ref[2]))
    print("MicroPython heap (median over stats lines):")
    for clients in CLIENTS:
        before, after = heap[clients]
        if before is None:
            print("  %d client(s): no stats lines" % clients)
        else:
            print("  %d client(s): %d bytes of garbage per frame cycle (%.2f frames), %d bytes live after gc.collect()"
                  % (clients, before - after, (before - after) / args.size, after))
    if heap[1][0] is not None and heap[8][0] is not None:
        garbage = ((heap[8][0] - heap[8][1]) - (heap[1][0] - heap[1][1])) / 7
        print("  per extra client: %+.0f bytes of garbage per frame cycle, %+.0f bytes live (frame: %d bytes)"
              % (garbage, (heap[8][1] - heap[1][1]) / 7, args.size))
    print("start to first frame (median of %d): %s" % (START_RUNS, ", ".join(
        "%s %.0f ms" % (name, seconds * 1000) for name, seconds in starts.items())))
    print("  ratio firmware .mpy / reference: %.2f" % (starts["firmware .mpy"] / starts["reference"]))


if __name__ == "__main__":
    main()
