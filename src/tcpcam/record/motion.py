"""Motion detection: a cheap background model per camera, an event state machine, one worker thread.

- :class:`MotionDetector` decodes a frame at 1/8 scale in gray (Pillow's
  ``draft``: libjpeg scales while decoding, so a VGA frame becomes 80x60),
  compares it with a slowly adapting background (a float32 running average,
  numpy), ignores the masked zones and reports the share of the picture that
  changed (the *score*, 0 to 1) and the bounding box of the change in picture
  pixels.
- :class:`MotionEvents` turns scores into events, sans-IO (times in, events
  out): an event starts at the first frame whose score reaches the threshold
  and ends once no frame has reached it for ``postRoll`` seconds; it keeps
  its peak score, the region and the time of the peak.
- :class:`MotionWorker` runs both for every camera off the reactor, in one
  thread. Each camera has a slot for one frame: a frame that arrives while
  the previous one still waits replaces it (counted as skipped), so the
  worker never falls behind by more than one frame per camera. Results go
  back to the reactor with ``callFromThread``.
"""

from __future__ import annotations

import io
import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

#: Decode at 1/SCALE of the picture's width and height.
SCALE = 8
#: Share of the new frame mixed into the background at each analysed frame.
BACKGROUND_ALPHA = 0.05
#: A small pixel changed when it differs from the background by more than this many gray levels.
PIXEL_DELTA = 20
#: Longest side of an event's thumbnail, in pixels.
THUMBNAIL_SIZE = 320
#: JPEG quality of thumbnails.
THUMBNAIL_QUALITY = 70
#: A new peak gets a new thumbnail only if it beats the one pictured by this factor.
THUMBNAIL_BETTER = 1.2


class MotionDetector:
    """Score frames against a slowly adapting background (see the module docstring).

    ``mask`` holds ``(x0, y0, x1, y1)`` rectangles in fractions of the
    picture (0 to 1) to ignore. The first frame (and the first after the
    picture size changes) only sets the background and scores 0.
    """

    def __init__(self, mask: Sequence[tuple[float, float, float, float]] = (), scale: int = SCALE,
                 alpha: float = BACKGROUND_ALPHA, pixelDelta: int = PIXEL_DELTA) -> None:
        self.mask = tuple(mask)
        self.scale = scale
        self.alpha = alpha
        self.pixelDelta = pixelDelta
        self._background: Any = None
        self._keep: Any = None
        self._kept = 0
        self.size: tuple[int, int] | None = None

    def decode(self, jpeg: bytes) -> tuple[Any, tuple[int, int]]:
        """``(gray array at reduced scale, full picture size)``; OSError for a picture Pillow cannot read."""
        from PIL import Image

        image = Image.open(io.BytesIO(jpeg))
        size = image.size
        image.draft("L", (max(1, size[0] // self.scale), max(1, size[1] // self.scale)))
        small = image.convert("L") if image.mode != "L" else image
        return np.asarray(small, dtype=np.float32), size

    def analyse(self, jpeg: bytes) -> tuple[float, tuple[int, int, int, int] | None]:
        """``(score, region)`` of one frame: region in picture pixels, None if nothing changed."""
        gray, size = self.decode(jpeg)
        if self._background is None or self._background.shape != gray.shape or self.size != size:
            self._background = gray.copy()
            self.size = size
            self._keep = self._maskArray(gray.shape)
            self._kept = max(1, int(self._keep.sum()))
            return 0.0, None
        changed = np.abs(gray - self._background) > self.pixelDelta
        changed &= self._keep
        score = float(changed.sum()) / self._kept
        region = None
        if score > 0:
            rows = np.flatnonzero(changed.any(axis=1))
            columns = np.flatnonzero(changed.any(axis=0))
            sx = size[0] / gray.shape[1]
            sy = size[1] / gray.shape[0]
            region = (int(columns[0] * sx), int(rows[0] * sy),
                      min(size[0], int((columns[-1] + 1) * sx)), min(size[1], int((rows[-1] + 1) * sy)))
        self._background *= 1.0 - self.alpha
        self._background += self.alpha * gray
        return score, region

    def _maskArray(self, shape: tuple[int, ...]) -> Any:
        keep = np.ones(shape, dtype=bool)
        height, width = shape[0], shape[1]
        for x0, y0, x1, y1 in self.mask:
            keep[int(y0 * height):max(int(y0 * height) + 1, int(round(y1 * height))),
                 int(x0 * width):max(int(x0 * width) + 1, int(round(x1 * width)))] = False
        return keep


@dataclass
class MotionEvent:
    """One event as it goes: times in integer milliseconds."""

    startMs: int
    peakMs: int
    peakScore: float
    region: tuple[int, int, int, int] | None
    lastMotionMs: int
    preRollMs: int
    postRollMs: int
    endMs: int | None = None
    thumbnail: bytes | None = None
    thumbnailScore: float = 0.0
    #: The index row's id, set by the disk writer once stored.
    row: dict[str, object] = field(default_factory=dict)

    def columns(self) -> dict[str, object]:
        """The event as the ``events`` table's columns (updating :attr:`row` in place, which keeps its id)."""
        x0, y0, x1, y1 = self.region if self.region else (None, None, None, None)
        self.row.update({"start_ms": self.startMs, "end_ms": self.endMs, "peak_ms": self.peakMs,
                         "peak_score": self.peakScore, "x0": x0, "y0": y0, "x1": x1, "y1": y1,
                         "pre_roll_ms": self.preRollMs, "post_roll_ms": self.postRollMs,
                         "thumbnail": self.thumbnail})
        return self.row


class MotionEvents:
    """Scores in, ``("start" | "peak" | "end", MotionEvent)`` out (see the module docstring)."""

    def __init__(self, threshold: float, preRoll: float, postRoll: float) -> None:
        self.threshold = threshold
        self.preRollMs = int(round(preRoll * 1000))
        self.postRollMs = int(round(postRoll * 1000))
        self.current: MotionEvent | None = None

    def feed(self, timeMs: int, score: float,
             region: tuple[int, int, int, int] | None) -> list[tuple[str, MotionEvent]]:
        """One analysed frame: returns what changed."""
        out: list[tuple[str, MotionEvent]] = []
        event = self.current
        if event is not None and timeMs - event.lastMotionMs > self.postRollMs:
            event.endMs = event.lastMotionMs
            self.current = None
            out.append(("end", event))
            event = None
        if score < self.threshold:
            return out
        if event is None:
            event = self.current = MotionEvent(timeMs, timeMs, score, region, timeMs, self.preRollMs,
                                               self.postRollMs)
            out.append(("start", event))
            return out
        event.lastMotionMs = timeMs
        if score > event.peakScore:
            event.peakScore, event.peakMs, event.region = score, timeMs, region
            out.append(("peak", event))
        return out

    def flush(self) -> MotionEvent | None:
        """End the event going on (the camera stops); returns it, or None."""
        event, self.current = self.current, None
        if event is not None:
            event.endMs = event.lastMotionMs
        return event


def thumbnail(jpeg: bytes, size: int = THUMBNAIL_SIZE, quality: int = THUMBNAIL_QUALITY) -> bytes:
    """A small JPEG of ``jpeg``: at most ``size`` pixels on its longest side."""
    from PIL import Image

    source = Image.open(io.BytesIO(jpeg))
    source.draft("RGB", (size, size))
    image = source.convert("RGB")
    image.thumbnail((size, size))
    out = io.BytesIO()
    image.save(out, "JPEG", quality=quality)
    return out.getvalue()


@dataclass
class MotionStats:
    """One camera's motion counters; the worker updates them, anyone reads them."""

    analysed: int = 0
    skipped: int = 0
    errors: int = 0
    events: int = 0
    score: float = 0.0
    active: bool = False


class _Camera:
    def __init__(self, name: str, detector: MotionDetector, events: MotionEvents,
                 report: Callable[[str, MotionEvent], object]) -> None:
        self.name = name
        self.detector = detector
        self.events = events
        self.report = report
        self.stats = MotionStats()
        self.pending: tuple[bytes, int] | None = None


class MotionWorker:
    """The motion thread of a recorder (see the module docstring).

    ``report(kind, event)`` of each camera is called in the reactor thread
    with ``kind`` ``"start"``, ``"peak"`` or ``"end"``.
    """

    def __init__(self, reactor: Any) -> None:
        self._reactor = reactor
        self._cameras: dict[str, _Camera] = {}
        self._order: list[_Camera] = []
        self._condition = threading.Condition()
        self._stopping = False
        self._thread: threading.Thread | None = None
        self._next = 0
        self._started = False

    def addCamera(self, name: str, threshold: float, mask: Sequence[tuple[float, float, float, float]],
                  preRoll: float, postRoll: float, report: Callable[[str, MotionEvent], object]) -> MotionStats:
        """Watch one camera; returns its counters."""
        camera = _Camera(name, MotionDetector(mask), MotionEvents(threshold, preRoll, postRoll), report)
        with self._condition:
            self._cameras[name] = camera
            self._order.append(camera)
        if self._started:
            self.start()
        return camera.stats

    def removeCamera(self, name: str) -> MotionEvent | None:
        """Stop watching one camera; returns its event still going on, now ended, if any."""
        with self._condition:
            camera = self._cameras.pop(name, None)
            if camera is None:
                return None
            self._order.remove(camera)
            self._next = 0
        event = camera.events.flush()
        camera.stats.active = False
        return event

    def submit(self, name: str, frame: bytes, timeMs: int) -> None:
        """Offer one frame of camera ``name``; replaces (and counts) one still waiting."""
        camera = self._cameras[name]
        with self._condition:
            if camera.pending is not None:
                camera.stats.skipped += 1
            camera.pending = (frame, timeMs)
            self._condition.notify()

    def start(self) -> None:
        """Start the thread (if any camera is watched; else once one is added)."""
        self._started = True
        if self._order and self._thread is None:
            self._thread = threading.Thread(target=self._run, name="tcpcam-motion", daemon=True)
            self._thread.start()

    def stop(self) -> list[tuple[str, MotionEvent]]:
        """Stop the thread (waiting at most a few seconds); returns the events still going on, now ended."""
        with self._condition:
            self._stopping = True
            self._condition.notify()
        if self._thread is not None:
            self._thread.join(5)
        ended = []
        for camera in self._order:
            event = camera.events.flush()
            if event is not None:
                camera.stats.active = False
                ended.append((camera.name, event))
        return ended

    def _take(self) -> tuple[_Camera, bytes, int] | None:
        with self._condition:
            while True:
                if self._stopping:
                    return None
                for step in range(len(self._order)):
                    camera = self._order[(self._next + step) % len(self._order)]
                    if camera.pending is not None:
                        self._next = (self._next + step + 1) % len(self._order)
                        frame, timeMs = camera.pending
                        camera.pending = None
                        return camera, frame, timeMs
                self._condition.wait()

    def _run(self) -> None:
        while True:
            taken = self._take()
            if taken is None:
                return
            camera, frame, timeMs = taken
            self.analyse(camera, frame, timeMs)

    def analyse(self, camera: _Camera, frame: bytes, timeMs: int) -> None:
        """Score one frame and report the event changes (in the worker thread)."""
        stats = camera.stats
        try:
            score, region = camera.detector.analyse(frame)
        except (OSError, ValueError, SyntaxError):
            stats.errors += 1
            return
        stats.analysed += 1
        stats.score = score
        for kind, event in camera.events.feed(timeMs, score, region):
            if kind in ("start", "peak") and (event.thumbnail is None
                                              or event.peakScore > event.thumbnailScore * THUMBNAIL_BETTER):
                try:
                    event.thumbnail = thumbnail(frame)
                    event.thumbnailScore = event.peakScore
                except (OSError, ValueError):
                    pass
            if kind == "start":
                stats.events += 1
                stats.active = True
            elif kind == "end":
                stats.active = False
            self._reactor.callFromThread(camera.report, kind, event)
