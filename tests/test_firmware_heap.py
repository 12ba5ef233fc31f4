"""The heap budget under the real unix MicroPython: 8 clients of VGA-sized frames in a limited heap.

The heap is limited the way a board limits it (``micropython -X
heapsize=``); the figure is the 8-client minimum that ``bench/bench_heap.py``
found, with a third more for a loaded CI machine. The heap must stay flat:
the floor of the live heap after ``gc.collect()`` (the firmware's
``stats:`` lines; the floor is when no client still holds an older frame)
must not creep up over the run.
"""

import re
import threading

from firmware_support import WAIT, Firmware, connect, needs_micropython, write_jpegs

from tcpcam.core.framing import FrameDecoder

pytestmark = needs_micropython

#: A VGA JPEG at quality 85 is about this big.
VGA_FRAME = 50_000
#: bench/bench_heap.py's smallest heap for 8 clients of 50 KB frames (.mpy bundle: 580 KiB), plus a third.
HEAP = "800k"
#: Frames each client takes in the run (a few seconds: thousands of frames from the camera).
FRAMES_PER_CLIENT = 600
#: Stats lines every this many frames.
STATS_EVERY = 10
#: Bytes the floor of the live heap may differ by between the first and the last third of the run.
FLAT = 4096
#: Words that mean the heap ran out.
FAILURE_WORDS = ("MemoryError", "no memory", "Traceback")


def stream(sock, frames, counts, index, errors):
    try:
        with sock:
            decoder = FrameDecoder()
            while counts[index] < frames:
                data = sock.recv(65536)
                if not data:
                    errors.append("client %d: closed after %d frames" % (index, counts[index]))
                    return
                counts[index] += len(decoder.feed(data))
    except OSError as error:
        errors.append("client %d: %s" % (index, error))


def test_eight_vga_clients_in_a_limited_heap_keep_a_flat_heap(tmp_path):
    write_jpegs(tmp_path / "frames", 3, VGA_FRAME)
    config = {"interval_ms": 0, "stats_every": STATS_EVERY, "max_clients": 8, "pending_per_address": 8}
    with Firmware(tmp_path / "fw", config, frames_dir=tmp_path / "frames", heapsize=HEAP, mpy=True) as firmware:
        assert "1 frame buffer in DRAM" in firmware.wait_for("camera: started")
        counts, errors = [0] * 8, []
        sockets = [connect(firmware.port) for _ in range(8)]
        for sock in sockets:
            sock.sendall(b"1235\n0\n")
        firmware.console.wait_count("streams without end", 8)
        threads = [threading.Thread(target=stream, args=(sock, FRAMES_PER_CLIENT, counts, index, errors))
                   for index, sock in enumerate(sockets)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(6 * WAIT)
        assert not any(thread.is_alive() for thread in threads), counts
        lines = firmware.drain()
        assert firmware.process.poll() is None, "\n".join(lines[-20:])
    assert errors == []
    assert min(counts) >= FRAMES_PER_CLIENT
    assert not [line for line in lines if any(word in line for word in FAILURE_WORDS)]
    live = [int(match.group(1)) for match in (re.search(r"streaming=8 alloc_before_gc=\d+ alloc_after_gc=(\d+)", line)
                                              for line in lines) if match]
    assert len(live) >= 12, lines[-20:]
    third = len(live) // 3
    first, last = min(live[:third]), min(live[-third:])
    print("live heap after gc.collect(), first and last floor:", first, last, "peak:", max(live))
    assert abs(last - first) <= FLAT, live
