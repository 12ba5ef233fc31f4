"""Export: recorded frames to an H.264 MP4 (PyAV's libx264), at recorded pace or as a time-lapse.

:func:`encode` takes ``(time, jpeg)`` pairs and writes an MP4 that browsers
play: H.264 (``preset`` :data:`PRESET`, ``crf`` :data:`CRF`), yuv420p in
limited ("MPEG") range, ``+faststart``. Each frame's presentation time is its
recorded time in milliseconds from the first frame (time base 1/1000), so
variable frame intervals and gaps are kept as they were. A time-lapse
(``timelapseFps``) gives the frames it is handed consecutive slots of
1/``timelapseFps`` s instead; :class:`ExportJob` picks one frame every
``every`` seconds *before* reading or decoding (see
:meth:`~tcpcam.record.footage.Footage.frames`).

Two PyAV pitfalls are handled: frames from the MJPEG decoder come out
full-range and marked as intra pictures, so each is converted with
``dst_color_range="MPEG"`` and given ``pict_type`` NONE (else x264 makes
every frame a keyframe). Times that do not increase are bumped by 1 ms;
frames the decoder cannot read are skipped and counted. Memory holds one
frame and the encoder's look-ahead.

The file is written under a temporary name in the same folder and renamed
when complete, so ``FILE`` is always whole or absent. An
:class:`ExportJob` runs in a thread (``job.start()`` returns a Deferred), with
``job.progress`` and ``job.cancel()``, for the web pages; ``tcpcam export``
runs one in the foreground.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from fractions import Fraction
from typing import Any

from tcpcam.common.atomic import removeQuietly, temporaryName

#: x264 preset: about 150 frames/s of VGA on one core.
PRESET = "veryfast"
#: x264 constant rate factor (lower is better and bigger).
CRF = "23"
#: Frames per second of a time-lapse.
TIMELAPSE_FPS = 10.0
#: The stream's nominal rate (only the last frame's duration depends on it).
NOMINAL_RATE = 10
#: Most frames one export takes (about 28 hours at 10 frames/s).
MAX_EXPORT_FRAMES = 1_000_000

_MS = Fraction(1, 1000)


class ExportError(Exception):
    """An export cannot be made; the message is one line for the user."""


class ExportCancelled(ExportError):
    """The export was cancelled; nothing was left behind."""


@dataclass
class ExportResult:
    """What an export wrote."""

    path: str
    frames: int
    skipped: int
    durationMs: int
    width: int
    height: int


def encode(frames: Iterable[tuple[float, bytes]], path: str, timelapseFps: float | None = None,
           progress: Callable[[int], object] | None = None, cancelled: Callable[[], bool] | None = None,
           maxFrames: int = MAX_EXPORT_FRAMES) -> ExportResult:
    """Encode ``(time in seconds, jpeg)`` pairs into the MP4 file ``path`` (see the module docstring).

    ``progress(frames done)`` is called after each frame; ``cancelled()``
    returning True stops the export with :class:`ExportCancelled`. Raises
    :class:`ExportError` when no frame could be encoded.
    """
    import av
    from av.video.frame import PictureType

    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        raise ExportError("cannot write %s: no folder %s" % (path, folder))
    temporary = temporaryName(os.path.abspath(path))
    decoder = av.CodecContext.create("mjpeg", "r")
    done = skipped = 0
    width = height = 0
    firstMs: int | None = None
    lastPts = -1
    stepMs = 1000.0 / timelapseFps if timelapseFps else 0.0
    try:
        with av.open(temporary, "w", format="mp4", options={"movflags": "+faststart"}) as output:
            stream: Any = None
            for when, data in frames:
                if cancelled is not None and cancelled():
                    raise ExportCancelled("export to %s cancelled" % path)
                if done >= maxFrames:
                    break
                if not data:
                    skipped += 1
                    continue
                try:
                    decoded = decoder.decode(av.Packet(data))
                except (av.error.InvalidDataError, ValueError):
                    skipped += 1
                    continue
                if not decoded:
                    skipped += 1
                    continue
                picture = decoded[0]
                if stream is None:
                    width, height = picture.width & ~1, picture.height & ~1
                    if width < 2 or height < 2:
                        skipped += 1
                        continue
                    stream = output.add_stream("libx264", rate=NOMINAL_RATE,
                                               options={"preset": PRESET, "crf": CRF})
                    stream.width, stream.height, stream.pix_fmt = width, height, "yuv420p"
                    stream.time_base = _MS
                    stream.codec_context.time_base = _MS
                timeMs = int(round(when * 1000))
                if firstMs is None:
                    firstMs = timeMs
                pts = int(round(done * stepMs)) if stepMs else timeMs - firstMs
                if pts <= lastPts:
                    pts = lastPts + 1
                frame = picture.reformat(width=width, height=height, format="yuv420p", dst_color_range="MPEG")
                frame.pts = pts
                frame.time_base = _MS
                frame.pict_type = PictureType.NONE
                for packet in stream.encode(frame):
                    output.mux(packet)
                lastPts = pts
                done += 1
                if progress is not None:
                    progress(done)
            if stream is None:
                raise ExportError("no frame to export (%d could not be decoded)" % skipped if skipped
                                  else "no frame to export")
            for packet in stream.encode(None):
                output.mux(packet)
        os.replace(temporary, path)
    except BaseException:
        removeQuietly(temporary)
        raise
    durationMs = lastPts + (int(round(stepMs)) if stepMs else 1000 // NOMINAL_RATE)
    return ExportResult(path, done, skipped, durationMs, width, height)


class ExportJob:
    """One export of a camera's footage (see the module docstring), run once.

    ``state`` goes ``new`` -> ``running`` -> ``done`` | ``failed`` |
    ``cancelled``; :attr:`progress` is a JSON-ready dict; :attr:`result` is
    the :class:`ExportResult` once done and :attr:`error` the one-line reason
    of a failure.
    """

    def __init__(self, root: str, camera: str, start: float, end: float, path: str, every: float | None = None,
                 fps: float = TIMELAPSE_FPS, opener: Callable[[], Any] | None = None) -> None:
        if not end > start:
            raise ValueError("the export's end must be after its start")
        if every is not None and not every > 0:
            raise ValueError("--every must be above 0 seconds")
        self.root = root
        self.camera = camera
        self.start_ = start
        self.end = end
        self.path = path
        self.every = every
        self.fps = fps
        #: Makes the footage reader the job reads (default: a Footage of ``root``; the fleet's reads S3).
        self.opener = opener
        self.state = "new"
        self.total = 0
        self.done = 0
        self.result: ExportResult | None = None
        self.error: str | None = None
        self._cancel = threading.Event()

    @property
    def progress(self) -> dict[str, object]:
        """``{"state", "done", "total", "fraction", "error", "path"}``."""
        fraction = min(1.0, self.done / self.total) if self.total else (1.0 if self.state == "done" else 0.0)
        return {"state": self.state, "done": self.done, "total": self.total, "fraction": round(fraction, 4),
                "error": self.error, "path": self.path}

    def cancel(self) -> None:
        """Ask the export to stop; it removes its temporary file."""
        self._cancel.set()
        if self.state == "new":
            self.state = "cancelled"

    def run(self, onProgress: Callable[[ExportJob], object] | None = None) -> ExportResult:
        """Export now, in this thread; raises ExportError (or ExportCancelled)."""
        from tcpcam.record.footage import Footage

        if self.state == "cancelled":
            raise ExportCancelled("export to %s cancelled" % self.path)
        if self.state != "new":
            raise ExportError("an export job runs once")
        self.state = "running"
        footage = self.opener() if self.opener is not None else Footage(self.root)
        try:
            count = footage.count(self.camera, self.start_, self.end)
            if self.every:
                count = min(count, int((self.end - self.start_) / self.every) + 1)
            self.total = min(count, MAX_EXPORT_FRAMES)
            if not count:
                raise ExportError("no frames of %s in that time range" % self.camera)

            def progressed(done: int) -> None:
                self.done = done
                if onProgress is not None:
                    onProgress(self)

            self.result = encode(footage.frames(self.camera, self.start_, self.end, every=self.every), self.path,
                                 timelapseFps=self.fps if self.every else None, progress=progressed,
                                 cancelled=self._cancel.is_set)
        except ExportCancelled as error:
            self.state, self.error = "cancelled", str(error)
            raise
        except ExportError as error:
            self.state, self.error = "failed", str(error)
            raise
        except Exception as error:
            self.state, self.error = "failed", "%s: %s" % (type(error).__name__, error)
            raise ExportError(self.error) from error
        finally:
            footage.close()
        self.state = "done"
        return self.result

    def start(self, reactor: Any = None) -> Any:
        """Run in the reactor's thread pool; returns a Deferred firing with the :class:`ExportResult`."""
        from twisted.internet import threads

        if reactor is None:
            from twisted.internet import reactor
        return threads.deferToThreadPool(reactor, reactor.getThreadPool(), self.run)
