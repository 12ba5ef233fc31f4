"""Export from the page: a time range or an event as an MP4 (or a time-lapse), with progress, cancel and a download.

Under ``/NAME/``, behind the login:

- ``POST exports`` with ``from`` and ``to`` (Unix seconds) or ``event``
  (an event id: its clip, with pre- and post-roll), and for a time-lapse
  ``every`` (seconds of recording per frame) and ``fps``: starts a job,
  202 and the job as JSON; one line and 400, 404, 413, 429 or 507 if not;
- ``GET exports``: this camera's jobs, newest first;
- ``GET exports/ID.json``: one job: ``state`` (``new``, ``running``,
  ``done``, ``failed``, ``cancelled``), ``done`` and ``total`` frames,
  ``fraction``, ``error``, and ``download`` once done;
- ``GET exports/ID.mp4``: the file, as a download named after the camera
  and the time (``door_2026-05-01_10-00-00.mp4``);
- ``POST exports/ID/cancel``: stop the job (its file is never written).

Bounds: at most :attr:`ExportManager.maxRunning` jobs run at once per
recorder (429 beyond), each in a thread of the manager's own pool at a
lower CPU priority (nice :data:`EXPORT_NICENESS`, Linux), so recording and
playback go first; a job takes at most :data:`MAX_PAGE_EXPORT_FRAMES`
frames and :data:`MAX_EXPORT_SECONDS` of recording (413 / 400 beyond;
``tcpcam export`` has no such bound); no job starts when the disk is below
the retention's free-space floor (507). Files are written under
``OUT/.exports/`` (a name no camera can have, which retention leaves
alone), each under a temporary name until whole, and deleted
:attr:`ExportManager.keepSeconds` after the job ended, when more than
:attr:`ExportManager.maxKept` jobs are kept (the oldest first), and when
the recorder stops. Each recorder writes into a folder of its own,
``OUT/.exports/RUN/``, locked (``flock``) while it runs; at its start a
recorder removes the folders nobody holds, which earlier runs left (a second
recorder on the same ``--out`` keeps its own).
"""

from __future__ import annotations

import errno
import fcntl
import os
import secrets
import shutil
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from twisted.internet.defer import Deferred
from twisted.internet.task import LoopingCall
from twisted.internet.threads import deferToThreadPool
from twisted.logger import Logger
from twisted.python.failure import Failure
from twisted.python.threadpool import ThreadPool
from twisted.web.resource import IResource, Resource
from twisted.web.server import NOT_DONE_YET, Request

from tcpcam.common.atomic import removeQuietly
from tcpcam.core.text import plural
from tcpcam.record.export import TIMELAPSE_FPS, ExportError, ExportJob
from tcpcam.record.footage import Footage
from tcpcam.record.web import query
from tcpcam.record.web.auth import sameOrigin
from tcpcam.record.web.plain import NO_CACHE, PlainError, plainText
from tcpcam.record.web.query import BadQuery
from tcpcam.record.web.reads import Answer, FileSender, FootageReads, ReadsBusy, openForReading, writeAnswer
from tcpcam.record.web.stream import clientHost
from tcpcam.record.web.timeline import MAX_EVENT_ID, hasFootage

log = Logger(namespace="tcpcam.record")

#: Export jobs running at once per recorder.
MAX_RUNNING_EXPORTS = 2
#: Jobs (and their files) kept at once per recorder; a new one beyond removes the oldest that ended.
MAX_KEPT_EXPORTS = 6
#: Seconds a job's file is kept after the job ended.
EXPORT_KEEP_SECONDS = 3600.0
#: Seconds between looks for jobs to forget.
CLEANUP_INTERVAL_SECONDS = 30.0
#: Most frames one export from the page takes (about 2.8 hours at 10 frames/s).
MAX_PAGE_EXPORT_FRAMES = 100_000
#: Longest range of recording one export from the page covers, in seconds.
MAX_EXPORT_SECONDS = 31 * 86400.0
#: A time-lapse's ``every``: seconds of recording per frame.
MIN_EVERY_SECONDS = 0.1
MAX_EVERY_SECONDS = 86400.0
#: A time-lapse's frames per second.
MIN_FPS = 1.0
MAX_FPS = 60.0
#: The folder under ``--out`` that holds the exported files (no camera may be called so).
EXPORTS_FOLDER = ".exports"
#: Nice value of the export threads (Linux: per thread), so recording and playback come first.
EXPORT_NICENESS = 10
#: The lock file a running recorder holds in its folder of exports.
LOCK_NAME = ".lock"


class ExportRefused(Exception):
    """An export cannot start: ``code`` and a one-line message."""

    def __init__(self, code: int, message: str) -> None:
        Exception.__init__(self, message)
        self.code = code


def downloadName(camera: str, start: float, every: float | None) -> str:
    """``door_2026-05-01_10-00-00.mp4`` (local time), ``..._timelapse-60s.mp4`` for a time-lapse."""
    stamp = time.strftime("%Y-%m-%d_%H-%M-%S", time.localtime(start))
    return "%s_%s%s.mp4" % (camera, stamp, "_timelapse-%gs" % every if every else "")


class WebExport:
    """One export job started from the page."""

    def __init__(self, exportId: str, camera: str, start: float, end: float, every: float | None, fps: float,
                 job: ExportJob, created: float, eventId: int | None = None) -> None:
        self.id = exportId
        self.camera = camera
        self.start = start
        self.end = end
        self.every = every
        self.fps = fps
        self.job = job
        self.created = created
        self.eventId = eventId
        self.name = downloadName(camera, start, every)
        #: When the job ended (done, failed or cancelled), or None.
        self.ended: float | None = None

    @property
    def path(self) -> str:
        """Where the file is written."""
        return self.job.path

    @property
    def state(self) -> str:
        """The job's state: new, running, done, failed or cancelled."""
        return self.job.state

    def asDict(self, keepSeconds: float) -> dict[str, object]:
        """The job as JSON for the page (URLs relative to ``/NAME/``)."""
        progress = self.job.progress
        result = self.job.result
        done = self.state == "done"
        return {
            "id": self.id, "camera": self.camera, "kind": "timelapse" if self.every else "video",
            "from": self.start, "to": self.end, "every": self.every, "fps": self.fps if self.every else None,
            "event": self.eventId, "name": self.name, "state": self.state, "done": progress["done"],
            "total": progress["total"], "fraction": progress["fraction"], "error": progress["error"],
            "frames": result.frames if result else None,
            "duration": result.durationMs / 1000.0 if result else None,
            "status": "exports/%s.json" % self.id, "cancel": "exports/%s/cancel" % self.id,
            "download": "exports/%s.mp4" % self.id if done else None,
            "created": self.created, "expires": self.ended + keepSeconds if self.ended is not None else None,
        }


def _holdLock(path: str) -> int | None:
    """An exclusive ``flock`` on ``path`` (made if need be): its descriptor, or None if someone holds it."""
    fd = os.open(path, os.O_RDWR | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError as error:
        os.close(fd)
        if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
            return None
        raise
    return fd


def removeLeftovers(base: str) -> int:
    """Remove what earlier runs left in ``OUT/.exports``: every folder no running recorder holds; how many."""
    try:
        entries = os.listdir(base)
    except OSError:
        return 0
    removed = 0
    for name in entries:
        path = os.path.join(base, name)
        if not os.path.isdir(path) or os.path.islink(path):
            removeQuietly(path)
            continue
        try:
            held = _holdLock(os.path.join(path, LOCK_NAME))
        except OSError:
            continue
        if held is None:
            continue  # a running recorder's
        shutil.rmtree(path, ignore_errors=True)
        os.close(held)
        removed += 1
    return removed


def _runNiced(job: ExportJob) -> Any:
    """Run ``job`` in this (pool) thread, at a lower CPU priority on Linux, where niceness is per thread."""
    if sys.platform.startswith("linux"):
        try:
            thread = threading.get_native_id()
            if os.getpriority(os.PRIO_PROCESS, thread) < EXPORT_NICENESS:
                os.setpriority(os.PRIO_PROCESS, thread, EXPORT_NICENESS)
        except OSError:
            pass  # not allowed here: run at the usual priority
    return job.run()


def _clipOf(footage: Footage, camera: str, eventId: int | None, start: float, end: float) -> tuple[float, float]:
    """The range an export covers: the event's clip if asked (ExportRefused 404 if it has none)."""
    if eventId is None:
        return start, end
    event = footage.event(camera, eventId) if hasFootage(footage, camera) else None
    if event is None:
        raise ExportRefused(404, "camera %s has no event %d" % (camera, eventId))
    return event.clipStart, event.clipEnd + 0.001


def planExport(footage: Footage, camera: str, eventId: int | None, start: float, end: float,
               every: float | None) -> tuple[float, float, int]:
    """``(start, end, frames)`` of an export, checked (in a worker thread); ExportRefused if it cannot be made."""
    start, end = _clipOf(footage, camera, eventId, start, end)
    count = footage.count(camera, start, end) if hasFootage(footage, camera) else 0
    if every:
        count = min(count, int((end - start) / every) + 1)
    if not count:
        raise ExportRefused(404, "no recorded frames of %s in that range" % camera)
    if count > MAX_PAGE_EXPORT_FRAMES:
        raise ExportRefused(413, "that range holds %s; an export from the page takes at most %d:"
                            " choose a shorter range or a time-lapse, or use tcpcam export"
                            % (plural(count, "frame"), MAX_PAGE_EXPORT_FRAMES))
    return start, end, count


class ExportManager:
    """The export jobs of one recorder (see the module docstring)."""

    #: Jobs running at once.
    maxRunning = MAX_RUNNING_EXPORTS
    #: Jobs kept at once (running or ended, with their files).
    maxKept = MAX_KEPT_EXPORTS
    #: Seconds an ended job and its file are kept.
    keepSeconds = EXPORT_KEEP_SECONDS

    def __init__(self, out: str, reads: FootageReads, reactor: Any,
                 lowOnSpace: Callable[[], bool] | None = None) -> None:
        #: ``OUT/.exports``, and this run's folder in it.
        self.base = os.path.join(out, EXPORTS_FOLDER)
        self.folder = os.path.join(self.base, secrets.token_hex(6))
        self.root = out
        self._lock: int | None = None
        self.reads = reads
        self.reactor = reactor
        self.lowOnSpace = lowOnSpace
        self.jobs: dict[str, WebExport] = {}
        self.pool = ThreadPool(0, self.maxRunning, name="tcpcam-web-export")
        self._starting = 0
        self._loop = LoopingCall(self.cleanup)
        self._loop.clock = reactor
        #: Jobs started, and refused for the bounds.
        self.started = 0
        self.refused = 0

    def start(self) -> None:
        """Remove what earlier runs left, take this run's folder, start the threads and the clean-up."""
        removeLeftovers(self.base)
        try:
            os.makedirs(self.folder, exist_ok=True)
            self._lock = _holdLock(os.path.join(self.folder, LOCK_NAME))
        except OSError as error:
            log.warn("web interface: cannot make {folder} for exports: {error}", folder=self.folder,
                     error=error.strerror)
        self.pool.start()
        self._loop.start(CLEANUP_INTERVAL_SECONDS, now=False)

    def stop(self) -> None:
        """Cancel every job, wait for the threads, remove the files."""
        for export in self.jobs.values():
            export.job.cancel()
        if self._loop.running:
            self._loop.stop()
        self.pool.stop()
        self.jobs.clear()
        shutil.rmtree(self.folder, ignore_errors=True)
        if self._lock is not None:
            os.close(self._lock)
            self._lock = None
        try:
            os.rmdir(self.base)
        except OSError:
            pass  # another recorder's folder is in it (or it is gone)

    @property
    def running(self) -> int:
        """Jobs waiting for a thread or running, and jobs being checked before they start."""
        return self._starting + sum(1 for export in self.jobs.values() if export.state in ("new", "running"))

    def ofCamera(self, camera: str) -> list[WebExport]:
        """The camera's jobs, newest first."""
        return sorted((export for export in self.jobs.values() if export.camera == camera),
                      key=lambda export: export.created, reverse=True)

    def create(self, camera: str, address: str, start: float, end: float, every: float | None, fps: float,
               eventId: int | None = None) -> Deferred[WebExport]:
        """Check and start an export; fails with :class:`ExportRefused` (or ReadsBusy) if it cannot start."""
        if self.running >= self.maxRunning:
            self.refused += 1
            raise ExportRefused(429, "%d exports are being made already (at most %d at once): wait for one to"
                                " finish, or cancel one" % (self.running, self.maxRunning))
        if self.lowOnSpace is not None and self.lowOnSpace():
            self.refused += 1
            raise ExportRefused(507, "the disk is below the recorder's free-space floor: no room for an export")
        self._starting += 1

        def planned(plan: tuple[float, float, int]) -> WebExport:
            self._starting -= 1
            return self._start(camera, plan[0], plan[1], every, fps, eventId)

        def notPlanned(failure: Failure) -> Failure:
            self._starting -= 1
            return failure

        return self.reads.run(address, planExport, camera, eventId, start, end, every).addCallbacks(
            planned, notPlanned)

    def _start(self, camera: str, start: float, end: float, every: float | None, fps: float,
               eventId: int | None) -> WebExport:
        os.makedirs(self.folder, exist_ok=True)
        exportId = secrets.token_hex(8)
        job = ExportJob(self.root, camera, start, end, os.path.join(self.folder, exportId + ".mp4"),
                        every=every, fps=fps, opener=self.reads.opener)
        export = WebExport(exportId, camera, start, end, every, fps, job, self.reactor.seconds(), eventId)
        self._makeRoom()
        self.jobs[exportId] = export
        self.started += 1
        running = deferToThreadPool(self.reactor, self.pool, _runNiced, job)
        running.addBoth(self._ended, export)
        return export

    def _ended(self, result: object, export: WebExport) -> None:
        export.ended = self.reactor.seconds()
        if isinstance(result, Failure):
            if result.check(ExportError):
                if export.state == "failed":
                    log.info("web interface: the export of {camera} failed: {error}", camera=export.camera,
                             error=export.job.error)
            else:
                log.failure("web interface: an export failed", result)
        if export.id not in self.jobs:
            self._remove(export)  # forgotten while it ran (the recorder is stopping)

    def _makeRoom(self) -> None:
        ended = sorted((export for export in self.jobs.values() if export.ended is not None),
                       key=lambda export: export.ended or 0.0)
        while len(self.jobs) >= self.maxKept and ended:
            self.forget(ended.pop(0))

    def forget(self, export: WebExport) -> None:
        """Forget an ended job and remove its file."""
        self.jobs.pop(export.id, None)
        self._remove(export)

    def _remove(self, export: WebExport) -> None:
        self.reads.pool.callInThread(removeQuietly, export.path)

    def cancel(self, exportId: str) -> WebExport | None:
        """Cancel a job (nothing happens to one that ended); None if there is no such job."""
        export = self.jobs.get(exportId)
        if export is None:
            return None
        if export.ended is None:
            export.job.cancel()
            if export.state == "cancelled":  # it had not started: it never will
                export.ended = self.reactor.seconds()
        return export

    def cleanup(self) -> None:
        """Forget the jobs that ended more than :attr:`keepSeconds` ago, and remove their files."""
        now = self.reactor.seconds()
        for export in list(self.jobs.values()):
            if export.ended is not None and now - export.ended >= self.keepSeconds:
                self.forget(export)


def _exportQuery(request: Request) -> tuple[float, float, float | None, float, int | None]:
    """``(from, to, every, fps, event)`` of a POST to ``exports``."""
    every = fps = None
    if query.argument(request, "every") not in (None, ""):
        every = query.number(request, "every", MIN_EVERY_SECONDS, MAX_EVERY_SECONDS)
        fps = query.number(request, "fps", MIN_FPS, MAX_FPS, TIMELAPSE_FPS)
    if query.argument(request, "event") not in (None, ""):
        if query.argument(request, "from") is not None or query.argument(request, "to") is not None:
            raise BadQuery("give either event or from and to, not both")
        return 0.0, 0.0, every, fps or TIMELAPSE_FPS, query.integer(request, "event", 1, MAX_EVENT_ID)
    start, end = query.moment(request, "from"), query.moment(request, "to")
    if not end > start:
        raise BadQuery("to must be after from")
    if end - start > MAX_EXPORT_SECONDS:
        raise BadQuery("that range is too long for an export from the page: at most %s"
                       % query.describeSeconds(MAX_EXPORT_SECONDS))
    return start, end, every, fps or TIMELAPSE_FPS, None


def _json(request: Request, value: object, code: int = 200) -> bytes:
    answer = Answer.json(value, code)
    request.setResponseCode(code)
    request.setHeader(b"content-type", answer.contentType)
    request.setHeader(b"cache-control", NO_CACHE)
    return answer.body


class ExportsResource(Resource):
    """``/NAME/exports``: this camera's jobs (GET), a new one (POST), and each job below."""

    def __init__(self, manager: ExportManager, camera: str) -> None:
        Resource.__init__(self)
        self.manager = manager
        self.camera = camera

    def render_GET(self, request: Request) -> bytes:
        """The camera's jobs, newest first."""
        keep = self.manager.keepSeconds
        return _json(request, {"camera": self.camera, "max_running": self.manager.maxRunning,
                               "exports": [export.asDict(keep) for export in self.manager.ofCamera(self.camera)]})

    def render_POST(self, request: Request) -> bytes | int:
        """Start an export: 202 and the job, or one line saying why not."""
        if not sameOrigin(request):
            return plainText(request, 403, "this request was sent from another site")
        try:
            start, end, every, fps, eventId = _exportQuery(request)
        except BadQuery as error:
            return plainText(request, 400, str(error))
        try:
            creating = self.manager.create(self.camera, clientHost(request), start, end, every, fps, eventId)
        except ExportRefused as refusal:
            return plainText(request, refusal.code, str(refusal), retryAfter=5 if refusal.code == 429 else None)
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def started(export: WebExport) -> None:
            if not gone:
                writeAnswer(request, Answer.json(export.asDict(self.manager.keepSeconds), 202))

        def refused(failure: Failure) -> None:
            if failure.check(ExportRefused, ReadsBusy):
                answer = Answer.text(failure.value.code, str(failure.value))
            else:
                log.failure("web interface: starting an export failed", failure)
                answer = Answer.text(500, "the export could not start")
            if not gone:
                writeAnswer(request, answer)

        creating.addCallbacks(started, refused)
        return NOT_DONE_YET

    def getChild(self, path: bytes, request: Request) -> IResource:
        """``ID.json``, ``ID.mp4`` or ``ID/cancel`` of a job of this camera."""
        name, dot, suffix = path.decode("ascii", "replace").partition(".")
        export = self.manager.jobs.get(name)
        if export is None or export.camera != self.camera:
            return PlainError(404, "no such export (exports are kept %s after they end)"
                              % query.describeSeconds(self.manager.keepSeconds))
        if dot and suffix == "json" and not request.postpath:
            return ExportStatus(self.manager, export)
        if dot and suffix == "mp4" and not request.postpath:
            return ExportDownload(self.manager, export)
        if not dot and request.postpath == [b"cancel"]:
            return ExportCancel(self.manager, export)
        return PlainError(404, "no such page")


class ExportStatus(Resource):
    """``exports/ID.json``: the job's progress."""

    isLeaf = True

    def __init__(self, manager: ExportManager, export: WebExport) -> None:
        Resource.__init__(self)
        self.manager = manager
        self.export = export

    def render_GET(self, request: Request) -> bytes:
        """The job as JSON."""
        return _json(request, self.export.asDict(self.manager.keepSeconds))


class ExportCancel(Resource):
    """``exports/ID/cancel`` (POST): stop the job."""

    isLeaf = True

    def __init__(self, manager: ExportManager, export: WebExport) -> None:
        Resource.__init__(self)
        self.manager = manager
        self.export = export

    def render_POST(self, request: Request) -> bytes:
        """Cancel, and answer the job as JSON."""
        if not sameOrigin(request):
            return plainText(request, 403, "this request was sent from another site")
        self.manager.cancel(self.export.id)
        return _json(request, self.export.asDict(self.manager.keepSeconds))


class ExportDownload(Resource):
    """``exports/ID.mp4``: the file of a job that is done, sent from the worker threads."""

    isLeaf = True

    def __init__(self, manager: ExportManager, export: WebExport) -> None:
        Resource.__init__(self)
        self.manager = manager
        self.export = export

    def render_GET(self, request: Request) -> bytes | int:
        """Send the file as a download (409 while the job is not done)."""
        export = self.export
        if export.state != "done":
            return plainText(request, 409, "export %s is not done (it is %s)" % (export.id, export.state))
        address = clientHost(request)
        reads = self.manager.reads
        try:
            reads.check(address)
        except ReadsBusy as busy:
            return plainText(request, busy.code, str(busy), retryAfter=1)
        gone: list[bool] = []
        request.notifyFinish().addErrback(lambda _: gone.append(True))

        def opened(found: tuple[Any, int] | None) -> None:
            if found is None:
                if not gone:
                    writeAnswer(request, Answer.text(404, "the file of export %s is gone" % export.id))
                return
            handle, size = found
            if gone:
                handle.close()
                return
            request.setHeader(b"content-type", b"video/mp4")
            request.setHeader(b"content-length", b"%d" % size)
            request.setHeader(b"cache-control", NO_CACHE)
            request.setHeader(b"content-disposition", b'attachment; filename="%s"' % export.name.encode("ascii"))
            FileSender(request, reads, handle, address).start()

        def failed(failure: Failure) -> None:
            if not gone:
                writeAnswer(request, Answer.text(503, "the file cannot be read now; try again"))

        reads.run(address, openForReading, export.path).addCallbacks(opened, failed)
        return NOT_DONE_YET
