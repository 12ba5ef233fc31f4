"""The per-camera ``events.jsonl``: one JSON line per connect, disconnect and bad frame."""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from typing import Any, BinaryIO


class EventLog:
    """Append events to ``path`` as JSON lines.

    Each line has ``time`` (ISO 8601, local time with offset), ``ts`` (Unix
    seconds), ``event`` and the event's fields. The file is opened for each
    line, so a disk that fails and recovers never leaves it stuck; a line
    that cannot be written whole is cut off again and raises OSError for
    the caller to handle.

    The file is bounded: once it holds :attr:`maxBytes`, it is renamed to
    ``events.jsonl.1`` (replacing the previous one) and a new file begins, so
    a camera that sends bad frames all day fills at most twice that.
    """

    #: Size at which the log is rotated to ``PATH.1``.
    maxBytes = 16 * 1024 * 1024

    def __init__(self, path: str, clock: Callable[[], float] = time.time, maxBytes: int | None = None) -> None:
        self.path = path
        self._clock = clock
        if maxBytes is not None:
            self.maxBytes = maxBytes

    def append(self, event: str, **fields: object) -> dict[str, object]:
        """Write one event line, stamped now; returns the dict written."""
        return self.appendAt(self._clock(), event, **fields)

    def appendAt(self, now: float, event: str, **fields: object) -> dict[str, object]:
        """Write one event line stamped ``now`` (Unix seconds); returns the dict written."""
        record: dict[str, object] = {"time": _isoTime(now), "ts": round(now, 3), "event": event}
        record.update(fields)
        line = json.dumps(record, sort_keys=False) + "\n"
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        self._rotateIfFull()
        with open(self.path, "ab", buffering=0) as handle:
            start = handle.tell()
            view = memoryview(line.encode("utf-8"))
            try:
                while view:
                    view = view[handle.write(view):]
            except OSError:
                # Cut off a line written in part, so every line stays whole JSON.
                _truncateQuietly(handle, start)
                raise
        return record

    def _rotateIfFull(self) -> None:
        try:
            size = os.path.getsize(self.path)
        except FileNotFoundError:
            return
        if size >= self.maxBytes:
            os.replace(self.path, self.path + ".1")


def _truncateQuietly(handle: BinaryIO, size: int) -> None:
    try:
        handle.truncate(size)
    except (OSError, ValueError):
        pass


def _isoTime(when: float) -> str:
    local = time.localtime(when)
    offset = local.tm_gmtoff or 0
    sign = "+" if offset >= 0 else "-"
    offset = abs(offset)
    return "%s.%03d%s%02d:%02d" % (
        time.strftime("%Y-%m-%dT%H:%M:%S", local), int(when * 1000) % 1000,
        sign, offset // 3600, offset % 3600 // 60,
    )


def readEvents(path: str) -> list[dict[str, Any]]:
    """Return the events of an ``events.jsonl`` file as a list of dicts."""
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]
