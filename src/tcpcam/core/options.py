"""Settings described by a table: one checker for ``config.json``, ``tcpcam serve`` and the recorder.

An :class:`Option` names a setting, its default, its kind and its bounds,
and what it means. The same table checks a value from JSON or TOML
(:meth:`Option.check`), turns the text of a command-line option into a
value (:meth:`Option.from_text`) and says the rule in words for a one-line
message (:meth:`Option.rule`). It runs on MicroPython, so the board checks
its ``config.json`` with exactly the rules the host tools refuse by.

Kinds: ``int``, ``number`` (int or float), ``bool``, ``text``, ``choice``,
``pin``, ``ipv4``, ``size`` (bytes; text may say ``500M``, ``2GiB``),
``keepalive`` (``IDLE,INTERVAL,COUNT`` in seconds, or off) and ``key`` (a
device key's text, or empty for none).
"""

import json

from tcpcam.core.mac import parse_key
from tcpcam.core.request import check_pin

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")
_UNITS = "KMGT"


class Option:
    """One setting: ``name`` (snake_case), ``default``, ``kind``, bounds and ``meaning``.

    ``low`` and ``high`` bound a number, or the length of a text; ``choices``
    lists the values of a ``choice``; ``zero`` (for numbers) allows 0 as well
    as ``low`` to ``high`` (0 usually means "off"). ``unit`` is shown after
    numbers in help texts; ``short`` is a one-letter command-line flag.
    """

    def __init__(self, name: str, default: object, kind: str, low: float | None = None, high: float | None = None,
                 meaning: str = "", choices: tuple = (), zero: bool = False, unit: str = "",
                 short: str = "", wording: str = "") -> None:
        if kind not in ("int", "number", "bool", "text", "choice", "pin", "ipv4", "size", "keepalive", "key"):
            raise ValueError("unknown option kind %r" % (kind,))
        self.name = name
        self.default = default
        self.kind = kind
        self.low = low
        self.high = high
        self.meaning = meaning
        self.choices = choices
        self.zero = zero
        self.unit = unit
        self.short = short
        self.wording = wording

    @property
    def flag(self) -> str:
        """The command-line spelling: ``interval_ms`` -> ``--interval-ms``."""
        return "--" + self.name.replace("_", "-")

    def rule(self) -> str:
        """The rule in words, for messages: ``a whole number from 1 to 16``."""
        if self.wording:
            return self.wording
        kind = self.kind
        zero = "0 or " if self.zero else ""
        if kind in ("int", "number", "size"):
            what = {"int": "a whole number", "number": "a number", "size": "a size in bytes"}[kind]
            unit = " " + self.unit if self.unit else ""
            if self.high is None:
                return "%s, %s%s%s or more" % (what, zero, _show(self.low), unit)
            return "%s from %s%s to %s%s" % (what, zero, _show(self.low), _show(self.high), unit)
        if kind == "bool":
            return "true or false"
        if kind == "choice":
            return "one of " + ", ".join(self.choices)
        if kind == "pin":
            return "1 to %d characters with no CR, LF or NUL" % int(self.high or 0)
        if kind == "ipv4":
            return "an IPv4 address such as 0.0.0.0"
        if kind == "keepalive":
            return "IDLE,INTERVAL,COUNT such as 5,5,3 (seconds, seconds, probes; each above 0), or off"
        if kind == "key":
            return "empty, or a device key as tcpcam firmware config writes it (base32, at least 128 bits)"
        return "text of %d to %d characters" % (int(self.low or 0), int(self.high or 0))

    def check(self, value: object) -> object:
        """``value`` (from JSON, TOML or :meth:`from_text`) normalised, or ValueError with :meth:`rule`."""
        kind = self.kind
        if kind == "size" and isinstance(value, str):
            value = parse_size(value)
        if kind in ("int", "size"):
            if type(value) is not int or not self._in_range(value):
                raise ValueError(self.rule())
            return value
        if kind == "number":
            if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
                raise ValueError(self.rule())
            if not self._in_range(value):
                raise ValueError(self.rule())
            return value
        if kind == "bool":
            if type(value) is not bool:
                raise ValueError(self.rule())
            return value
        if kind == "keepalive":
            return self._check_keepalive(value)
        if not isinstance(value, str):
            raise ValueError(self.rule())
        if kind == "choice":
            for choice in self.choices:
                if value.upper() == choice.upper():
                    return choice
            raise ValueError(self.rule())
        if kind == "pin":
            try:
                check_pin(value, int(self.high or 0))
            except ValueError:
                raise ValueError(self.rule()) from None
            return value
        if kind == "ipv4":
            if not _is_ipv4(value):
                raise ValueError(self.rule())
            return value
        if kind == "key":
            if value.strip():
                try:
                    parse_key(value)
                except ValueError:
                    raise ValueError(self.rule()) from None
            return value.strip()
        if not (self.low or 0) <= len(value) <= (self.high or 0):
            raise ValueError(self.rule())
        return value

    def from_text(self, text: str) -> object:
        """Turn the text of a command-line option into a checked value, or raise ValueError."""
        kind = self.kind
        if not isinstance(text, str):
            return self.check(text)
        stripped = text.strip()
        value: object = text
        if kind == "int":
            value = _to_int(stripped)
        elif kind == "number":
            value = _to_number(stripped)
        elif kind == "size":
            value = parse_size(stripped)
        elif kind == "bool":
            lowered = stripped.lower()
            value = True if lowered in _TRUE else False if lowered in _FALSE else text
        elif kind == "keepalive":
            value = stripped
        if value is None:
            raise ValueError(self.rule())
        return self.check(value)

    def _in_range(self, value: float) -> bool:
        if self.zero and value == 0:
            return True
        if self.low is not None and value < self.low:
            return False
        return self.high is None or value <= self.high

    def _check_keepalive(self, value: object) -> object:
        if value is None:
            return None
        if isinstance(value, str):
            if value.strip().lower() in _FALSE:
                return None
            parts = value.split(",")
            numbers = [_to_int(part.strip()) for part in parts]
        elif isinstance(value, (list, tuple)):
            numbers = list(value)
        else:
            raise ValueError(self.rule())
        if len(numbers) != 3:
            raise ValueError(self.rule())
        for number in numbers:
            if type(number) is not int or number < 1:
                raise ValueError(self.rule())
        return tuple(numbers)


def _to_int(text: str) -> int | None:
    digits = text[1:] if text[:1] in ("-", "+") else text
    if not digits or not digits.isdigit():
        return None
    return int(text)


def _to_number(text: str) -> float | int | None:
    whole = _to_int(text)
    if whole is not None:
        return whole
    try:
        value = float(text)
    except ValueError:
        return None
    if value != value or value in (float("inf"), float("-inf")):
        return None
    return value


def parse_size(text: str) -> int | None:
    """Bytes from ``1048576``, ``500M``, ``20G``, ``1.5GiB`` or ``64k``, or None if it is not a size.

    K, M, G and T are powers of 1000; Ki, Mi, Gi and Ti powers of 1024; a
    trailing B is allowed.
    """
    text = text.strip().upper()
    if text.endswith("B"):
        text = text[:-1]
    base = 1000
    if text.endswith("I"):
        base = 1024
        text = text[:-1]
    power = 0
    if text and text[-1] in _UNITS:
        power = _UNITS.index(text[-1]) + 1
        text = text[:-1].strip()
    elif base == 1024:
        return None
    number = _to_number(text)
    if number is None or number < 0:
        return None
    return int(number * base ** power)


def _is_ipv4(text: str) -> bool:
    parts = text.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not 1 <= len(part) <= 3 or not part.isdigit() or int(part) > 255:
            return False
    return True


def _show(value: float | None) -> str:
    if type(value) is float and value == int(value):
        return str(int(value))
    return str(value)


def show_value(value: object) -> str:
    """A value as a message shows it: JSON-like, cut to 40 characters."""
    if value is None:
        text = "none"
    elif value is True or value is False:
        text = "true" if value else "false"
    elif isinstance(value, str):
        text = json.dumps(value)
    elif isinstance(value, tuple):
        text = ",".join(str(part) for part in value)
    else:
        text = str(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return text


class OptionTable:
    """The options of one program, in order, with their defaults and a checker for all of them."""

    def __init__(self, options: tuple) -> None:
        self.options = options
        self._by_name = {option.name: option for option in options}

    def __iter__(self) -> object:
        return iter(self.options)

    def __contains__(self, name: object) -> bool:
        return name in self._by_name

    def __getitem__(self, name: str) -> Option:
        return self._by_name[name]

    def defaults(self) -> dict:
        """A new dict holding every option's default."""
        return {option.name: option.default for option in self.options}

    def merge(self, data: object, base: dict | None = None) -> tuple:
        """Check ``data`` (a dict) over ``base`` (default: the defaults); returns ``(values, problems)``.

        Each problem is one line, ``bad NAME VALUE: expected RULE`` or
        ``unknown key 'NAME'``; the bad value is left out, so ``values`` keeps
        the base value for it.
        """
        values = self.defaults() if base is None else dict(base)
        problems = []
        if not isinstance(data, dict):
            return values, ["expected a table of settings, not %s" % show_value(data)]
        for key in sorted(data):
            option = self._by_name.get(key)
            if option is None:
                problems.append("unknown key %r" % (key,))
                continue
            try:
                values[key] = option.check(data[key])
            except ValueError as error:
                problems.append("bad %s %s: expected %s" % (key, show_value(data[key]), error))
        return values, problems

    def parse_texts(self, texts: dict, base: dict | None = None) -> tuple:
        """Like :meth:`merge`, for command-line texts keyed by option name."""
        values = self.defaults() if base is None else dict(base)
        problems = []
        for key in sorted(texts):
            option = self._by_name.get(key)
            if option is None:
                problems.append("unknown key %r" % (key,))
                continue
            try:
                values[key] = option.from_text(texts[key])
            except ValueError as error:
                problems.append("bad %s %s: expected %s" % (option.flag, show_value(texts[key]), error))
        return values, problems
