"""Fan-out benchmark: the tcpcam server against a minimal Twisted push-producer server.

Run: ``python bench/bench_fanout.py`` (about a minute; loopback only).

For K = 1, 8 and 32 clients and frames of 50 KB and 250 KB, each server runs
in its own process and K raw-socket readers in this process count the bytes
they receive for a fixed time; the report gives total frames/s and MB/s and
the tcpcam/minimal ratio. Runs of the two servers alternate and the best of
three counts, and the two processes are kept on separate CPUs where the
platform allows. Then the slow-client case: 8 readers alone, then
the same 8 with one more client that never reads; the report gives the
readers' rate with it relative to without it.
"""

import argparse
import os
import selectors
import socket
import subprocess
import sys
import time

SIZES = (50 * 1000, 250 * 1000)
CLIENT_COUNTS = (1, 8, 32)
#: Seconds of reading before and during the measurement of each run.
WARMUP = 0.3
MEASURE = 1.0
#: Runs of each case; the best counts.
REPEATS = 3
#: Readers in the slow-client case.
SLOW_READERS = 8
#: A server process stops itself after this many seconds, whatever happens.
SERVER_LIFETIME = 60.0
REQUEST = b"1235\n0\n"


# -- the servers (run in a child process) ---------------------------------------------------------


def serveMinimal(reactor, payload):
    """A minimal fan-out: write the frame to every connection whose transport is not paused."""
    from twisted.internet.interfaces import IPushProducer
    from twisted.internet.protocol import Factory, Protocol
    from zope.interface import implementer

    header = len(payload).to_bytes(4, "big")

    @implementer(IPushProducer)
    class MinimalProtocol(Protocol):
        def connectionMade(self):
            self.paused = False
            self.factory.clients.append(self)
            self.transport.registerProducer(self, True)
            self.factory.kick()

        def dataReceived(self, data):
            pass

        def pauseProducing(self):
            self.paused = True

        def resumeProducing(self):
            self.paused = False
            self.factory.kick()

        def stopProducing(self):
            self.paused = True

        def connectionLost(self, reason):
            self.factory.clients.remove(self)

    class MinimalFactory(Factory):
        protocol = MinimalProtocol

        def __init__(self):
            self.clients = []
            self.call = None

        def kick(self):
            if self.call is None:
                self.call = reactor.callLater(0, self.tick)

        def tick(self):
            self.call = None
            ready = [client for client in reversed(self.clients) if not client.paused]
            for client in ready:
                client.transport.writeSequence((header, payload))
            if ready:
                self.kick()

    return MinimalFactory()


def serveTcpcam(reactor, payload):
    """The tcpcam server with a source that returns the same frame at once."""
    from zope.interface import implementer

    from tcpcam.server import TCPCamServerFactory
    from tcpcam.server.sources import IFrameSource

    @implementer(IFrameSource)
    class ConstantSource:
        def nextFrame(self):
            return payload

    return TCPCamServerFactory(ConstantSource(), interval=0.0, maxClients=64, reactor=reactor, pinFailures=0)


def runServer(kind, size):
    """Child process: listen on a free loopback port, print it, serve until killed."""
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    payload = os.urandom(size)
    factory = (serveMinimal if kind == "minimal" else serveTcpcam)(reactor, payload)

    def listening(port):
        print(port.getHost().port, flush=True)

    serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory).addCallback(listening)
    reactor.callLater(SERVER_LIFETIME, reactor.stop)
    reactor.run()


# -- the readers (this process) -------------------------------------------------------------------


class Server:
    """A server child process, stopped on exit from the ``with`` block."""

    def __init__(self, kind, size):
        self.process = subprocess.Popen([sys.executable, __file__, "--serve", kind, str(size)],
                                        stdout=subprocess.PIPE, text=True)
        line = self.process.stdout.readline()
        if not line.strip().isdigit():
            self.process.kill()
            raise SystemExit("the %s server did not start" % (kind,))
        self.port = int(line)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.process.terminate()
        try:
            self.process.wait(timeout=10)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(timeout=10)


def measure(port, readers, stalled=0):
    """Connect ``stalled`` clients that never read, then ``readers`` that do.

    Returns the bytes per second received by the readers together.
    """
    connections = []
    for _ in range(stalled):
        stuck = socket.create_connection(("127.0.0.1", port), timeout=10)
        stuck.sendall(REQUEST)
        connections.append(stuck)
    selector = selectors.DefaultSelector()
    for _ in range(readers):
        reader = socket.create_connection(("127.0.0.1", port), timeout=10)
        reader.sendall(REQUEST)
        reader.setblocking(False)
        selector.register(reader, selectors.EVENT_READ)
        connections.append(reader)
    buffer = bytearray(1 << 20)
    received = 0
    start = time.perf_counter()
    measuring = False
    deadline = start + WARMUP + MEASURE
    while True:
        now = time.perf_counter()
        if not measuring and now >= start + WARMUP:
            measuring, received, begun = True, 0, now
        if now >= deadline:
            break
        for key, _ in selector.select(timeout=0.1):
            try:
                count = key.fileobj.recv_into(buffer)
            except BlockingIOError:
                continue
            if count == 0:
                raise SystemExit("the server closed a reader")
            received += count
    elapsed = time.perf_counter() - begun
    selector.close()
    for connection in connections:
        connection.close()
    return received / elapsed


def pin(cpu):
    """Keep this process on one CPU, when the platform allows it, to steady the figures."""
    if hasattr(os, "sched_setaffinity") and len(os.sched_getaffinity(0)) >= 2:
        os.sched_setaffinity(0, {sorted(os.sched_getaffinity(0))[cpu]})


def build_parser():
    """The benchmark's command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--serve", nargs=2, metavar=("KIND", "SIZE"), help=argparse.SUPPRESS)
    return parser


def main():
    args = build_parser().parse_args()
    if args.serve:
        pin(0)
        runServer(args.serve[0], int(args.serve[1]))
        return
    pin(1)
    print("fan-out: best of %d runs of %.1f s (after %.1f s warm-up); rates are all clients together"
          % (REPEATS, MEASURE, WARMUP))
    print("%8s %4s  %22s  %22s  %6s" % ("frame", "K", "minimal frames/s MB/s", "tcpcam frames/s MB/s", "ratio"))
    ratios = []
    kept = []
    slow = []
    for size in SIZES:
        with Server("minimal", size) as minimal, Server("tcpcam", size) as tcpcam:
            for count in CLIENT_COUNTS:
                rates = {"minimal": 0.0, "tcpcam": 0.0}
                for _ in range(REPEATS):
                    for kind, server in (("minimal", minimal), ("tcpcam", tcpcam)):
                        rates[kind] = max(rates[kind], measure(server.port, count))
                ratio = rates["tcpcam"] / rates["minimal"]
                ratios.append(ratio)
                print("%6d KB %4d  %12.0f %9.1f  %12.0f %9.1f  %6.2f" % (
                    size // 1000, count, rates["minimal"] / (size + 4), rates["minimal"] / 1e6,
                    rates["tcpcam"] / (size + 4), rates["tcpcam"] / 1e6, ratio))
            alone = withStuck = 0.0
            for _ in range(REPEATS):
                alone = max(alone, measure(tcpcam.port, SLOW_READERS))
                withStuck = max(withStuck, measure(tcpcam.port, SLOW_READERS, stalled=1))
            kept.append(withStuck / alone)
            slow.append((size, alone, withStuck))
    print("lowest tcpcam/minimal ratio: %.2f (goal >= 0.80)" % min(ratios))
    print()
    print("slow client: %d readers, without and with one client that never reads (tcpcam server)" % SLOW_READERS)
    for size, alone, withStuck in slow:
        print("%6d KB  readers alone %6.0f frames/s, with a stalled client %6.0f frames/s: kept %.2f" % (
            size // 1000, alone / (size + 4), withStuck / (size + 4), withStuck / alone))
    print("lowest kept: %.2f (goal >= 0.95)" % min(kept))


if __name__ == "__main__":
    main()
