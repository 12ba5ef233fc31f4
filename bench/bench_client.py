"""Client throughput: tcpcam.client against a minimal recv_into reader.

A server in a separate process (plain blocking sockets) answers every
request by sending the frames asked for as fast as it can: ``sendall`` of a
prebuilt buffer of frames, in a loop. For 50 KB and 250 KB frames this
measures frames/s and MB/s of

- the baseline: a blocking socket that reads each header and payload with
  ``recv_into`` into buffers allocated once, and
- tcpcam: :func:`tcpcam.client.fetch` on the real reactor,

and prints the ratio tcpcam / baseline (median of ``--runs`` runs each,
alternating the two readers), the reader's CPU seconds per GB, which
varies less than throughput when other processes share the machine, and the
reader's minor page faults per MB: a receive path that allocates a fresh
large object per read (glibc hands big blocks back to the OS when they are
freed) faults its memory in again every time, about 256 faults per MB.
Run: ``python bench/bench_client.py`` (about 20 s; loopback only).
"""

import argparse
import resource
import socket
import subprocess
import sys
import time

from tcpcam.core.framing import encode_frame

#: Frame sizes measured by default, in bytes.
SIZES = (50_000, 250_000)
#: Payload bytes moved per measurement by default.
VOLUME = 1_000_000_000
#: A server process gives up after this many seconds.
SERVER_LIFETIME = 120
#: Size of the prebuilt send buffer, in bytes (whole frames, at least one).
SEND_BUFFER = 4 * 1024 * 1024
#: Seconds the server pauses after each chunk with ``--chunk``.
CHUNK_PAUSE = 0.0001
#: Longest wait for the connection or the next bytes, in seconds.
WAIT = 30
#: The whole measurement stops after this many seconds.
DEADLINE = 110


def serve(size, chunk=0):
    """Server process: print the port, then answer requests until the lifetime ends.

    ``chunk`` > 0 sends that many bytes per ``send`` with TCP_NODELAY and a
    pause of :data:`CHUNK_PAUSE` after each.
    """
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
            conn.settimeout(WAIT)
            if chunk:
                conn.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
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
                    send(conn, view, chunk)
                send(conn, view[: (wanted % per_buffer) * len(frame)], chunk)
            except OSError:
                continue


def send(conn, view, chunk):
    """Send all of ``view``, ``chunk`` bytes per call and paced if ``chunk`` > 0."""
    if not chunk:
        conn.sendall(view)
        return
    for start in range(0, len(view), chunk):
        conn.sendall(view[start:start + chunk])
        time.sleep(CHUNK_PAUSE)


def baseline(port, count):
    """Read ``count`` frames with recv_into; returns (frames, payload bytes)."""
    sock = socket.create_connection(("127.0.0.1", port), timeout=WAIT)
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


def _faults():
    return resource.getrusage(resource.RUSAGE_SELF).ru_minflt


def timed_baseline(port, count):
    """Result, seconds, CPU seconds and page faults of one baseline read of ``count`` frames."""
    start = time.perf_counter()
    cpu = time.process_time()
    faults = _faults()
    result = baseline(port, count)
    return result, time.perf_counter() - start, time.process_time() - cpu, _faults() - faults


def timed_tcpcam(reactor, port, count, readSize=0):
    """Deferred: as :func:`timed_baseline`, for one tcpcam.client.fetch of ``count`` frames.

    ``readSize`` > 0 fixes every read of this fetch at that size; 0 keeps the
    client's own (adaptive) read size.
    """
    from tcpcam.client import TCPCamClientProtocol, fetch

    saved = TCPCamClientProtocol.readSize, TCPCamClientProtocol.maxReadSize
    if readSize:
        TCPCamClientProtocol.readSize = TCPCamClientProtocol.maxReadSize = readSize

    def done(summary):
        TCPCamClientProtocol.readSize, TCPCamClientProtocol.maxReadSize = saved
        return tuple(summary), time.perf_counter() - start, time.process_time() - cpu, _faults() - faults

    start = time.perf_counter()
    cpu = time.process_time()
    faults = _faults()
    fetching = fetch(
        reactor, "tcp:host=127.0.0.1:port=%d" % port, "1235", count, lambda view: None, pauseSeconds=0,
        frameTimeout=WAIT,
    )
    return fetching.addCallback(done)


def _median(values):
    return sorted(values)[len(values) // 2]


def report(name, result, seconds, cpu, faults):
    """One line: frames/s, MB/s, the reader's CPU seconds per GB and page faults per MB."""
    frames, total = result
    print(
        "  %-15s %8.0f frames/s %8.1f MB/s %6.2f CPU s/GB %7.1f faults/MB  (%d frames in %.2f s)"
        % (name, frames / seconds, total / seconds / 1e6, cpu / total * 1e9, faults / total * 1e6, frames, seconds)
    )


def build_parser():
    """The benchmark's command-line options."""
    from tcpcam.client import TCPCamClientProtocol

    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--serve", type=int, metavar="SIZE", help=argparse.SUPPRESS)
    parser.add_argument("--volume", type=int, default=VOLUME, help="payload bytes per measurement")
    parser.add_argument("--runs", type=int, default=9, help="runs per measurement (the median counts)")
    parser.add_argument("--sizes", type=int, nargs="+", default=SIZES, help="frame sizes in bytes")
    parser.add_argument(
        "--read-size",
        type=int,
        nargs="+",
        default=[0],
        help="client read sizes to measure, alternating in the same run: N bytes fixed, or 0 for the"
        " client's adaptive default (%d up to %d)" % (TCPCamClientProtocol.readSize, TCPCamClientProtocol.maxReadSize),
    )
    parser.add_argument(
        "--chunk",
        type=int,
        default=0,
        help="the server sends N bytes per send and pauses %g s after each, so that the reader is faster"
        " than the sender and its reads come back short, as from a real network (then compare CPU per GB,"
        " not throughput); 0: the server sends as much as the socket takes" % CHUNK_PAUSE,
    )
    return parser


def main(argv=None):
    """Run the benchmark; returns 0 if every ratio reaches the goal of 0.8."""
    args = build_parser().parse_args(argv)
    if args.serve:
        serve(args.serve, args.chunk)
        return 0

    from twisted.internet import defer, reactor

    def name(readSize):
        return "tcpcam %s" % (readSize or "adaptive")

    readers = ["baseline"] + [name(readSize) for readSize in args.read_size]
    timings = {size: {reader: [] for reader in readers} for size in args.sizes}
    servers = {}
    try:
        for size in args.sizes:
            server = subprocess.Popen(
                [sys.executable, __file__, "--serve", str(size), "--chunk", str(args.chunk)],
                stdout=subprocess.PIPE,
                text=True,
            )
            servers[size] = (server, int(server.stdout.readline()))

        @defer.inlineCallbacks
        def measure():
            # Alternate the readers so that drift in the machine's load hits all of them.
            for _ in range(args.runs):
                for size in args.sizes:
                    port = servers[size][1]
                    count = max(1, args.volume // size)
                    timings[size]["baseline"].append(timed_baseline(port, count))
                    for readSize in args.read_size:
                        result = yield timed_tcpcam(reactor, port, count, readSize)
                        timings[size][name(readSize)].append(result)

        def stop(outcome):
            if reactor.running:
                reactor.stop()
            return outcome

        reactor.callWhenRunning(lambda: measure().addBoth(stop))
        reactor.callLater(DEADLINE, stop, None)
        reactor.run()
    finally:
        for server, _port in servers.values():
            server.kill()
            server.wait(10)

    worst = None
    print(
        "Client throughput, loopback, median of %d runs of %d MB each, server sends %s"
        % (args.runs, args.volume // 10**6, "%d bytes per send" % args.chunk if args.chunk else "all it can")
    )
    for size in args.sizes:
        print("%d-byte frames:" % size)
        medians = {}
        for reader in readers:
            runs = timings[size][reader]
            if len(runs) < args.runs:
                print("  %s did not finish" % reader)
                return 1
            seconds = _median([run[1] for run in runs])
            cpu = _median([run[2] for run in runs])
            medians[reader] = (seconds, cpu)
            report(reader, runs[0][0], seconds, cpu, _median([run[3] for run in runs]))
        for reader in readers[1:]:
            ratio = medians["baseline"][0] / medians[reader][0]
            worst = ratio if worst is None or ratio < worst else worst
            print(
                "  ratio %-14s %.2f throughput, %.2f CPU per byte (tcpcam / baseline)"
                % (reader.split()[-1], ratio, medians[reader][1] / medians["baseline"][1])
            )
    return 0 if worst is not None and worst >= 0.8 else 1


if __name__ == "__main__":
    sys.exit(main())
