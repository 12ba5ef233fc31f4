"""Every command of docs/fleet.md, run: its servers on free loopback ports, its recorder and web process until joined.

Addresses in the page (NATS on 4222, the S3 port 8333, the cameras'
192.168.1.x, the folders) are swapped for the test's own; everything else
runs as written.
"""

import glob
import os
import re
import subprocess
import sys
import urllib.request

import pytest_twisted
from fleet_support import (
    FLEET_ONLY,
    TCPCAM,
    TWISTD,
    binary,
    cameraFarm,
    dieWithParent,
    freePorts,
    portFree,
    stopProcess,
    waitUntil,
)
from twisted.internet import threads

pytestmark = FLEET_ONLY

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "fleet.md")


def docCommands():
    """The lines of the page's ``sh`` blocks."""
    text = open(DOC).read()
    lines = []
    for block in re.findall(r"```sh\n(.*?)```", text, re.S):
        lines.extend(line.strip() for line in block.splitlines() if line.strip())
    return lines


def weedPorts(command):
    """Free ports for every -X.port= of a weed command line (the admin port with its +10000 twin free too)."""
    ports = {}
    for flag, value in re.findall(r"-([a-z0-9]+\.port(?:\.grpc)?)=(\d+)", command):
        if value != "0":
            ports[flag] = freePorts(1)[0]
    for _ in range(500):
        admin = freePorts(1)[0] % 10000 + 20000
        if portFree(admin) and portFree(admin + 10000):
            ports["admin.port"] = admin
            break
    return ports


def runDocs(tmp_path, endpoints):
    env = dict(os.environ, DOOR_PIN="1235", PYTHONUNBUFFERED="1", AWS_ACCESS_KEY_ID="tcpcamtest",
               AWS_SECRET_ACCESS_KEY="tcpcamtestsecret")
    natsPort, webPort = freePorts(2)
    swaps = {"nats://127.0.0.1:4222": "nats://127.0.0.1:%d" % natsPort,
             "tcp:host=192.168.1.50:port=3333": endpoints[0], "tcp:host=192.168.1.51:port=3333": endpoints[1],
             "/var/lib/tcpcam-nats": str(tmp_path / "nats"), "/var/lib/tcpcam-s3": str(tmp_path / "s3"),
             "/srv/rec-a": str(tmp_path / "rec-a"), "tcp:8090:": "tcp:%d:" % webPort}
    running = []
    ran = []
    weedUsed = []
    try:
        for command in docCommands():
            line = command
            s3 = None
            if line.startswith("weed "):
                ports = weedPorts(line)
                for flag, port in ports.items():
                    line = re.sub(r"-%s=\d+" % re.escape(flag), "-%s=%d" % (flag, port), line)
                s3 = ports["s3.port"]
                weedUsed.extend(ports.values())
                swaps["http://127.0.0.1:8333"] = "http://127.0.0.1:%d" % s3
            for old, new in swaps.items():
                line = line.replace(old, new)
            if line.startswith("nats-server "):
                line = line.replace("-p 4222", "-p %d" % natsPort)
            args = line.split()
            log = open(tmp_path / ("%d.log" % len(ran)), "wb")
            if args[0] in ("nats-server", "weed"):
                process = subprocess.Popen([binary(args[0])] + args[1:], stdout=log, stderr=subprocess.STDOUT,
                                           env=env, preexec_fn=dieWithParent)
                running.append(process)
                if args[0] == "weed":
                    waitUntil(lambda port=s3: _healthy(port), 60, "weed from the docs to be ready", step=0.1)
                else:
                    waitUntil(lambda name=log.name: b"Server is ready" in open(name, "rb").read(), 10, "nats-server")
            elif args[0] == "twistd" or args[:2] == ["tcpcam", "web"]:
                program = [sys.executable, "-c", TWISTD if args[0] == "twistd" else TCPCAM] + args[1:]
                if args[0] == "twistd":
                    program[3:3] = ["--pidfile="]
                process = subprocess.Popen(program, stdout=log, stderr=subprocess.STDOUT, env=env,
                                           preexec_fn=dieWithParent, cwd=str(tmp_path))
                running.append(process)
                expected = b"recording camera door" if args[0] == "twistd" else b"serving the pages"
                waitUntil(lambda text=expected, name=log.name: text in open(name, "rb").read(), 30,
                          "%s from the docs" % args[:2])
            else:
                assert args[0] == "tcpcam", command
                done = subprocess.run([sys.executable, "-c", TCPCAM] + args[1:], capture_output=True, text=True,
                                      env=env, timeout=30)
                assert done.returncode == 0, "%s: %s" % (command, done.stderr)
                if args[-1] == "list":
                    assert "door" in done.stdout and "rec-a" in done.stdout
            ran.append(command)
    finally:
        for process in reversed(running):
            stopProcess(process, 20)
        for port in weedUsed:  # weed's gRPC sockets are hard-wired under /tmp
            for path in glob.glob("/tmp/seaweedfs-*-%d.sock" % port):
                os.unlink(path)
    return ran


def _healthy(port):
    try:
        with urllib.request.urlopen("http://127.0.0.1:%d/healthz" % port, timeout=1) as answer:
            return answer.status == 200
    except OSError:
        return False


@pytest_twisted.inlineCallbacks
def test_every_command_of_the_fleet_page_runs(tmp_path):
    cameras = yield cameraFarm(2, 0.2)
    try:
        ran = yield threads.deferToThread(runDocs, tmp_path, [endpoint for _, _, endpoint in cameras])
    finally:
        for _, port, _ in cameras:
            yield port.stopListening()
    assert ran == docCommands() and len(ran) == 10
