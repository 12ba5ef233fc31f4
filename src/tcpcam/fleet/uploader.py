"""The upload threads: spool entries to the object store, each camera's oldest first, each written once.

Each segment goes up as two objects, the segment and then its index (see
:mod:`tcpcam.fleet.keys`), both with ``If-None-Match: *``. A put refused
with ``PreconditionFailed`` means the object is there already: the upload
was done before a crash or a lost answer, and it is checked (same size)
rather than written again. While the store cannot be reached (or refuses),
the same entry is tried again with a capped backoff, so a camera's entries go
up in the order they were made and none is skipped; the state change is
logged once each way.

boto3 blocks, so the uploads run in :attr:`Uploader.workers` threads, each
camera's entries one at a time (:meth:`~tcpcam.fleet.spool.Spool.take`), so
several cameras go up at once and each in order. The S3 client is made to
fail fast (one attempt, short time-outs) and the retrying is done here.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from twisted.logger import Logger

from tcpcam.fleet.natslink import describe

if TYPE_CHECKING:
    from tcpcam.fleet.config import S3Settings
    from tcpcam.fleet.spool import Spool, SpoolEntry

log = Logger(namespace="tcpcam.fleet")

#: Seconds to wait for the object store to accept a connection.
CONNECT_TIMEOUT = 2.0
#: Seconds to wait for an answer.
READ_TIMEOUT = 10.0
#: First and longest delay (seconds) before trying a failed upload again.
RETRY_INITIAL = 0.25
RETRY_MAX = 2.0


def makeS3Client(settings: S3Settings, connectTimeout: float = CONNECT_TIMEOUT, readTimeout: float = READ_TIMEOUT,
                 maxPool: int = 10) -> Any:
    """A boto3 S3 client that fails fast (credentials from the usual AWS variables and files)."""
    import boto3
    from botocore.config import Config

    return boto3.session.Session().client(
        "s3", endpoint_url=settings.endpoint or None, region_name=settings.region,
        config=Config(s3={"addressing_style": "path"}, connect_timeout=connectTimeout, read_timeout=readTimeout,
                      retries={"total_max_attempts": 1}, max_pool_connections=maxPool))


def errorCode(error: BaseException) -> str:
    """The S3 error code of a botocore ClientError ('' for anything else)."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        return str(response.get("Error", {}).get("Code", ""))
    return ""


class Uploader:
    """Upload the spool's entries to ``bucket`` in one thread (see the module docstring).

    ``report(method, format, **fields)`` logs from the thread (the service
    passes one that goes through the reactor).
    """

    #: Seconds before the first retry of a failed upload; doubles up to :attr:`retryMax`.
    retryInitial = RETRY_INITIAL
    retryMax = RETRY_MAX
    #: Upload threads (cameras uploaded at once).
    workers = 4

    def __init__(self, spool: Spool, client: Any, bucket: str,
                 report: Callable[..., object] | None = None) -> None:
        self.spool = spool
        self.client = client
        self.bucket = bucket
        self._report = report or (lambda method, format, **fields: method(format, **fields))
        self._stop = threading.Event()
        self._threads: list[threading.Thread] = []
        self._lock = threading.Lock()
        self.uploadedSegments = 0
        self.uploadedEvents = 0
        self.uploadedBytes = 0
        #: Objects found there already (a repeat after a crash): not written again.
        self.alreadyThere = 0
        #: Keys holding another object than ours (should never happen: keys name the recorder).
        self.conflicts = 0
        self.failures = 0
        self.failing = False
        self.lastError = ""
        self.busySeconds = 0.0

    def start(self) -> None:
        """Start the threads."""
        for number in range(self.workers):
            thread = threading.Thread(target=self._run, name="tcpcam-uploader-%d" % number, daemon=True)
            self._threads.append(thread)
            thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        """Stop after the uploads in progress (waiting at most ``timeout`` seconds); the rest stays spooled."""
        self._stop.set()
        self.spool.wake()
        deadline = time.monotonic() + timeout
        for thread in self._threads:
            thread.join(max(0.0, deadline - time.monotonic()))

    def _run(self) -> None:
        delay = self.retryInitial
        while not self._stop.is_set():
            entry = self.spool.take(0.5)
            if entry is None:
                continue
            started = time.monotonic()
            try:
                self.upload(entry)
            except Exception as error:
                self.spool.putBack(entry)
                with self._lock:
                    self.failures += 1
                    self.lastError = describe(error)
                    report, self.failing = not self.failing, True
                if report:
                    self._report(log.warn, "fleet: cannot upload to the object store ({error}); {waiting} uploads"
                                 " wait in the spool, retrying", error=self.lastError, waiting=self.spool.waiting)
                self._stop.wait(delay)
                delay = min(self.retryMax, delay * 2)
                continue
            finally:
                with self._lock:
                    self.busySeconds += time.monotonic() - started
            self.spool.remove(entry)
            delay = self.retryInitial
            with self._lock:
                report, self.failing = self.failing, False
            if report:
                self._report(log.info, "fleet: the object store works again; {waiting} uploads still spooled",
                             waiting=self.spool.waiting)

    def upload(self, entry: SpoolEntry) -> None:
        """Upload one entry (raises on failure; the caller retries)."""
        data = entry.data
        if entry.kind == "segment":
            with open(self.spool.bytesPath(entry), "rb") as body:
                self._putOnce(data["key"], body, entry.size, "video/x-motion-jpeg",
                              {"recorder": data["recorder"], "frames": str(len(data["frames"]))})
            index = json.dumps({key: data[key] for key in ("camera", "recorder", "segment_id", "start_ms", "end_ms",
                                                           "bytes", "motion", "frames", "key")}).encode()
            self._putOnce(data["index_key"], index, len(index), "application/json", {"recorder": data["recorder"]})
            with self._lock:
                self.uploadedSegments += 1
                self.uploadedBytes += entry.size
        else:
            event = json.dumps({"camera": data["camera"], "recorder": data["recorder"], "event": data["event"],
                                "thumbnail": data["thumbnail"]}).encode()
            self._putOnce(data["key"], event, len(event), "application/json", {"recorder": data["recorder"]})
            with self._lock:
                self.uploadedEvents += 1

    def _putOnce(self, key: str, body: Any, size: int, contentType: str, metadata: dict[str, str]) -> None:
        from botocore.exceptions import ClientError

        try:
            self.client.put_object(Bucket=self.bucket, Key=key, Body=body, ContentType=contentType,
                                   Metadata=metadata, IfNoneMatch="*")
        except ClientError as error:
            if errorCode(error) not in ("PreconditionFailed", "412"):
                raise
            head = self.client.head_object(Bucket=self.bucket, Key=key)
            if head.get("ContentLength") == size and head.get("Metadata", {}).get("recorder") == metadata["recorder"]:
                with self._lock:
                    self.alreadyThere += 1
                return
            with self._lock:
                self.conflicts += 1
            self._report(log.error, "fleet: {key} holds another object than this recorder's; not overwritten",
                         key=key)
