"""Protocol 2 against the legacy protocol, in the same run: server and client throughput, handshake, fall back.

- **Server**: the reference server (``tcpcam serve`` in its own process, a
  constant 50 KB frame, no interval) streaming to K clients in another
  process that read as fast as they can: legacy requests against protocol 2
  sessions (same reader, which only counts frames).
- **Client**: a plain-socket server process sending prebuilt frames as fast
  as it can, read by the Twisted client: ``fetch`` (legacy) against
  :class:`tcpcam.client.camera.Camera2Protocol`.
- **Handshake**: time from connect to the first frame, legacy against
  protocol 2 (the proof of the key both ways); and the time
  ``connectCamera`` takes to notice a legacy server and fall back.

Run: ``python bench/bench_protocol2.py`` (about a minute; loopback only).
"""

import argparse
import os
import socket
import subprocess
import sys
import threading
import time

from tcpcam.core.client_role2 import Client2Role
from tcpcam.core.framing import FrameDecoder, encode_frame
from tcpcam.core.limits import PIN_PAUSE_MS
from tcpcam.core.mac import key_text
from tcpcam.core.messages import FRAME, fill_tail, frame_head
from tcpcam.core.session2 import Session2

KEY = bytes(range(90, 110))
#: Seconds each throughput measurement lasts, and the whole run at most.
SECONDS = 3.0
DEADLINE = 300
#: Frame size in bytes.
SIZE = 50_000


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def recv_some(sock, decoder):
    data = sock.recv(1 << 20)
    if not data:
        raise ConnectionError("closed")
    decoder.receive_data(data)


def p2_handshake(sock, decoder, role):
    """Open protocol 2 on a blocking socket with the core's client role; returns when ready."""
    from tcpcam.core.actions import Write

    for action in role.connected(0):
        sock.sendall(action.head)
    while not role.ready:
        role.receive_data(sock.recv(65536), 0)
        while True:
            item = role.next_item(0)
            if item is None:
                break
            if isinstance(item, Write):
                sock.sendall(bytes(item.head))
    counter, write = role.request("stream", 0, frames=0)
    sock.sendall(bytes(write.head))


def reader(port, protocol, seconds, totals, index, go):
    """One client: count whole frames for ``seconds``; protocol 2 readers pass every message to the role.

    Each reader comes from its own loopback address: the server lets one
    address have only a few connections still in their handshake.
    """
    sock = socket.create_connection(("127.0.0.1", port), timeout=30, source_address=("127.0.1.%d" % (index + 1), 0))
    frames = 0
    try:
        if protocol == 1:
            sock.sendall(b"1235\n0\n")
            decoder = FrameDecoder()
            go.wait(30)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                recv_some(sock, decoder)
                while decoder.next_frame() is not None:
                    frames += 1
        else:
            # The handshake through the core's client role, then the same plain
            # decoder as the legacy reader: what is measured is the server.
            p2_handshake(sock, None, Client2Role(KEY, os.urandom))
            decoder = FrameDecoder()
            go.wait(30)
            deadline = time.monotonic() + seconds
            while time.monotonic() < deadline:
                recv_some(sock, decoder)
                while True:
                    message = decoder.next_frame()
                    if message is None:
                        break
                    frames += message[0] == FRAME
    finally:
        sock.close()
    totals[index] = frames


def server_throughput(clients):
    """(legacy frames/s, protocol 2 frames/s) of the reference server with ``clients`` readers."""
    port = free_port()
    frame_dir = os.path.join(os.environ.get("TMPDIR", "/tmp"), "bench-p2-%d" % os.getpid())
    os.makedirs(frame_dir, exist_ok=True)
    with open(os.path.join(frame_dir, "frame.jpg"), "wb") as out:
        out.write(b"\xff\xd8" + bytes(SIZE - 4) + b"\xff\xd9")
    server = subprocess.Popen(
        [sys.executable, "-m", "tcpcam", "serve", "--listen", "tcp:%d:interface=127.0.0.1" % port,
         "--source", "jpeg:" + os.path.join(frame_dir, "frame.jpg"), "--interval-ms", "0",
         "--key", key_text(KEY), "--max-clients", "64"], stderr=subprocess.DEVNULL)
    try:
        for _ in range(100):
            try:
                socket.create_connection(("127.0.0.1", port), timeout=1).close()
                break
            except OSError:
                time.sleep(0.1)
        rates = []
        for protocol in (1, 2, 1, 2):
            totals = [0] * clients
            go = threading.Event()
            threads = [threading.Thread(target=reader, args=(port, protocol, SECONDS, totals, index, go))
                       for index in range(clients)]
            for thread in threads:
                thread.start()
            time.sleep(0.3)
            go.set()
            for thread in threads:
                thread.join(60)
            rates.append((protocol, sum(totals) / SECONDS))
        legacy = max(rate for protocol, rate in rates if protocol == 1)
        modern = max(rate for protocol, rate in rates if protocol == 2)
        return legacy, modern
    finally:
        server.terminate()
        server.wait(30)


def fast_server(protocol, port_out, stop):
    """A plain-socket server that streams prebuilt frames as fast as it can (protocol 1 or 2)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    listener.settimeout(30)
    port_out.append(listener.getsockname()[1])
    payload = b"\xff\xd8" + bytes(SIZE - 4) + b"\xff\xd9"
    while not stop.is_set():
        try:
            conn, _ = listener.accept()
        except OSError:
            return
        with conn:
            try:
                if protocol == 1:
                    conn.recv(64)
                    block = encode_frame(payload) * 40
                else:
                    block = serve_p2_handshake(conn, payload)
                while not stop.is_set():
                    conn.sendall(block)
            except OSError:
                continue
    listener.close()


def serve_p2_handshake(conn, payload):
    """The server side of protocol 2 on a blocking socket; returns a block of frame messages to send."""
    from tcpcam.core.messages import HELLO, SETTINGS, encode_json

    session = Session2(KEY, os.urandom(16))
    conn.recv(64)
    conn.sendall(encode_json(HELLO, {"protocol": 2, "capabilities": [], "device": {},
                                     "challenge": session.challenge.hex()}))
    while not session.authenticated:
        session.receive_data(conn.recv(4096))
    conn.sendall(session.auth_ok_message() + session.sign(SETTINGS, {}))
    conn.recv(4096)
    parts = []
    for seq in range(40):
        parts.append(frame_head(seq, seq, 0, len(payload)) + bytes(fill_tail(bytearray(5), 1, 0)) + payload)
    return b"".join(parts)


def client_throughput():
    """(legacy frames/s, protocol 2 frames/s) of the Twisted client, reading a fast server."""
    code = CLIENT_RUN % {"seconds": SECONDS}
    results = {}
    for protocol in (1, 2, 1, 2):
        port, stop = [], threading.Event()
        thread = threading.Thread(target=fast_server, args=(protocol, port, stop), daemon=True)
        thread.start()
        while not port:
            time.sleep(0.01)
        output = subprocess.run([sys.executable, "-c", code, str(port[0]), str(protocol)], capture_output=True,
                                text=True, timeout=120).stdout.strip()
        stop.set()
        results.setdefault(protocol, []).append(float(output or 0))
    return max(results[1]), max(results[2])


CLIENT_RUN = """
import sys, time
from twisted.internet import reactor, defer
from tcpcam.client import fetch
from tcpcam.client.camera import connectCamera
from tcpcam.core.client_role2 import ProtocolMemory
port, protocol = int(sys.argv[1]), int(sys.argv[2])
count = [0]
endpoint = "tcp:host=127.0.0.1:port=%%d" %% port
def frame(view):
    count[0] += 1
@defer.inlineCallbacks
def run():
    if protocol == 1:
        fetch(reactor, endpoint, "1235", 0, frame).addErrback(lambda f: None)
    else:
        camera = yield connectCamera(reactor, endpoint, key=bytes(range(90, 110)), memory=ProtocolMemory())
        camera.onFrame = lambda f: frame(f.payload)
        camera.stream(0).addErrback(lambda f: None)
    start, first = time.monotonic(), count[0]
    reactor.callLater(%(seconds)s, lambda: (print((count[0] - first) / (time.monotonic() - start)), reactor.stop()))
reactor.callWhenRunning(run)
reactor.run()
"""


def handshakes(rounds=30):
    """Median seconds to the first frame, legacy and protocol 2, and the fall back's extra time."""
    code = HANDSHAKE_RUN % {"rounds": rounds}
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120).stdout.split()
    return tuple(float(value) for value in output)


HANDSHAKE_RUN = """
import os, statistics, time
from twisted.internet import reactor, defer
from twisted.internet.endpoints import serverFromString
from tcpcam.client import fetch
from tcpcam.client.camera import connectCamera
from tcpcam.core.client_role2 import ProtocolMemory
from tcpcam.server import TCPCamServerFactory
from tcpcam.server.sources.files import HelloSource
KEY = bytes(range(90, 110))
@defer.inlineCallbacks
def run():
    both = TCPCamServerFactory(HelloSource(), key=KEY, pinFailures=0)
    legacy = TCPCamServerFactory(HelloSource(), pinFailures=0)
    ports = []
    for factory in (both, legacy):
        port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
        ports.append("tcp:host=127.0.0.1:port=%%d" %% port.getHost().port)
    times = {"legacy": [], "p2": [], "fallback": [], "direct": []}
    for _ in range(%(rounds)d):
        start = time.perf_counter()
        yield fetch(reactor, ports[0], "1235", 1, lambda view: None)
        times["legacy"].append(time.perf_counter() - start)
        start = time.perf_counter()
        camera = yield connectCamera(reactor, ports[0], key=KEY, memory=ProtocolMemory())
        yield camera.snapshot()
        times["p2"].append(time.perf_counter() - start)
        yield camera.close()
        start = time.perf_counter()
        camera = yield connectCamera(reactor, ports[1], key=KEY, memory=ProtocolMemory())
        yield camera.snapshot()
        times["fallback"].append(time.perf_counter() - start)
        start = time.perf_counter()
        yield fetch(reactor, ports[1], "1235", 1, lambda view: None)
        times["direct"].append(time.perf_counter() - start)
    print(*(statistics.median(times[name]) for name in ("legacy", "p2", "fallback", "direct")))
    reactor.stop()
reactor.callWhenRunning(run)
reactor.run()
"""


def build_parser():
    """The benchmark's command-line options."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--clients", type=int, nargs="+", default=[1, 8],
                        help="client counts of the server measurement (default: 1 8)")
    return parser


def main(argv=None):
    """Run the benchmark and print its lines."""
    args = build_parser().parse_args(argv)
    started = time.monotonic()
    print("protocol 2 against legacy, %d-byte frames, %g s per measurement, best of 2, loopback" % (SIZE, SECONDS))
    for clients in args.clients:
        legacy, modern = server_throughput(clients)
        print("server, %2d clients: legacy %7.0f frames/s, protocol 2 %7.0f frames/s, ratio %.2f"
              % (clients, legacy, modern, modern / legacy))
        if time.monotonic() - started > DEADLINE:
            return
    legacy, modern = client_throughput()
    print("client:             legacy %7.0f frames/s, protocol 2 %7.0f frames/s, ratio %.2f"
          % (legacy, modern, modern / legacy))
    legacy_s, p2_s, fallback_s, direct_s = handshakes()
    print("first frame (median of 30): legacy %.1f ms (of which %d ms is the pause between PIN and count that the "
          "original firmware needs), protocol 2 %.1f ms, ratio %.2f"
          % (legacy_s * 1000, PIN_PAUSE_MS, p2_s * 1000, p2_s / legacy_s))
    print("fall back to a legacy server: %.1f ms to the first frame, %.1f ms more than asking legacy at once"
          % (fallback_s * 1000, (fallback_s - direct_s) * 1000))


if __name__ == "__main__":
    main()
