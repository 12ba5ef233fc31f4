"""Client throughput: tcpcam.client against a minimal recv_into reader.

A server in a separate process (plain blocking sockets) answers every
request by sending the frames asked for as fast as it can: ``sendall`` of a
prebuilt buffer of frames, in a loop. For 50 KB and 250 KB frames this
measures frames/s and MB/s of

- the baseline: a blocking socket that reads each header and payload with
  ``recv_into`` into buffers allocated once, and
- tcpcam: :func:`tcpcam.client.fetch` on the real reactor,

and prints the ratio tcpcam / baseline (median of ``--runs`` runs each,
alternating the two readers), and the reader's CPU seconds per GB, which
varies less than throughput when other processes share the machine.
Run: ``python bench/bench_client.py`` (about 20 s; loopback only).
"""

import argparse
import socket
import subprocess
import sys
import time

from tcpcam.framing import encode_frame

#: Frame sizes measured by default, in bytes.
SIZES = (50_000, 250_000)
#: Payload bytes moved per measurement by default.
VOLUME = 1_000_000_000
#: A server process gives up after this many seconds.
SERVER_LIFETIME = 120
#: Size of the prebuilt send buffer, in bytes (whole frames, at least one).
SEND_BUFFER = 4 * 1024 * 1024


def serve(size):
    """Server process: print the port, then answer requests until the lifetime ends."""
    frame = encode_frame(bytes(range(256)) * (size // 256) + b"\xff" * (size % 256))
    per_buffer = max(1, SEND_BUFFER // len(frame))
    buffer = frame * per_buffer
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(SERVER_LIFETIME)
    print(listener.getsockname()[1], flush=True)
    deadline = time.monotonic() + SERVER_LIFETIME
    while time.monotonic() < deadline:
        try:
            conn, _ = listener.accept()
        except TimeoutError:
            return
        with conn:
            conn.settimeout(30)
            request = b""
            while request.count(b"\n") < 2 and len(request) < 300:
                data = conn.recv(300)
                if not data:
                    break
                request += data
            try:
                wanted = int(request.split(b"\n")[1])
            except (IndexError, ValueError):
                continue
            view = memoryview(buffer)
            try:
                for _ in range(wanted // per_buffer):
                    conn.sendall(view)
                conn.sendall(view[: (wanted % per_buffer) * len(frame)])
            except OSError:
                continue


def baseline(port, count):
    """Read ``count`` frames with recv_into; returns (frames, payload bytes)."""
    sock = socket.create_connection(("127.0.0.1", port))
    sock.sendall(b"1235\n%d\n" % count)
    header = bytearray(4)
    header_view = memoryview(header)
    payload = bytearray(1024)
    total = 0
    try:
        for _ in range(count):
            fill = 0
            while fill < 4:
                got = sock.recv_into(header_view[fill:])
                if not got:
                    raise EOFError("server closed early")
                fill += got
            length = int.from_bytes(header, "big")
            if length > len(payload):
                payload = bytearray(length)
            view = memoryview(payload)[:length]
            fill = 0
            while fill < length:
                got = sock.recv_into(view[fill:])
                if not got:
                    raise EOFError("server closed early")
                fill += got
            total += length
    finally:
        sock.close()
    return count, total


def timed_baseline(port, count):
    """Seconds and result of one baseline read of ``count`` frames."""
    start = time.perf_counter()
    cpu = time.process_time()
    result = baseline(port, count)
    return result, time.perf_counter() - start, time.process_time() - cpu


def timed_tcpcam(reactor, port, count):
    """Deferred: result and seconds of one tcpcam.client.fetch of ``count`` frames."""
    from tcpcam.client import fetch

    start = time.perf_counter()
    cpu = time.process_time()
    fetching = fetch(reactor, "tcp:host=127.0.0.1:port=%d" % port, "1235", count, lambda view: None, pauseSeconds=0)
    return fetching.addCallback(
        lambda summary: (tuple(summary), time.perf_counter() - start, time.process_time() - cpu)
    )


def report(name, result, seconds, cpu):
    """One line: frames/s, MB/s and the reader's CPU seconds per GB."""
    frames, total = result
    print(
        "  %-9s %8.0f frames/s %8.1f MB/s %6.2f CPU s/GB  (%d frames in %.2f s)"
        % (name, frames / seconds, total / seconds / 1e6, cpu / total * 1e9, frames, seconds)
    )


def main(argv=None):
    """Run the benchmark; returns 0 if every ratio reaches the goal of 0.8."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", type=int, metavar="SIZE", help=argparse.SUPPRESS)
    parser.add_argument("--volume", type=int, default=VOLUME, help="payload bytes per measurement")
    parser.add_argument("--runs", type=int, default=9, help="runs per measurement (the median counts)")
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="frame sizes in bytes")
    parser.add_argument("--read-size", type=int, help="override TCPCamClientProtocol.readSize")
    args = parser.parse_args(argv)
    if args.serve:
        serve(args.serve)
        return 0
    if args.read_size:
        from tcpcam.client import TCPCamClientProtocol

        TCPCamClientProtocol.readSize = args.read_size

    from twisted.internet import reactor

    servers = {}
    try:
        for size in args.sizes:
            server = subprocess.Popen(
                [sys.executable, __file__, "--serve", str(size)], stdout=subprocess.PIPE, text=True
            )
            servers[size] = (server, int(server.stdout.readline()))
        from twisted.internet import defer

        timings = {size: {"baseline": [], "tcpcam": []} for size in args.sizes}

        @defer.inlineCallbacks
        def measure():
            # Alternate the readers so that drift in the machine's load hits both.
            for _ in range(args.runs):
                for size in args.sizes:
                    port = servers[size][1]
                    count = max(1, args.volume // size)
                    timings[size]["baseline"].append(timed_baseline(port, count))
                    timings[size]["tcpcam"].append((yield timed_tcpcam(reactor, port, count)))

        def stop(outcome):
            reactor.stop()
            return outcome

        reactor.callWhenRunning(lambda: measure().addBoth(stop))
        reactor.run()
    finally:
        for server, _port in servers.values():
            server.kill()
            server.wait(10)

    worst = None
    print("Client throughput, loopback, median of %d runs of %d MB each" % (args.runs, args.volume // 10**6))
    for size in args.sizes:
        print("%d-byte frames:" % size)
        medians = {}
        for name in ("baseline", "tcpcam"):
            runs = timings[size][name]
            if len(runs) < args.runs:
                print("  %s did not finish" % name)
                return 1
            seconds = sorted(run[1] for run in runs)[len(runs) // 2]
            cpu = sorted(run[2] for run in runs)[len(runs) // 2]
            medians[name] = (seconds, cpu)
            report(name, runs[0][0], seconds, cpu)
        ratio = medians["baseline"][0] / medians["tcpcam"][0]
        worst = ratio if worst is None or ratio < worst else worst
        print(
            "  ratio     %.2f throughput, %.2f CPU per byte (tcpcam / baseline)"
            % (ratio, medians["tcpcam"][1] / medians["baseline"][1])
        )
    return 0 if worst is not None and worst >= 0.8 else 1

if __name__ == "__main__":
    sys.exit(main())
