"""A protocol 2 camera's health figures, kept bounded, and the ones exported as Prometheus gauges.

Also :func:`printable`, for any text the camera sends that ends up in a log
line, ``events.jsonl`` or ``/status.json``.

The camera sends its health every few seconds (free heap, largest free
block, uptime, reset cause, WiFi signal, capture errors, clients...; see
docs/protocol.md). It is the camera's word, so :func:`cleanHealth` keeps at
most :data:`MAX_FIGURES` figures with short plain names and short scalar
values; :data:`GAUGES` lists the few numeric figures ``/metrics`` exports,
so the metric names never depend on what a camera sends.
"""

from __future__ import annotations

import math
import re
from typing import Any

#: Figures kept of one health message.
MAX_FIGURES = 32
#: Longest name of a figure kept.
MAX_NAME_CHARS = 40
#: Longest text value kept (longer ones are cut).
MAX_TEXT_CHARS = 120
#: Integers at or beyond this size are not kept (they would not survive JSON readers nor gauges).
MAX_INTEGER = 1 << 63
#: (figure, metric name, help) of the figures exported as gauges, one sample per camera.
GAUGES = (
    ("free_heap", "tcpcam_camera_free_heap_bytes", "Free heap the camera reports, in bytes."),
    ("largest_free_block", "tcpcam_camera_largest_free_block_bytes",
     "Largest free block of the camera's heap, in bytes."),
    ("uptime_s", "tcpcam_camera_uptime_seconds", "Seconds since the camera started."),
    ("wifi_rssi", "tcpcam_camera_wifi_rssi_dbm", "WiFi signal strength the camera reports, in dBm."),
    ("capture_errors", "tcpcam_camera_capture_errors", "Failed captures the camera reports since it started."),
    ("clients", "tcpcam_camera_clients", "Clients the camera serves."),
)

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")


def cleanHealth(facts: object) -> dict[str, Any]:
    """The figures of a health message worth keeping: plain names, scalar values, bounded in number and size."""
    kept: dict[str, Any] = {}
    if not isinstance(facts, dict):
        return kept
    for name, value in facts.items():
        if len(kept) >= MAX_FIGURES:
            break
        if not isinstance(name, str) or len(name) > MAX_NAME_CHARS or not _NAME.match(name):
            continue
        if value is None or isinstance(value, bool):
            kept[name] = value
        elif isinstance(value, int):
            kept[name] = value if abs(value) < MAX_INTEGER else None
        elif isinstance(value, float):
            kept[name] = value if math.isfinite(value) else None
        elif isinstance(value, str):
            kept[name] = printable(value)
    return kept


def printable(text: str, limit: int = MAX_TEXT_CHARS) -> str:
    """The camera's ``text`` fit for one log line: control characters as ``?``, at most ``limit`` characters."""
    return "".join(char if char.isprintable() else "?" for char in text[:limit])


def numeric(value: object) -> float | None:
    """``value`` as a gauge's float, or None when it is not a finite number (a bool is not one)."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        return None
    if isinstance(value, int) and abs(value) >= MAX_INTEGER:
        return None
    number = float(value)
    return number if math.isfinite(number) else None
