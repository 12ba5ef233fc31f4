"""``twistd tcpcam-record`` (also ``twistd tcpcam``): the recorder daemon's options and service."""

from twisted.internet.endpoints import clientFromString, serverFromString
from twisted.logger import Logger
from twisted.python import usage

from tcpcam.record import config as recordconfig

log = Logger(namespace="tcpcam.record")


class Options(usage.Options):
    """Options of the recorder; ``tcpcam record`` takes the same ones.

    Values given here win over the ``--config`` file, which wins over the
    defaults. With no camera at all, the built-in simulated camera is
    recorded.
    """

    synopsis = "[--camera NAME=ENDPOINT ...] [--pin PIN] [--config FILE] [options]"
    longdesc = (
        "Record frames from TCPCam cameras into --out and show them live at --web."
        " With no --camera and no config file, record the built-in simulated camera."
    )

    optFlags = [
        ["no-web", None, "do not serve the live view"],
    ]
    optParameters = [
        ["config", "c", None, "TOML file with settings and a [cameras.NAME] table per camera"],
        ["pin", "p", None, "PIN of the cameras (default: %s)" % recordconfig.DEFAULT_PIN],
        ["out", "o", None, "folder to record into (default: ./%s)" % recordconfig.DEFAULT_OUT],
        ["format", "f", None,
         "jpg: one file per frame; mjpeg: one file per camera per hour (default: jpg)"],
        ["keep-days", None, None, "delete recordings older than this many days (default: 0, keep)"],
        ["max-bytes", None, None,
         "delete the oldest recordings beyond this total, such as 500M or 20G (default: 0, no quota)"],
        ["web", None, None,
         "server endpoint of the live view (default: %s)" % recordconfig.DEFAULT_WEB],
        ["frame-timeout", None, None,
         "seconds of silence before a camera is reconnected (default: %g)"
         % recordconfig.DEFAULT_FRAME_TIMEOUT],
        ["max-frame-bytes", None, None,
         "largest frame accepted (default: %d)" % recordconfig.DEFAULT_MAX_FRAME_BYTES],
        ["backoff-initial", None, None,
         "first delay before reconnecting, in seconds (default: %g)"
         % recordconfig.DEFAULT_BACKOFF_INITIAL],
        ["backoff-max", None, None,
         "longest delay between reconnection attempts, in seconds, before jitter (default: %g)"
         % recordconfig.DEFAULT_BACKOFF_MAX],
    ]

    #: Command-line options and the settings they set.
    _SETTINGS = (
        ("pin", "pin"), ("out", "out"), ("format", "format"), ("keep-days", "keepDays"),
        ("max-bytes", "maxBytes"), ("web", "web"), ("frame-timeout", "frameTimeout"),
        ("max-frame-bytes", "maxFrameBytes"), ("backoff-initial", "backoffInitial"),
        ("backoff-max", "backoffMax"),
    )

    def __init__(self):
        usage.Options.__init__(self)
        self["camera"] = []
        self.config = None

    def opt_camera(self, spec):
        """NAME=ENDPOINT: record camera NAME at a client endpoint such as
        tcp:host=192.168.1.50:port=3333 (repeat for more cameras)"""
        self["camera"].append(spec)

    opt_C = opt_camera

    def postOptions(self):
        """Merge the config file and the options, and check everything."""
        try:
            settings, tables = ({}, [])
            if self["config"]:
                settings, tables = recordconfig.loadConfigFile(self["config"])
            for option, setting in self._SETTINGS:
                if self[option] is not None:
                    settings[setting] = self[option]
            if self["no-web"]:
                settings["web"] = None
            self.config = recordconfig.buildConfig(settings, self["camera"], tables)
        except recordconfig.ConfigError as error:
            raise usage.UsageError(str(error)) from None
        for camera in self.config.cameras:
            if not camera.simulated:
                _checkEndpoint(clientFromString, camera.endpoint, "camera %s" % camera.name)
        if self.config.web is not None:
            _checkEndpoint(serverFromString, self.config.web, "--web")


class _NoReactor:
    """Stands in for the reactor while endpoint strings are only being checked."""


def _checkEndpoint(parse, description, what):
    try:
        parse(_NoReactor(), description)
    except (ValueError, TypeError, KeyError) as error:
        raise usage.UsageError("bad endpoint for %s: %r: %s" % (what, description, error)) from None


def makeService(options, reactor=None):
    """Return the recorder service for parsed ``options``; logs what it records first."""
    from tcpcam.record.service import RecorderService

    if reactor is None:
        from twisted.internet import reactor
    recorder = RecorderService(options.config, reactor)
    log.info("{what}", what=recorder.describe())
    return recorder
