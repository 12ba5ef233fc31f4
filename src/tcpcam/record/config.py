"""The recorder's settings: defaults, the TOML config file, and their checks.

Command-line values win over the config file, which wins over the defaults.
Every problem is reported as one :class:`ConfigError` line.
"""

import re
import sys
from dataclasses import dataclass, field

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: The PIN of the original firmware.
DEFAULT_PIN = "1235"
#: Where recordings go.
DEFAULT_OUT = "recordings"
#: The live view's endpoint: loopback only unless told otherwise.
DEFAULT_WEB = "tcp:8080:interface=127.0.0.1"
#: Storage formats: one file per frame, or one concatenated-JPEG file per hour.
FORMATS = ("jpg", "mjpeg")
#: Seconds of silence after which a camera counts as gone and is reconnected.
DEFAULT_FRAME_TIMEOUT = 10.0
#: Largest frame accepted from a camera.
DEFAULT_MAX_FRAME_BYTES = 8 * 1024 * 1024
#: Reconnection backoff: first delay and cap, in seconds (jitter is added).
DEFAULT_BACKOFF_INITIAL = 1.0
DEFAULT_BACKOFF_MAX = 60.0

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]?)(i?B?)\s*$", re.IGNORECASE)
#: Names reserved by the live view's URL space.
RESERVED_NAMES = ("status.json", "metrics")


class ConfigError(ValueError):
    """A setting is wrong; the message is one line meant for the user."""


@dataclass
class CameraConfig:
    """One camera: its name (a folder and URL segment), endpoint and PIN."""

    name: str
    endpoint: str
    pin: str = DEFAULT_PIN
    frameTimeout: float = DEFAULT_FRAME_TIMEOUT
    maxFrameBytes: int = DEFAULT_MAX_FRAME_BYTES
    #: True for the built-in simulated camera (its endpoint is chosen at start).
    simulated: bool = False


@dataclass
class RecorderConfig:
    """Everything the recorder needs to run."""

    cameras: list = field(default_factory=list)
    out: str = DEFAULT_OUT
    format: str = "jpg"
    keepDays: float = 0.0
    maxBytes: int = 0
    web: str | None = DEFAULT_WEB
    backoffInitial: float = DEFAULT_BACKOFF_INITIAL
    backoffMax: float = DEFAULT_BACKOFF_MAX

    @property
    def simulated(self):
        """True when recording from the built-in simulated camera."""
        return any(camera.simulated for camera in self.cameras)


def checkName(name):
    """Return ``name`` if it can name a camera folder and URL, else raise ConfigError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(
            "bad camera name %r: use 1 to 64 letters, digits, '-' or '_'" % (name,)
        )
    if name in RESERVED_NAMES:
        raise ConfigError(
            "bad camera name %r: the live view uses /%s itself; choose another name" % (name, name)
        )
    return name


def parseCamera(spec, pin=DEFAULT_PIN):
    """Parse ``NAME=ENDPOINT`` (the ``--camera`` option) into a CameraConfig."""
    name, sep, endpoint = spec.partition("=")
    if not sep or not endpoint:
        raise ConfigError(
            "bad --camera %r: expected NAME=ENDPOINT, such as door=tcp:host=192.168.1.50:port=3333"
            % (spec,)
        )
    return CameraConfig(name=checkName(name.strip()), endpoint=endpoint.strip(), pin=pin)


def parseSize(value):
    """Parse a byte count: ``1048576``, ``500M``, ``20G``, ``1.5GiB`` (K, M, G, T are
    powers of 1000; Ki, Mi, Gi, Ti powers of 1024; a trailing B is allowed)."""
    if isinstance(value, int) and not isinstance(value, bool):
        size = value
    else:
        match = _SIZE.match(str(value))
        if not match:
            raise ConfigError("bad size %r: expected a number with K, M, G or T" % (value,))
        number, unit, suffix = match.groups()
        base = 1024 if suffix[:1].lower() == "i" else 1000
        size = int(float(number) * base ** ("KMGT".index(unit.upper()) + 1 if unit else 0))
    if size < 0:
        raise ConfigError("bad size %r: must not be negative" % (value,))
    return size


def positiveNumber(value, what):
    """Return ``value`` as a float > 0, or raise ConfigError naming ``what``."""
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ConfigError("bad %s %r: expected a number" % (what, value)) from None
    if not number > 0 or number != number or number == float("inf"):
        raise ConfigError("bad %s %r: must be a number above 0" % (what, value))
    return number


def nonNegativeNumber(value, what):
    """Return ``value`` as a float >= 0, or raise ConfigError naming ``what``."""
    if value in (0, "0"):
        return 0.0
    return positiveNumber(value, what)


#: Keys of a camera table in the config file, and how to read each.
_CAMERA_KEYS = {
    "endpoint": str,
    "pin": str,
    "frame_timeout": lambda v: positiveNumber(v, "frame_timeout"),
    "max_frame_bytes": lambda v: max(1, parseSize(v)),
}
#: Top-level keys of the config file, mapped to RecorderConfig fields.
_TOP_KEYS = {
    "out": "out",
    "format": "format",
    "keep_days": "keepDays",
    "max_bytes": "maxBytes",
    "web": "web",
    "pin": "pin",
    "frame_timeout": "frameTimeout",
    "max_frame_bytes": "maxFrameBytes",
    "backoff_initial": "backoffInitial",
    "backoff_max": "backoffMax",
}


def loadConfigFile(path):
    """Read a TOML config file into a dict of settings and a list of cameras.

    The dict uses the same keys as :func:`buildConfig`'s ``settings``; each
    camera table may set ``endpoint`` (required), ``pin``,
    ``frame_timeout`` and ``max_frame_bytes``; missing ones fall back to the
    file's top-level values, then to the defaults.
    """
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise ConfigError("cannot read config file %s: %s" % (path, error.strerror)) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("config file %s is not valid TOML: %s" % (path, error)) from None
    settings = {}
    for key, value in data.items():
        if key == "cameras":
            continue
        if key not in _TOP_KEYS:
            raise ConfigError(
                "config file %s: unknown setting %r (known: %s, cameras)"
                % (path, key, ", ".join(sorted(_TOP_KEYS)))
            )
        settings[_TOP_KEYS[key]] = value
    cameras = data.get("cameras", {})
    if not isinstance(cameras, dict):
        raise ConfigError("config file %s: 'cameras' must be a table of [cameras.NAME] tables" % path)
    tables = []
    for name, table in cameras.items():
        if not isinstance(table, dict):
            raise ConfigError("config file %s: [cameras.%s] must be a table" % (path, name))
        unknown = sorted(set(table) - set(_CAMERA_KEYS))
        if unknown:
            raise ConfigError(
                "config file %s: [cameras.%s] has unknown setting %r (known: %s)"
                % (path, name, unknown[0], ", ".join(sorted(_CAMERA_KEYS)))
            )
        if "endpoint" not in table:
            raise ConfigError("config file %s: [cameras.%s] needs an endpoint" % (path, name))
        tables.append((name, table))
    return settings, tables


def buildConfig(settings, cameraSpecs=(), cameraTables=()):
    """Check everything and return a :class:`RecorderConfig`.

    ``settings`` maps RecorderConfig field names (plus ``pin``,
    ``frameTimeout`` and ``maxFrameBytes``, the per-camera defaults) to
    values; ``cameraSpecs`` are ``NAME=ENDPOINT`` strings and
    ``cameraTables`` ``(name, table)`` pairs from the config file. With no
    camera at all, the built-in simulated camera is recorded.
    """
    pin = str(settings.get("pin", DEFAULT_PIN))
    frameTimeout = positiveNumber(settings.get("frameTimeout", DEFAULT_FRAME_TIMEOUT), "frame timeout")
    maxFrameBytes = max(1, parseSize(settings.get("maxFrameBytes", DEFAULT_MAX_FRAME_BYTES)))
    cameras = []
    for name, table in cameraTables:
        cameras.append(CameraConfig(
            name=checkName(name),
            endpoint=str(table["endpoint"]),
            pin=str(table.get("pin", pin)),
            frameTimeout=_CAMERA_KEYS["frame_timeout"](table.get("frame_timeout", frameTimeout)),
            maxFrameBytes=_CAMERA_KEYS["max_frame_bytes"](table.get("max_frame_bytes", maxFrameBytes)),
        ))
    for spec in cameraSpecs:
        camera = parseCamera(spec, pin)
        camera.frameTimeout = frameTimeout
        camera.maxFrameBytes = maxFrameBytes
        cameras.append(camera)
    seen = set()
    for camera in cameras:
        if camera.name in seen:
            raise ConfigError("camera name %r is used twice" % camera.name)
        seen.add(camera.name)
        _checkPin(camera)
    if not cameras:
        cameras.append(CameraConfig(
            name="simulated", endpoint="(built-in simulated camera)", pin=pin,
            frameTimeout=frameTimeout, maxFrameBytes=maxFrameBytes, simulated=True,
        ))
        _checkPin(cameras[0])
    fmt = str(settings.get("format", "jpg")).lower()
    if fmt not in FORMATS:
        raise ConfigError("bad format %r: use %s" % (fmt, " or ".join(FORMATS)))
    web = settings.get("web", DEFAULT_WEB)
    if web is not None:
        web = str(web)
        if web.lower() in ("", "off", "no", "none", "false"):
            web = None
    config = RecorderConfig(
        cameras=cameras,
        out=str(settings.get("out", DEFAULT_OUT)),
        format=fmt,
        keepDays=nonNegativeNumber(settings.get("keepDays", 0), "keep days"),
        maxBytes=parseSize(settings.get("maxBytes", 0)),
        web=web,
        backoffInitial=positiveNumber(settings.get("backoffInitial", DEFAULT_BACKOFF_INITIAL), "backoff initial delay"),
        backoffMax=positiveNumber(settings.get("backoffMax", DEFAULT_BACKOFF_MAX), "backoff maximum delay"),
    )
    if config.backoffMax < config.backoffInitial:
        raise ConfigError("the backoff maximum delay must not be below its initial delay")
    return config


def _checkPin(camera):
    pin = camera.pin.encode("utf-8")
    if not pin or len(pin) > 128 or any(byte in b"\r\n\x00" for byte in pin):
        raise ConfigError(
            "bad PIN for camera %r: 1 to 128 bytes with no CR, LF or NUL" % camera.name
        )
