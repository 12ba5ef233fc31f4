"""Firmware cost under the unix MicroPython, against the reference server, same run.

Serves 50 KB frames (``--size``) as fast as possible (interval 0) to 1, 4
and 8 raw-socket clients that read an endless stream for ``--seconds``
each, once with legacy requests and once with protocol 2 sessions (the
handshake through the core's client role, the key in both servers'
configuration), and reports for

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

Run: ``python bench/bench_firmware.py`` (about 70 s; loopback only; Linux, for ``/proc``).
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
sys.path.insert(0, str(Path(__file__).resolve().parent))

from bench_protocol2 import KEY, p2_handshake  # noqa: E402
from firmware_support import Firmware, free_port, write_jpegs  # noqa: E402

from tcpcam.board import simulate as firmware_simulate  # noqa: E402
from tcpcam.core.client_role2 import Client2Role  # noqa: E402
from tcpcam.core.framing import FrameDecoder  # noqa: E402
from tcpcam.core.mac import key_text  # noqa: E402
from tcpcam.core.messages import FRAME  # noqa: E402

#: The reference server process stops by itself after this many seconds.
SERVER_LIFETIME = 100
#: Client counts measured.
CLIENTS = (1, 4, 8)
#: Protocols measured: 1 is the legacy request, 2 a protocol 2 session.
PROTOCOLS = (1, 2)
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
factory = TCPCamServerFactory(sourceFromSpec("dir:" + sys.argv[1]), pin="1235", interval=0.0, maxClients=16,
                              key=bytes.fromhex(sys.argv[3]))
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


def read_stream(port, seconds, totals, index, started, protocol=1):
    """One client: ask for an endless stream, count whole frames and payload bytes for ``seconds``.

    Each client comes from its own loopback address, as the servers let one
    address have only a few connections still in their handshake.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=10, source_address=("127.0.1.%d" % (index + 1), 0))
    frames = received = 0
    try:
        if protocol == 1:
            sock.sendall(b"1235\n0\n")
        else:
            p2_handshake(sock, None, Client2Role(KEY, os.urandom))
        decoder = FrameDecoder(max_frame_bytes=1 << 22)
        started.wait(10)
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            data = sock.recv(1 << 20)
            if not data:
                raise ConnectionError("server closed the stream")
            decoder.receive_data(data)
            while True:
                message = decoder.next_frame()
                if message is None:
                    break
                if protocol == 1:
                    frames += 1
                    received += len(message)
                elif message[0] == FRAME:
                    frames += 1
                    received += len(message) - 1
    finally:
        sock.close()
    totals[index] = (frames, received)


def _fill(sock, view):
    while len(view):
        count = sock.recv_into(view)
        if not count:
            raise ConnectionError("server closed the stream")
        view = view[count:]


def measure(port, pid, clients, seconds, protocol=1):
    """(frames/s, MB/s, CPU microseconds per frame per client) summed over ``clients`` concurrent streams."""
    totals = [None] * clients
    started = threading.Event()
    threads = [threading.Thread(target=read_stream, args=(port, seconds, totals, index, started, protocol))
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
        runs.append(first_frame([sys.executable, "-c", REFERENCE, str(folder), str(port), KEY.hex()], None, None, port))
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
        reference = subprocess.Popen([sys.executable, "-c", REFERENCE, str(folder), "0", KEY.hex()],
                                     stdout=subprocess.PIPE, text=True)
        try:
            reference_port = int(reference.stdout.readline())
            for protocol in PROTOCOLS:
                for clients in CLIENTS:
                    results["reference", protocol, clients] = measure(reference_port, reference.pid, clients,
                                                                      args.seconds, protocol)
        finally:
            reference.kill()
            reference.wait(10)
        heap = {}
        for protocol in PROTOCOLS:
            for clients in CLIENTS:
                config = {"interval_ms": 0, "stats_every": 10, "max_clients": 8, "pending_per_address": 8,
                          "key": key_text(KEY)}
                device = Path(workdir) / ("fw%d-%d" % (protocol, clients))
                with Firmware(device, config, frames_dir=folder) as firmware:
                    results["firmware", protocol, clients] = measure(firmware.port, firmware.process.pid, clients,
                                                                     args.seconds, protocol)
                    time.sleep(0.2)
                    heap[protocol, clients] = heap_figures(firmware.drain(), clients)
        starts = start_times(workdir, folder)
    print("frames of %d bytes, %.1f s per measurement, loopback" % (args.size, args.seconds))
    for protocol in PROTOCOLS:
        print("%s:" % ("legacy requests" if protocol == 1 else "protocol 2 sessions"))
        print("%-8s %-34s %-34s %s" % ("clients", "firmware (frames/s MB/s us/frame/client)",
                                       "reference (frames/s MB/s us/frame/client)", "ratio (MB/s, CPU)"))
        for clients in CLIENTS:
            fw, ref = results["firmware", protocol, clients], results["reference", protocol, clients]
            print("%-8d %8.1f %8.1f %10.1f          %8.1f %8.1f %10.1f          %.2f  %.1f" % (
                clients, fw[0], fw[1], fw[2], ref[0], ref[1], ref[2], fw[1] / ref[1], fw[2] / ref[2]))
    print("firmware CPU per frame, protocol 2 / legacy: %s" % ", ".join(
        "%d client(s) %.2f" % (clients, results["firmware", 2, clients][2] / results["firmware", 1, clients][2])
        for clients in CLIENTS))
    for protocol in PROTOCOLS:
        print("MicroPython heap, %s (median over stats lines):" % ("legacy" if protocol == 1 else "protocol 2"))
        for clients in CLIENTS:
            before, after = heap[protocol, clients]
            if before is None:
                print("  %d client(s): no stats lines" % clients)
            else:
                print("  %d client(s): %d bytes of garbage per frame cycle (%.2f frames), %d bytes live after "
                      "gc.collect()" % (clients, before - after, (before - after) / args.size, after))
        one, eight = heap[protocol, 1], heap[protocol, 8]
        if one[0] is not None and eight[0] is not None:
            garbage = ((eight[0] - eight[1]) - (one[0] - one[1])) / 7
            print("  per extra client: %+.0f bytes of garbage per frame cycle, %+.0f bytes live (frame: %d bytes)"
                  % (garbage, (eight[1] - one[1]) / 7, args.size))
    if all(heap[protocol, clients][1] is not None for protocol in PROTOCOLS for clients in CLIENTS):
        print("live heap of a protocol 2 session over a legacy one, after its handshake: %s" % ", ".join(
            "%+.0f bytes a client with %d" % ((heap[2, clients][1] - heap[1, clients][1]) / clients, clients)
            for clients in CLIENTS))
    print("start to first frame (median of %d): %s" % (START_RUNS, ", ".join(
        "%s %.0f ms" % (name, seconds * 1000) for name, seconds in starts.items())))
    print("  ratio firmware .mpy / reference: %.2f" % (starts["firmware .mpy"] / starts["reference"]))


if __name__ == "__main__":
    main()
