"""Firmware throughput under the unix MicroPython, against the reference server, same run.

Serves 50 KB frames (``--size``) as fast as possible (interval 0) to 1 and 4
raw-socket clients that read an endless stream for ``--seconds`` each, and
reports total frames/s and MB/s for

- the firmware (the device bundle under ``micropython``, stand-in camera
  reading the frame from a file, as the real driver hands a new buffer per
  capture), and
- the reference server (:class:`tcpcam.server.TCPCamServerFactory`, CPython
  and Twisted, ``dir:`` source on the same file),

with the ratio firmware / reference. From the firmware's ``stats:`` console
lines it also reports the MicroPython heap: bytes allocated between two
``gc.collect()`` calls (one frame cycle) and still allocated after collect,
for 1 and 4 clients, and the growth per extra client. A per-client copy of
the frame would add about one frame size per client.

Run: ``python bench/bench_firmware.py`` (about 20 s; loopback only).
"""

import argparse
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

from firmware_support import Firmware, write_jpegs  # noqa: E402

#: The reference server process stops by itself after this many seconds.
SERVER_LIFETIME = 100

REFERENCE = """
import sys
from twisted.internet import reactor
from twisted.internet.endpoints import serverFromString
from tcpcam.server import TCPCamServerFactory
from tcpcam.server.sources import sourceFromSpec
factory = TCPCamServerFactory(sourceFromSpec("dir:" + sys.argv[1]), pin="1235", interval=0.0)
listening = serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
listening.addCallback(lambda port: print(port.getHost().port, flush=True))
reactor.callLater(%d, reactor.stop)
reactor.run()
""" % SERVER_LIFETIME


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


def measure(port, clients, seconds):
    """(frames/s, MB/s) summed over ``clients`` concurrent streams."""
    totals = [None] * clients
    started = threading.Event()
    threads = [threading.Thread(target=read_stream, args=(port, seconds, totals, index, started))
               for index in range(clients)]
    for thread in threads:
        thread.start()
    time.sleep(0.3)
    begin = time.monotonic()
    started.set()
    for thread in threads:
        thread.join(seconds + 30)
    elapsed = time.monotonic() - begin
    frames = sum(total[0] for total in totals if total)
    received = sum(total[1] for total in totals if total)
    return frames / elapsed, received / elapsed / 1e6


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
        reference = subprocess.Popen([sys.executable, "-c", REFERENCE, str(folder)], stdout=subprocess.PIPE, text=True)
        try:
            reference_port = int(reference.stdout.readline())
            for clients in (1, 4):
                results["reference", clients] = measure(reference_port, clients, args.seconds)
        finally:
            reference.kill()
            reference.wait(10)
        heap = {}
        for clients in (1, 4):
            config = {"interval_ms": 0, "stats_every": 10, "max_clients": 8}
            with Firmware(Path(workdir) / ("fw%d" % clients), config, frames_dir=folder) as firmware:
                results["firmware", clients] = measure(firmware.port, clients, args.seconds)
                time.sleep(0.2)
                heap[clients] = heap_figures(firmware.drain(), clients)
    print("frames of %d bytes, %.1f s per measurement, loopback" % (args.size, args.seconds))
    print("%-8s %-22s %-22s %s" % ("clients", "firmware (frames/s MB/s)", "reference (frames/s MB/s)", "ratio"))
    for clients in (1, 4):
        fw, ref = results["firmware", clients], results["reference", clients]
        print("%-8d %8.1f %8.1f      %8.1f %8.1f       %.2f" % (clients, fw[0], fw[1], ref[0], ref[1], fw[1] / ref[1]))
    print("MicroPython heap (median over stats lines):")
    for clients in (1, 4):
        before, after = heap[clients]
        if before is None:
            print("  %d client(s): no stats lines" % clients)
        else:
            print("  %d client(s): %d bytes of garbage per frame cycle, %d bytes live after gc.collect()"
                  % (clients, before - after, after))
    if heap[1][0] is not None and heap[4][0] is not None:
        garbage = ((heap[4][0] - heap[4][1]) - (heap[1][0] - heap[1][1])) / 3
        print("  per extra client: %+.0f bytes of garbage per frame cycle, %+.0f bytes live (frame: %d bytes)"
              % (garbage, (heap[4][1] - heap[1][1]) / 3, args.size))


if __name__ == "__main__":
    main()
