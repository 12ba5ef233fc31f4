"""The recorder's settings: one option table for the command line, ``twistd`` and the TOML file.

Command-line values win over the config file, which wins over the defaults.
Every problem is reported as one :class:`ConfigError` line.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

from tcpcam.core import limits
from tcpcam.core.camera_settings import SETTINGS
from tcpcam.core.mac import KEY_BYTES, MIN_KEY_BYTES, parse_key
from tcpcam.core.options import Option, OptionTable, show_value
from tcpcam.core.text import plural
from tcpcam.record.retention import MIN_FREE_BYTES, MIN_FREE_PERCENT
from tcpcam.record.segments import SEGMENT_BYTES, SEGMENT_SECONDS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: Where recordings go.
DEFAULT_OUT = "recordings"
#: The live view's endpoint: loopback only unless told otherwise.
DEFAULT_WEB = "tcp:8080:interface=127.0.0.1"
#: Storage formats: segments of concatenated JPEGs with a SQLite index (the default), or one file per frame.
FORMATS = ("segments", "jpg")
#: The default storage format.
DEFAULT_FORMAT = "segments"
#: Recording modes: every frame, or only around motion (with pre-roll and post-roll).
MODES = ("continuous", "motion")
#: The default recording mode.
DEFAULT_MODE = "continuous"
#: Default share of the picture (0 to 1) that must change to count as motion.
DEFAULT_MOTION_THRESHOLD = 0.005
#: Default seconds kept before motion starts (mode motion) and counted into each event.
DEFAULT_PRE_ROLL = 5.0
#: Default seconds of calm after which a motion event ends.
DEFAULT_POST_ROLL = 10.0
#: Most mask rectangles per camera.
MAX_MASK_RECTANGLES = 64
#: Names reserved by the web interface's URL space (a camera's pages are at ``/NAME/``).
RESERVED_NAMES = ("status.json", "metrics", "login", "logout", "static")
#: Longest text of a device key accepted (dashes and blanks included).
MAX_KEY_TEXT = 256
#: Bytes a key file may have (a key and a newline, with room for blanks).
MAX_KEY_FILE_BYTES = 1024
#: Words that turn the live view off.
OFF = ("", "off", "no", "none", "false")

#: The web interface asks for a login (a password or a token) unless told otherwise.
DEFAULT_WEB_LOGIN = True
#: The file holding the web interface's hashed password and token, inside ``--out`` unless told otherwise.
WEB_AUTH_NAME = "web-auth.json"
#: Web connections at most (fewer if the file descriptor limit needs them for the cameras and the disk).
DEFAULT_WEB_MAX_CONNECTIONS = 256
#: Web connections one address may hold; a new one closes that address's quietest.
DEFAULT_WEB_CONNECTIONS_PER_ADDRESS = 32
#: Live streams (``stream.mjpg``) one address may watch at once, all cameras together.
DEFAULT_WEB_VIEWERS_PER_ADDRESS = 8
#: Seconds an idle web connection (no request in progress) is kept open; Twisted's own default is 12 hours.
DEFAULT_WEB_IDLE_TIMEOUT = 60.0

_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_-]{0,63}$")

#: Settings of the whole recorder (and the defaults of every camera).
OPTIONS = OptionTable((
    Option("pin", limits.DEFAULT_PIN, "pin", 1, limits.MAX_TOKEN_BYTES, "PIN of the cameras", short="p"),
    Option("key", "", "text", 0, MAX_KEY_TEXT, "device key of the cameras for protocol 2, as tcpcam firmware config"
           " takes it (empty: the legacy protocol and the PIN); prefer key_file, as others can read a command line"),
    Option("key_file", "", "text", 0, 4096, "file holding the device key of the cameras (protocol 2)"),
    Option("out", DEFAULT_OUT, "text", 1, 4096, "folder to record into", short="o"),
    Option("format", DEFAULT_FORMAT, "choice", choices=FORMATS,
           meaning="segments: concatenated-JPEG segments with a SQLite index; jpg: one file per frame", short="f"),
    Option("segment_seconds", SEGMENT_SECONDS, "number", 1, 3600, "longest a segment runs, in seconds"),
    Option("segment_bytes", SEGMENT_BYTES, "size", 65536, 1024 ** 3, "largest a segment grows"),
    Option("keep_days", 0, "number", 0, None, "delete recordings older than this many days (0 keeps them)"),
    Option("keep_motion_days", 0, "number", 0, None,
           "keep segments with motion this many days instead (0: as long as keep_days)"),
    Option("max_bytes", 0, "size", 1, None,
           "delete the oldest recordings beyond this total, such as 500M or 20G (0: no quota)", zero=True),
    Option("min_free", MIN_FREE_BYTES, "size", 1, None,
           "keep at least this much of the disk free, deleting the oldest recordings (0: no byte floor)",
           zero=True),
    Option("min_free_percent", MIN_FREE_PERCENT, "number", 0, 50,
           "keep at least this percent of the disk free (the larger floor applies; at most half the disk)"),
    Option("motion", False, "bool", meaning="detect motion in every camera's frames"),
    Option("mode", DEFAULT_MODE, "choice", choices=MODES,
           meaning="continuous: record every frame; motion: only around motion (turns motion on)"),
    Option("motion_threshold", DEFAULT_MOTION_THRESHOLD, "number", 0.0001, 1,
           "share of the picture that must change to count as motion"),
    Option("pre_roll", DEFAULT_PRE_ROLL, "number", 0, 60, "seconds kept before motion starts"),
    Option("post_roll", DEFAULT_POST_ROLL, "number", 0, 600, "seconds of calm after which a motion event ends"),
    Option("web", DEFAULT_WEB, "text", 0, 1000, "server endpoint of the web interface, or off"),
    Option("web_login", DEFAULT_WEB_LOGIN, "bool", meaning="ask for a login (password or token) on the web interface"),
    Option("web_auth_file", "", "text", 0, 4096,
           "file of the web interface's hashed password and token (empty: %s in --out)" % WEB_AUTH_NAME),
    Option("web_hosts", "", "text", 0, 4096,
           "more host names the web interface answers to, comma-separated, or * for any"),
    Option("web_access_log", False, "bool", meaning="log every HTTP request of the web interface"),
    Option("web_max_connections", DEFAULT_WEB_MAX_CONNECTIONS, "int", 8, 65536,
           "web connections at most (fewer if the file descriptor limit is low)"),
    Option("web_connections_per_address", DEFAULT_WEB_CONNECTIONS_PER_ADDRESS, "int", 1, 65536,
           "web connections one address may hold"),
    Option("web_viewers_per_address", DEFAULT_WEB_VIEWERS_PER_ADDRESS, "int", 1, 1024,
           "live streams one address may watch at once"),
    Option("web_idle_timeout", DEFAULT_WEB_IDLE_TIMEOUT, "number", 1, 86400,
           "seconds an idle web connection is kept open"),
    Option("frame_timeout", limits.RECORDER_FRAME_TIMEOUT_S, "number", 0.001, 86400,
           "seconds of silence before a camera is reconnected"),
    Option("max_frame_bytes", limits.MAX_FRAME_BYTES, "size", 1, limits.MAX_DECLARABLE_BYTES,
           "largest frame accepted"),
    Option("backoff_initial", 1.0, "number", 0.001, 3600, "first delay before reconnecting, in seconds"),
    Option("backoff_max", 60.0, "number", 0.001, 86400,
           "longest delay between reconnection attempts, in seconds, before jitter"),
))

#: Keys of a ``[cameras.NAME]`` table; the ones also in :data:`OPTIONS` default to the recorder's value.
CAMERA_OPTIONS = OptionTable((
    Option("endpoint", "", "text", 1, 1000, "client endpoint of the camera, such as tcp:host=192.168.1.50:port=3333"),
    OPTIONS["pin"],
    OPTIONS["key"],
    OPTIONS["key_file"],
    OPTIONS["frame_timeout"],
    OPTIONS["max_frame_bytes"],
    OPTIONS["motion"],
    OPTIONS["mode"],
    OPTIONS["motion_threshold"],
    OPTIONS["pre_roll"],
    OPTIONS["post_roll"],
))
#: The camera table key for mask rectangles (a list, so not in the option table).
MASK_KEY = "motion_mask"
#: The camera table key for camera settings (a table checked by :data:`tcpcam.core.camera_settings.SETTINGS`).
SETTINGS_KEY = "settings"
#: What a bad key is told, without the key itself.
KEY_RULE = ("expected the device key as tcpcam firmware config and tcpcam serve take it (base32 letters A-Z"
            " and 2-7, dashes allowed; %d letters for %d bits, at least %d bits)"
            % ((KEY_BYTES * 8 + 4) // 5, KEY_BYTES * 8, MIN_KEY_BYTES * 8))


class ConfigError(ValueError):
    """A setting is wrong; the message is one line meant for the user."""


@dataclass
class CameraConfig:
    """One camera: its name (a folder and URL segment), endpoint, PIN or key, and camera settings."""

    name: str
    endpoint: str
    pin: str = limits.DEFAULT_PIN
    #: The device key (bytes): protocol 2 is spoken when set. Never shown, logged nor compared in a repr.
    key: bytes | None = field(default=None, repr=False)
    #: Camera settings applied on every connect (protocol 2 only), such as ``{"framesize": "SVGA"}``.
    settings: dict[str, Any] = field(default_factory=dict)
    frameTimeout: float = limits.RECORDER_FRAME_TIMEOUT_S
    maxFrameBytes: int = limits.MAX_FRAME_BYTES
    #: True for the built-in simulated camera (its endpoint is chosen at start).
    simulated: bool = False
    #: Detect motion in this camera's frames.
    motion: bool = False
    #: ``continuous`` or ``motion`` (only around motion).
    mode: str = DEFAULT_MODE
    motionThreshold: float = DEFAULT_MOTION_THRESHOLD
    #: Zones to ignore: ``(x0, y0, x1, y1)`` fractions of the picture's width and height.
    motionMask: tuple[tuple[float, float, float, float], ...] = ()
    preRoll: float = DEFAULT_PRE_ROLL
    postRoll: float = DEFAULT_POST_ROLL


@dataclass
class WebSettings:
    """How the web interface guards itself: login, host names, connection limits, logging."""

    login: bool = DEFAULT_WEB_LOGIN
    #: The password file; empty for :data:`WEB_AUTH_NAME` in the recorder's ``out`` folder.
    authFile: str = ""
    #: Host names allowed in the Host header besides IP addresses, ``localhost`` and this machine's name.
    hosts: tuple[str, ...] = ()
    accessLog: bool = False
    maxConnections: int = DEFAULT_WEB_MAX_CONNECTIONS
    connectionsPerAddress: int = DEFAULT_WEB_CONNECTIONS_PER_ADDRESS
    viewersPerAddress: int = DEFAULT_WEB_VIEWERS_PER_ADDRESS
    idleTimeout: float = DEFAULT_WEB_IDLE_TIMEOUT


@dataclass
class RecorderConfig:
    """Everything the recorder needs to run."""

    cameras: list[CameraConfig] = field(default_factory=list)
    out: str = DEFAULT_OUT
    format: str = DEFAULT_FORMAT
    keepDays: float = 0.0
    keepMotionDays: float = 0.0
    maxBytes: int = 0
    minFree: int = MIN_FREE_BYTES
    minFreePercent: float = MIN_FREE_PERCENT
    segmentSeconds: float = SEGMENT_SECONDS
    segmentBytes: int = SEGMENT_BYTES
    web: str | None = DEFAULT_WEB
    backoffInitial: float = 1.0
    backoffMax: float = 60.0
    webSettings: WebSettings = field(default_factory=WebSettings)

    @property
    def simulated(self) -> bool:
        """True when recording from the built-in simulated camera."""
        return any(camera.simulated for camera in self.cameras)

    @property
    def authFile(self) -> str:
        """Where the web interface's password is kept."""
        return self.webSettings.authFile or os.path.join(self.out, WEB_AUTH_NAME)


def checkName(name: object) -> str:
    """Return ``name`` if it can name a camera folder and URL, else raise ConfigError."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError("bad camera name %r: use 1 to 64 letters, digits, '-' or '_'" % (name,))
    if name in RESERVED_NAMES:
        raise ConfigError("bad camera name %r: the web interface uses /%s itself; choose another name"
                          % (name, name))
    return name


_HOST_NAME = re.compile(r"^(\*|[a-z0-9]([a-z0-9-]{0,62})(\.[a-z0-9]([a-z0-9-]{0,62}))*\.?)$")


def parseHostNames(text: str) -> tuple[str, ...]:
    """``"cams.example.org, nas"`` (the ``--web-hosts`` option) -> ``("cams.example.org", "nas")``, lower case."""
    names = []
    for part in text.replace(",", " ").split():
        name = part.strip().lower()
        if not _HOST_NAME.match(name):
            raise ConfigError("bad --web-hosts name %r: expected a host name such as cams.example.org, or *"
                              % (part,))
        names.append(name.rstrip("."))
    return tuple(names)


def parseCamera(spec: str) -> tuple[str, str]:
    """``NAME=ENDPOINT`` (the ``--camera`` option) -> ``(name, endpoint)``."""
    name, sep, endpoint = spec.partition("=")
    if not sep or not endpoint.strip():
        raise ConfigError("bad --camera %r: expected NAME=ENDPOINT, such as door=tcp:host=192.168.1.50:port=3333"
                          % (spec,))
    return checkName(name.strip()), endpoint.strip()


def loadConfigFile(path: str) -> tuple[dict[str, Any], list[tuple[str, dict[str, Any]]]]:
    """Read a TOML config file: ``(checked settings, [(camera name, checked table)])``.

    The settings are keyed as :data:`OPTIONS`; each ``[cameras.NAME]`` table
    needs ``endpoint`` and may set the other :data:`CAMERA_OPTIONS`.
    """
    try:
        with open(path, "rb") as handle:
            data = tomllib.load(handle)
    except OSError as error:
        raise ConfigError("cannot read config file %s: %s" % (path, error.strerror)) from None
    except tomllib.TOMLDecodeError as error:
        raise ConfigError("config file %s is not valid TOML: %s" % (path, error)) from None
    cameras = data.pop("cameras", {})
    _refuseOldFormat(data.get("format"), "config file %s: format" % path)
    settings = _checked(OPTIONS, data, "config file %s" % path)
    _checkKeyText(settings, "config file %s" % path)
    if not isinstance(cameras, dict):
        raise ConfigError("config file %s: 'cameras' must be a table of [cameras.NAME] tables" % path)
    tables = []
    for name, table in cameras.items():
        where = "config file %s: [cameras.%s]" % (path, name)
        if not isinstance(table, dict):
            raise ConfigError("%s must be a table" % where)
        if "endpoint" not in table:
            raise ConfigError("%s needs an endpoint" % where)
        table = dict(table)
        mask = checkMask(table.pop(MASK_KEY, []), where)
        cameraSettings = checkSettings(table.pop(SETTINGS_KEY, {}), where)
        checked = _checked(CAMERA_OPTIONS, table, where)
        _checkKeyText(checked, where)
        checked[MASK_KEY] = mask
        checked[SETTINGS_KEY] = cameraSettings
        tables.append((checkName(name), checked))
    return settings, tables


def checkMask(value: object, where: str) -> tuple[tuple[float, float, float, float], ...]:
    """``motion_mask``: a list of ``[x0, y0, x1, y1]`` fractions of the picture (0 to 1, x0 < x1, y0 < y1)."""
    rule = ("expected a list of [x0, y0, x1, y1] rectangles in fractions of the picture (0 to 1,"
            " x0 < x1, y0 < y1), at most %d" % MAX_MASK_RECTANGLES)
    if not isinstance(value, list) or len(value) > MAX_MASK_RECTANGLES:
        raise ConfigError("%s: bad %s: %s" % (where, MASK_KEY, rule))
    rectangles = []
    for rectangle in value:
        if (not isinstance(rectangle, list) or len(rectangle) != 4
                or not all(isinstance(v, (int, float)) and not isinstance(v, bool) and 0 <= v <= 1
                           for v in rectangle)
                or not (rectangle[0] < rectangle[2] and rectangle[1] < rectangle[3])):
            raise ConfigError("%s: bad %s %s: %s" % (where, MASK_KEY, show_value(str(rectangle)), rule))
        rectangles.append((float(rectangle[0]), float(rectangle[1]), float(rectangle[2]), float(rectangle[3])))
    return tuple(rectangles)


def checkSettings(value: object, where: str) -> dict[str, Any]:
    """``settings``: a table of camera settings (:data:`tcpcam.core.camera_settings.SETTINGS`), only those given."""
    if not isinstance(value, dict):
        raise ConfigError("%s: bad %s: expected a table such as {framesize = \"SVGA\", quality = 80}"
                          % (where, SETTINGS_KEY))
    settings, problems = SETTINGS.merge(value, {})
    if problems:
        known = ", ".join(option.name for option in SETTINGS.options)
        raise ConfigError("%s: %s: %s%s" % (where, SETTINGS_KEY, problems[0],
                                            " (known: %s)" % known if problems[0].startswith("unknown") else ""))
    return settings


def readKey(text: str, keyFile: str, where: str) -> bytes | None:
    """The device key of ``key`` text or the file ``key_file`` (None for neither); ConfigError, key never shown."""
    if text and keyFile:
        raise ConfigError("%s: give key or key_file, not both" % where)
    if keyFile:
        try:
            with open(keyFile, "rb") as handle:
                data = handle.read(MAX_KEY_FILE_BYTES + 1)
        except OSError as error:
            raise ConfigError("%s: cannot read key_file %s: %s" % (where, keyFile, error.strerror)) from None
        if len(data) > MAX_KEY_FILE_BYTES:
            raise ConfigError("%s: key_file %s is over %s: %s" % (where, keyFile, plural(MAX_KEY_FILE_BYTES, "byte"),
                                                                 KEY_RULE))
        try:
            text = data.decode("ascii").strip()
        except UnicodeDecodeError:
            raise ConfigError("%s: key_file %s: %s" % (where, keyFile, KEY_RULE)) from None
        where = "%s: key_file %s" % (where, keyFile)
    if not text:
        if keyFile:
            raise ConfigError("%s is empty: %s" % (where, KEY_RULE))
        return None
    try:
        return parse_key(text)
    except ValueError:
        raise ConfigError("%s: bad key: %s" % (where, KEY_RULE)) from None


def _checkKeyText(values: dict[str, Any], where: str) -> None:
    """Refuse a bad ``key`` text where it is written (a key file is read once the camera is built)."""
    if values.get("key"):
        readKey(values["key"], "", where)


def _refuseOldFormat(value: object, where: str) -> None:
    if isinstance(value, str) and value.strip().lower() == "mjpeg":
        raise ConfigError("%s mjpeg is gone: use segments (also concatenated JPEGs, with an index), the default;"
                          " tcpcam convert turns old hour files into segments" % where)


def _checked(table: OptionTable, data: dict[str, Any], where: str) -> dict[str, Any]:
    """The settings of ``data`` checked by ``table``; a text (such as ``"500M"``) is parsed first."""
    values = {}
    for key, value in data.items():
        if key not in table:
            raise ConfigError("%s: unknown setting %r (known: %s)"
                              % (where, key, ", ".join(option.name for option in table.options)))
        option = table[key]
        try:
            values[key] = option.from_text(value) if isinstance(value, str) else option.check(value)
        except ValueError as error:
            if key == "key":
                raise ConfigError("%s: bad key: %s" % (where, KEY_RULE)) from None
            raise ConfigError("%s: bad %s %s: expected %s" % (where, key, show_value(value), error)) from None
    return values


def configFromOptions(texts: dict[str, str], cameraSpecs: Sequence[str] = (), configFile: str | None = None,
                      noWeb: bool = False) -> RecorderConfig:
    """The recorder's config from the command line: option texts, ``--camera`` specs, the file, ``--no-web``."""
    settings: dict[str, Any] = {}
    tables: list[tuple[str, dict[str, Any]]] = []
    if configFile:
        settings, tables = loadConfigFile(configFile)
    _refuseOldFormat(texts.get("format"), "--format")
    if len(texts.get("key") or "") > MAX_KEY_TEXT:
        raise ConfigError("bad --key: %s" % KEY_RULE)
    values, problems = OPTIONS.parse_texts(texts, dict(OPTIONS.defaults(), **settings))
    if problems:
        raise ConfigError(problems[0])
    if noWeb:
        values["web"] = None
    return buildConfig(values, cameraSpecs, tables)


def buildConfig(values: dict[str, Any], cameraSpecs: Sequence[str] = (),
                cameraTables: Sequence[tuple[str, dict[str, Any]]] = ()) -> RecorderConfig:
    """Check everything and return a :class:`RecorderConfig`.

    ``values`` are checked :data:`OPTIONS` values; ``cameraSpecs`` are
    ``NAME=ENDPOINT`` strings and ``cameraTables`` ``(name, table)`` pairs
    from the config file. With no camera at all, the built-in simulated
    camera is recorded.
    """
    values = dict(OPTIONS.defaults(), **values)
    cameras = []
    for name, table in cameraTables:
        merged = dict(values, **table)
        # A camera's own key or key_file replaces the recorder's, whichever of the two that is.
        if "key" in table and "key_file" not in table:
            merged["key_file"] = ""
        elif "key_file" in table and "key" not in table:
            merged["key"] = ""
        cameras.append(_camera(name, table["endpoint"], merged))
    for spec in cameraSpecs:
        name, endpoint = parseCamera(spec)
        cameras.append(_camera(name, endpoint, values))
    seen = set()
    for camera in cameras:
        if camera.name in seen:
            raise ConfigError("camera name %r is used twice" % camera.name)
        seen.add(camera.name)
    if not cameras:
        simulated = _camera("simulated", "(built-in simulated camera)", values)
        simulated.simulated = True
        cameras.append(simulated)
    web = values["web"]
    if web is not None and web.strip().lower() in OFF:
        web = None
    config = RecorderConfig(
        cameras=cameras, out=values["out"], format=values["format"], keepDays=float(values["keep_days"]),
        keepMotionDays=float(values["keep_motion_days"]),
        maxBytes=int(values["max_bytes"]), minFree=int(values["min_free"]),
        minFreePercent=float(values["min_free_percent"]), segmentSeconds=float(values["segment_seconds"]),
        segmentBytes=int(values["segment_bytes"]), web=web, backoffInitial=float(values["backoff_initial"]),
        backoffMax=float(values["backoff_max"]), webSettings=WebSettings(
            login=bool(values["web_login"]), authFile=values["web_auth_file"],
            hosts=parseHostNames(values["web_hosts"]), accessLog=bool(values["web_access_log"]),
            maxConnections=int(values["web_max_connections"]),
            connectionsPerAddress=int(values["web_connections_per_address"]),
            viewersPerAddress=int(values["web_viewers_per_address"]),
            idleTimeout=float(values["web_idle_timeout"])))
    if config.backoffMax < config.backoffInitial:
        raise ConfigError("the backoff maximum delay must not be below its initial delay")
    return config


def _camera(name: str, endpoint: str, values: dict[str, Any]) -> CameraConfig:
    mode = values["mode"]
    key = readKey(values["key"], values["key_file"], "camera %s" % name)
    return CameraConfig(name=name, endpoint=endpoint, pin=values["pin"], key=key,
                        settings=dict(values.get(SETTINGS_KEY, {})), frameTimeout=float(values["frame_timeout"]),
                        maxFrameBytes=int(values["max_frame_bytes"]), motion=bool(values["motion"]) or mode == "motion",
                        mode=mode, motionThreshold=float(values["motion_threshold"]),
                        motionMask=tuple(values.get(MASK_KEY, ())), preRoll=float(values["pre_roll"]),
                        postRoll=float(values["post_roll"]))
