"""The recording folder's layout: where each frame goes, and how names are read back.

::

    OUT/CAMERA/events.jsonl                      the camera's event log
    OUT/CAMERA/index.sqlite3                     the segment index (format segments)
    OUT/CAMERA/YYYY-MM-DD/HH-MM-SS.mmm.mjpeg     one segment: concatenated JPEGs (format segments)
    OUT/CAMERA/YYYY-MM-DD/HH-MM-SS.mmm_SEQ.jpg   one picture (format jpg, local time)
    OUT/CAMERA/YYYY-MM-DD/HH.mjpeg               one hour of pictures (the old format mjpeg)

The recorder writes these names, retention and the replay source read them;
all of them go through this module.
"""

from __future__ import annotations

import datetime
import re
import time

#: The event log's name in each camera's folder.
EVENTS_NAME = "events.jsonl"
#: The segment index's name in each camera's folder.
INDEX_NAME = "index.sqlite3"
#: What a segment file's name ends with.
SEGMENT_SUFFIX = ".mjpeg"

_DAY = re.compile(r"^(\d{4})-(\d\d)-(\d\d)$")
_PICTURE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)\.(\d{3})_(\d+)\.jpe?g$", re.IGNORECASE)
_HOUR_FILE = re.compile(r"^(\d\d)\.mjpeg$", re.IGNORECASE)
_SEGMENT = re.compile(r"^(\d\d)-(\d\d)-(\d\d)\.(\d{3})(?:-\d+)?\.mjpeg$")
_EPOCH = datetime.date(1970, 1, 1)


def dayName(when: float) -> str:
    """The day folder of a moment (Unix seconds, local time): ``2026-12-01``."""
    return time.strftime("%Y-%m-%d", time.localtime(when))


def pictureName(when: float, seq: int) -> str:
    """The file name of one picture: ``HH-MM-SS.mmm_SEQ.jpg``."""
    return "%s.%03d_%06d.jpg" % (time.strftime("%H-%M-%S", time.localtime(when)), int(when * 1000) % 1000, seq)


def hourFileName(when: float) -> str:
    """The file name of an hour's pictures: ``HH.mjpeg``."""
    return "%02d.mjpeg" % time.localtime(when).tm_hour


def segmentName(when: float, clash: int = 0) -> str:
    """The file name of a segment whose first frame is at ``when``: ``HH-MM-SS.mmm.mjpeg``.

    ``clash`` > 0 gives ``HH-MM-SS.mmm-N.mjpeg``, for a name already taken
    (the clock went back).
    """
    stem = "%s.%03d" % (time.strftime("%H-%M-%S", time.localtime(when)), int(when * 1000) % 1000)
    return "%s%s%s" % (stem, "-%d" % clash if clash else "", SEGMENT_SUFFIX)


def segmentStart(day: str, name: str) -> float | None:
    """Unix seconds of a segment's first frame from its day folder and file name, or None."""
    match = _SEGMENT.match(name)
    if match is None or dayNumber(day) is None:
        return None
    hours, minutes, seconds, millis = (int(part) for part in match.groups())
    year, month, mday = (int(part) for part in day.split("-"))
    moment = time.mktime((year, month, mday, hours, minutes, seconds, 0, 0, -1))
    return moment + millis / 1000.0


def isSegmentName(name: str) -> bool:
    """True for a segment file's name."""
    return _SEGMENT.match(name) is not None


def isDayName(name: str) -> bool:
    """True for a day folder's name."""
    return dayNumber(name) is not None


def dayNumber(name: str) -> int | None:
    """Days since 1970-01-01 for a ``YYYY-MM-DD`` folder name, or None."""
    match = _DAY.match(name)
    if match is None:
        return None
    try:
        day = datetime.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None
    return (day - _EPOCH).days


def recordingTime(name: str) -> tuple[float, int] | None:
    """``(seconds into the day, sequence)`` from a recorded file's name, or None.

    An hourly ``HH.mjpeg`` file counts as sequence -1 at the start of its hour.
    """
    match = _PICTURE.match(name)
    if match is None:
        hour = _HOUR_FILE.match(name)
        return None if hour is None else (int(hour.group(1)) * 3600.0, -1)
    hours, minutes, seconds, millis, sequence = (int(part) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000.0, sequence


def isHourFile(name: str) -> bool:
    """True for an hourly concatenated-JPEG file's name."""
    return _HOUR_FILE.match(name) is not None
