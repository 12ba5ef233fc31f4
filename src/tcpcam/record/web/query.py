"""Query parameters of the footage endpoints, checked: every mistake is one :class:`BadQuery` line (a 400).

Times are Unix seconds (``1714982400.25``); a day is ``YYYY-MM-DD`` in the
recorder's local time. A range is either ``day=`` or ``from=`` and ``to=``,
half open, and never longer than the caller allows. Parameters not asked
for are ignored (a page may add a cache buster); one given twice is refused.
"""

from __future__ import annotations

import datetime
import math
import re
import time

from twisted.web.server import Request

from tcpcam.core.text import plural

#: Longest value of one parameter, in bytes.
MAX_VALUE_BYTES = 64
#: Times accepted: from 1970 to about 5138 (Unix seconds).
MAX_TIME = 1e11

_DAY = re.compile(r"^\d{4}-\d\d-\d\d$")


class BadQuery(ValueError):
    """A query parameter is missing or wrong; the message is one line for the user."""


def argument(request: Request, name: str) -> str | None:
    """The value of parameter ``name`` as text, or None if absent; BadQuery if it is given twice or is too long."""
    args: dict[bytes, list[bytes]] = request.args or {}
    values = args.get(name.encode("ascii"))
    if not values:
        return None
    if len(values) > 1:
        raise BadQuery("give %s once" % name)
    raw = values[0]
    if len(raw) > MAX_VALUE_BYTES:
        raise BadQuery("%s is too long (at most %s)" % (name, plural(MAX_VALUE_BYTES, "character")))
    try:
        return raw.decode("ascii").strip()
    except UnicodeDecodeError:
        raise BadQuery("%s must be plain ASCII" % name) from None


def number(request: Request, name: str, low: float, high: float, default: float | None = None) -> float:
    """Parameter ``name`` as a number within ``low..high`` (``default`` if absent and there is one)."""
    text = argument(request, name)
    if text is None:
        if default is None:
            raise BadQuery("give %s" % name)
        return default
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and low <= value <= high):
        raise BadQuery("%s must be a number from %g to %g, not %r" % (name, low, high, text))
    return value


def moment(request: Request, name: str) -> float:
    """Parameter ``name`` as a time in Unix seconds."""
    text = argument(request, name)
    if text is None:
        raise BadQuery("give %s (a time in Unix seconds)" % name)
    try:
        value = float(text)
    except ValueError:
        value = math.nan
    if not (math.isfinite(value) and 0 <= value < MAX_TIME):
        raise BadQuery("%s must be a time in Unix seconds, not %r" % (name, text))
    return value


def integer(request: Request, name: str, low: int, high: int) -> int:
    """Parameter ``name`` as a whole number within ``low..high``."""
    text = argument(request, name)
    if text is None:
        raise BadQuery("give %s" % name)
    if not re.match(r"^-?\d{1,19}$", text) or not low <= int(text) <= high:
        raise BadQuery("%s must be a whole number from %d to %d, not %r" % (name, low, high, text))
    return int(text)


def choice(request: Request, name: str, choices: tuple[str, ...], default: str) -> str:
    """Parameter ``name``, one of ``choices`` (``default`` if absent)."""
    text = argument(request, name)
    if text is None or text == "":
        return default
    if text not in choices:
        raise BadQuery("%s must be one of %s, not %r" % (name, ", ".join(choices), text))
    return text


def dayBounds(day: str) -> tuple[float, float]:
    """Unix seconds of a local day's first moment and of the next day's; BadQuery for a bad day."""
    if not _DAY.match(day):
        raise BadQuery("day must be YYYY-MM-DD, not %r" % day)
    try:
        first = datetime.date(*(int(part) for part in day.split("-")))
    except ValueError:
        raise BadQuery("day %r does not exist" % day) from None
    following = first + datetime.timedelta(days=1)
    if first.year < 1970 or following.year > 9999:
        raise BadQuery("day %r is out of range" % day)
    return (time.mktime((first.year, first.month, first.day, 0, 0, 0, 0, 0, -1)),
            time.mktime((following.year, following.month, following.day, 0, 0, 0, 0, 0, -1)))


def timeRange(request: Request, maxSeconds: float) -> tuple[float, float, str | None]:
    """``(start, end, day)`` from ``day=`` or from ``from=`` and ``to=``; at most ``maxSeconds`` long."""
    day = argument(request, "day")
    if day is not None:
        if argument(request, "from") is not None or argument(request, "to") is not None:
            raise BadQuery("give either day or from and to, not both")
        start, end = dayBounds(day)
        return start, end, day
    if argument(request, "from") is None and argument(request, "to") is None:
        raise BadQuery("give day=YYYY-MM-DD, or from and to (Unix seconds)")
    start, end = moment(request, "from"), moment(request, "to")
    if not end > start:
        raise BadQuery("to must be after from")
    if end - start > maxSeconds:
        raise BadQuery("that range is too long: at most %s" % describeSeconds(maxSeconds))
    return start, end, None


def describeSeconds(seconds: float) -> str:
    """``7 days``, ``6 hours``, ``90 s``: a duration for a message."""
    if seconds >= 86400 and seconds % 86400 == 0:
        return "%d day%s" % (seconds // 86400, "" if seconds == 86400 else "s")
    if seconds >= 3600 and seconds % 3600 == 0:
        return "%d hour%s" % (seconds // 3600, "" if seconds == 3600 else "s")
    return "%g s" % seconds
