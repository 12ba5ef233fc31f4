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
from tcpcam.core.options import Option, OptionTable, show_value

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

#: Where recordings go.
DEFAULT_OUT = "recordings"
#: The live view's endpoint: loopback only unless told otherwise.
DEFAULT_WEB = "tcp:8080:interface=127.0.0.1"
#: Storage formats: one file per frame, or one concatenated-JPEG file per hour.
FORMATS = ("jpg", "mjpeg")
#: Names reserved by the web interface's URL space (a camera's pages are at ``/NAME/``).
RESERVED_NAMES = ("status.json", "metrics", "login", "logout", "static")
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
    Option("out", DEFAULT_OUT, "text", 1, 4096, "folder to record into", short="o"),
    Option("format", "jpg", "choice", choices=FORMATS,
           meaning="jpg: one file per frame; mjpeg: one file per camera per hour", short="f"),
    Option("keep_days", 0, "number", 0, None, "delete recordings older than this many days (0 keeps them)"),
    Option("max_bytes", 0, "size", 1, None,
           "delete the oldest recordings beyond this total, such as 500M or 20G (0: no quota)", zero=True),
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
    OPTIONS["frame_timeout"],
    OPTIONS["max_frame_bytes"],
))


class ConfigError(ValueError):
    """A setting is wrong; the message is one line meant for the user."""


@dataclass
class CameraConfig:
    """One camera: its name (a folder and URL segment), endpoint and PIN."""

    name: str
    endpoint: str
    pin: str = limits.DEFAULT_PIN
    frameTimeout: float = limits.RECORDER_FRAME_TIMEOUT_S
    maxFrameBytes: int = limits.MAX_FRAME_BYTES
    #: True for the built-in simulated camera (its endpoint is chosen at start).
    simulated: bool = False


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
    format: str = "jpg"
    keepDays: float = 0.0
    maxBytes: int = 0
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
    settings = _checked(OPTIONS, data, "config file %s" % path)
    if not isinstance(cameras, dict):
        raise ConfigError("config file %s: 'cameras' must be a table of [cameras.NAME] tables" % path)
    tables = []
    for name, table in cameras.items():
        where = "config file %s: [cameras.%s]" % (path, name)
        if not isinstance(table, dict):
            raise ConfigError("%s must be a table" % where)
        if "endpoint" not in table:
            raise ConfigError("%s needs an endpoint" % where)
        tables.append((checkName(name), _checked(CAMERA_OPTIONS, table, where)))
    return settings, tables


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
            raise ConfigError("%s: bad %s %s: expected %s" % (where, key, show_value(value), error)) from None
    return values


def configFromOptions(texts: dict[str, str], cameraSpecs: Sequence[str] = (), configFile: str | None = None,
                      noWeb: bool = False) -> RecorderConfig:
    """The recorder's config from the command line: option texts, ``--camera`` specs, the file, ``--no-web``."""
    settings: dict[str, Any] = {}
    tables: list[tuple[str, dict[str, Any]]] = []
    if configFile:
        settings, tables = loadConfigFile(configFile)
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
        cameras.append(_camera(name, table["endpoint"], dict(values, **table)))
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
        maxBytes=int(values["max_bytes"]), web=web, backoffInitial=float(values["backoff_initial"]),
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
    return CameraConfig(name=name, endpoint=endpoint, pin=values["pin"], frameTimeout=float(values["frame_timeout"]),
                        maxFrameBytes=int(values["max_frame_bytes"]))
