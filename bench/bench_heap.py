"""The firmware's heap budget under the unix MicroPython: the smallest ``-X heapsize`` that serves.

For each case (frame size, clients) the firmware runs with the heap
limited the way a board limits it (``micropython -X heapsize=N``,
lemariva's stand-in driver, which copies each frame into the Python heap
as the real one does), ``clients`` raw-socket clients each take
``--frames`` frames as fast as the firmware sends them (interval 0), and a
trial passes when every client got all its frames and the console shows no
``MemoryError``, no "no memory" line and no traceback. The smallest passing
heap is found by bisection to ``--step`` bytes, after checking that
``--high`` passes.

It also reports what the heap holds: the firmware's code and objects
before any frame (``alloc`` after ``gc.collect()`` with no client), and the
live heap after ``gc.collect()`` with the clients streaming (the
``stats:`` lines), for the linear fit ``heap = base + per_client *
clients + copies * frame`` that the board estimate in docs/firmware.md
uses.

The .mpy bundle is measured unless ``--py`` is given: importing ``.py``
modules compiles them on the board, and the compiler's transient memory
decides the smallest heap then.

Run: ``python bench/bench_heap.py`` (about fifteen minutes; loopback only).
"""

import argparse
import re
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "tests"))

from firmware_support import Firmware, connect, read_frames, run_micropython, write_jpegs  # noqa: E402

from tcpcam.board import simulate as firmware_simulate  # noqa: E402

#: Console words that mean the heap was too small.
FAILURE_WORDS = ("MemoryError", "no memory", "Traceback")
#: Seconds one trial may take.
TRIAL_TIMEOUT = 60.0

BASELINE = """
import gc
gc.collect()
start = gc.mem_alloc()
import tcpcam_fw.app
gc.collect()
modules = gc.mem_alloc()
import camera
import machine
gc.collect()
print(modules - start, gc.mem_alloc() - modules)
"""


def trial(workdir, frame_dir, heap, clients, frames, mpy):
    """True when the firmware with ``heap`` bytes served ``frames`` frames to each of ``clients``."""
    config = {"interval_ms": 0, "stats_every": 10, "max_clients": max(clients, 1), "watchdog_ms": 0,
              "pending_per_address": max(clients, 1)}
    firmware = Firmware(workdir, config, frames_dir=frame_dir, heapsize=str(heap), mpy=mpy)
    got = [None] * clients
    try:
        firmware.start()
    except AssertionError:
        firmware.stop()
        return False, []

    def take(index, sock):
        try:
            with sock:
                got[index] = len(read_frames(sock, frames + 1))
        except OSError:
            got[index] = -1

    sockets = []
    try:
        for _ in range(clients):
            sockets.append(connect(firmware.port))
            sockets[-1].sendall(b"1235\n%d\n" % frames)
        firmware.console.wait_count("streams %d frames" % frames, clients)
    except (OSError, AssertionError):
        for sock in sockets:
            sock.close()
        firmware.stop()
        return False, firmware.lines
    threads = [threading.Thread(target=take, args=(index, sock)) for index, sock in enumerate(sockets)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(TRIAL_TIMEOUT)
    time.sleep(0.2)
    lines = firmware.drain()
    alive = firmware.process.poll() is None
    firmware.stop()
    failed = any(word in line for line in lines for word in FAILURE_WORDS)
    return alive and not failed and got == [frames] * clients, lines


def live_after_gc(lines, clients):
    """Median and maximum ``alloc_after_gc`` of the stats lines with ``clients`` streaming."""
    values = [int(match.group(2)) for match in (
        re.search(r"streaming=(\d+) alloc_before_gc=\d+ alloc_after_gc=(\d+)", line) for line in lines)
        if match and int(match.group(1)) == clients]
    if not values:
        return None, None
    return statistics.median(values), max(values)


def trials(workdir, frame_dir, heap, clients, frames, mpy, repeat):
    """True when ``repeat`` trials in a row pass (the lines of the last one)."""
    lines = []
    for _ in range(repeat):
        passed, lines = trial(workdir, frame_dir, heap, clients, frames, mpy)
        if not passed:
            return False, lines
    return True, lines


def smallest_heap(workdir, frame_dir, clients, frames, low, high, step, mpy, repeat):
    """Bisect the smallest passing heap in ``(low, high]``; None when ``high`` fails."""
    passed, lines = trials(workdir, frame_dir, high, clients, frames, mpy, repeat)
    if not passed:
        return None, []
    best_lines = lines
    while high - low > step:
        middle = (low + high) // 2 // step * step
        if middle <= low:
            break
        passed, lines = trials(workdir, frame_dir, middle, clients, frames, mpy, repeat)
        if passed:
            high, best_lines = middle, lines
        else:
            low = middle
    return high, best_lines


def largest_frame(workdir, heap, clients, frames, mpy, repeat, step=1000, high=100_000):
    """Bisect the largest frame size that passes at heap ``heap`` with ``clients``; None when ``step`` fails."""
    def passes(size):
        frame_dir = Path(workdir) / ("largest%d" % size)
        write_jpegs(frame_dir, 2, size)
        return trials(Path(workdir) / ("fw-largest-%d" % size), frame_dir, heap, clients, frames, mpy, repeat)[0]

    low = step
    if not passes(low):
        return None
    while high - low > step:
        middle = (low + high) // 2 // step * step
        if middle <= low:
            break
        if passes(middle):
            low = middle
        else:
            high = middle
    return low


def baseline(workdir, mpy):
    """``(firmware modules, stand-ins)``: bytes each holds after ``gc.collect()``, before any frame.

    The stand-ins (the camera driver and ``machine``) are C on a board and
    cost its heap nothing: subtract them for a board.
    """
    device = firmware_simulate.prepare(workdir, {"source": "hello"}, mpy=mpy)
    result = run_micropython(BASELINE, device)
    modules, stand_ins = result.stdout.split()[-2:]
    return int(modules), int(stand_ins)


def build_parser():
    """The benchmark's command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--frames", type=int, default=200, help="frames per client per trial (default: %(default)s)")
    parser.add_argument("--step", type=int, default=4096, help="bisection resolution in bytes (default: %(default)s)")
    parser.add_argument("--high", type=int, default=2 * 1024 * 1024, help="largest heap tried (default: %(default)s)")
    parser.add_argument("--cases", default="50000x1,50000x4,50000x8,10000x1,20000x1,30000x1",
                        help="FRAMExCLIENTS cases (default: %(default)s)")
    parser.add_argument("--py", action="store_true", help="run the .py bundle (default: the .mpy bundle, as deployed"
                                                          " with --mpy: no compiler in the heap at import)")
    parser.add_argument("--repeat", type=int, default=3, help="trials in a row a heap must pass (default: %(default)s)")
    parser.add_argument("--board-heap", default="110wk",
                        help="heap of a board without PSRAM, for the largest frame that fits (default: %(default)s:"
                             " 110 KiB of 32-bit words, which lets every object but the frame's bytes count at its"
                             " 32-bit size, so the frame found is an upper bound for a board)")
    return parser


def main():
    """Run every case and print the table."""
    args = build_parser().parse_args()
    mpy = not args.py
    cases = [tuple(int(part) for part in case.split("x")) for case in args.cases.split(",")]
    version = subprocess.run([firmware_simulate.find_micropython(), "--version"], capture_output=True, text=True,
                             timeout=30, check=False).stdout.strip()
    with tempfile.TemporaryDirectory(prefix="tcpcam-heap-") as workdir:
        base, stand_ins = baseline(Path(workdir) / "base", mpy)
        print("%s; %s bundle; after gc.collect(): firmware modules %d bytes, stand-in camera and machine %d"
              " bytes (C on a board: not in its heap)" % (version, ".mpy" if mpy else ".py", base, stand_ins))
        print("%-8s %-8s %-14s %-22s %s" % ("frame", "clients", "smallest heap", "live after gc (median)",
                                            "live after gc (max)"))
        rows = []
        for size, clients in cases:
            frame_dir = Path(workdir) / ("frames%d" % size)
            write_jpegs(frame_dir, 2, size)
            heap, lines = smallest_heap(Path(workdir) / ("fw%dx%d" % (size, clients)), frame_dir, clients,
                                        args.frames, 32 * 1024, args.high, args.step, mpy, args.repeat)
            median, peak = live_after_gc(lines, clients)
            rows.append((size, clients, heap))
            print("%-8d %-8d %-14s %-22s %s" % (size, clients, heap if heap else "> %d" % args.high,
                                                median if median else "-", peak if peak else "-"))
        ones = [(size, heap) for size, clients, heap in rows if clients == 1 and heap]
        if len(ones) >= 2:
            sizes = [size for size, _ in ones]
            heaps = [heap for _, heap in ones]
            mean_size, mean_heap = statistics.mean(sizes), statistics.mean(heaps)
            slope = (sum((s - mean_size) * (h - mean_heap) for s, h in ones)
                     / sum((s - mean_size) ** 2 for s in sizes))
            print("1 client: smallest heap = %.0f + %.2f x frame bytes (least squares over %d sizes)"
                  % (mean_heap - slope * mean_size, slope, len(ones)))
        for clients in (1, 8):
            size = largest_frame(Path(workdir) / "largest", args.board_heap, clients, args.frames, mpy, args.repeat)
            print("heap %s, %d client(s): largest frame that passes: %s bytes"
                  % (args.board_heap, clients, size if size else "none (not even 1000)"))
        big = [(clients, heap) for size, clients, heap in rows if size == 50000 and heap]
        if len(big) >= 2:
            (c0, h0), (c1, h1) = big[0], big[-1]
            print("50 KB frames: %+.0f bytes of heap per extra client (%d to %d clients)"
                  % ((h1 - h0) / (c1 - c0), c0, c1))


if __name__ == "__main__":
    main()
