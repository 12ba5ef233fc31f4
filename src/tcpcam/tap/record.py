"""``twistd tcpcam-record`` (also ``twistd tcpcam``): the recorder daemon's options and service."""

from __future__ import annotations

from typing import Any, cast

from twisted.application.service import IService
from twisted.logger import Logger
from twisted.python import usage

from tcpcam.common.endpoints import checkEndpoint
from tcpcam.common.folders import folderProblem
from tcpcam.common.optionparsers import textsFromTwisted, twistedParameters
from tcpcam.common.signals import restoreInterrupt
from tcpcam.fleet import config as fleetconfig
from tcpcam.record import config as recordconfig
from tcpcam.tap.usage import OneLineOptions

log = Logger(namespace="tcpcam.record")

#: The help line of ``--camera``.
CAMERA_HELP = ("NAME=ENDPOINT: record camera NAME at a client endpoint such as"
               " tcp:host=192.168.1.50:port=3333 (repeat for more cameras)")
#: The help line of ``--config``.
CONFIG_HELP = "TOML file with settings and a [cameras.NAME] table per camera"
#: The help line of ``--no-web``.
NO_WEB_HELP = "do not serve the live view"


class Options(OneLineOptions):
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

    optFlags = [["no-web", None, NO_WEB_HELP]]
    optParameters = ([["config", "c", None, CONFIG_HELP]] + twistedParameters(recordconfig.OPTIONS)
                     + twistedParameters(fleetconfig.FLEET_OPTIONS))

    def __init__(self) -> None:
        OneLineOptions.__init__(self)
        self["camera"] = []
        self.config: recordconfig.RecorderConfig | None = None
        self.fleet: fleetconfig.FleetConfig | None = None
        self.cameraDefaults: dict[str, Any] = {}

    def opt_camera(self, spec: str) -> None:
        """NAME=ENDPOINT: record camera NAME at a client endpoint such as
        tcp:host=192.168.1.50:port=3333 (repeat for more cameras)"""
        self["camera"].append(spec)

    opt_C = opt_camera

    def postOptions(self) -> None:
        """Merge the config file and the options, and check everything."""
        try:
            texts = textsFromTwisted(self, recordconfig.OPTIONS)
            self.config = checkedConfig(texts, self["camera"], self["config"], bool(self["no-web"]))
            self.fleet, self.cameraDefaults = checkedFleet(textsFromTwisted(self, fleetconfig.FLEET_OPTIONS), texts,
                                                           self.config, self["camera"], self["config"])
        except recordconfig.ConfigError as error:
            raise usage.UsageError(str(error)) from None


def checkedConfig(texts: dict[str, str], cameras: list[str], configFile: str | None,
                  noWeb: bool) -> recordconfig.RecorderConfig:
    """The recorder's config, with every endpoint string and the output folder checked.

    Raises ConfigError with one line otherwise.
    """
    config = recordconfig.configFromOptions(texts, cameras, configFile, noWeb)
    problem = folderProblem(config.out)
    if problem is not None:
        raise recordconfig.ConfigError("cannot record into %s: %s" % (config.out, problem))
    try:
        for camera in config.cameras:
            if not camera.simulated:
                checkEndpoint(camera.endpoint, False, "camera %s" % camera.name)
        if config.web is not None:
            checkEndpoint(config.web, True, "--web")
    except ValueError as error:
        raise recordconfig.ConfigError(str(error)) from None
    return config


def checkedFleet(fleetTexts: dict[str, str], texts: dict[str, str], config: recordconfig.RecorderConfig,
                 cameras: list[str], configFile: str | None) -> tuple[fleetconfig.FleetConfig | None, dict[str, Any]]:
    """The fleet config (None without ``--fleet``) and the defaults of the fleet's cameras; ConfigError if bad."""
    fleet = fleetconfig.fleetFromTexts(fleetTexts, config.out)
    if fleet is None:
        return None, {}
    if cameras or any(not camera.simulated for camera in config.cameras):
        raise recordconfig.ConfigError("with --fleet the cameras come from the fleet's registry: add them with"
                                       " tcpcam fleet add NAME ENDPOINT, not --camera or [cameras] tables")
    fleetconfig.requireExtra()
    settings: dict[str, Any] = {}
    if configFile:
        settings, _ = recordconfig.loadConfigFile(configFile)
    values, _ = recordconfig.OPTIONS.parse_texts(texts, dict(recordconfig.OPTIONS.defaults(), **settings))
    return fleet, values


def makeService(options: Options, reactor: Any = None) -> IService:
    """Return the recorder service for parsed ``options``; logs what it records first."""
    from tcpcam.record.service import RecorderService

    assert options.config is not None
    # twistd started by a script in the background inherits SIGINT ignored.
    restoreInterrupt()
    if options.fleet is not None:
        return fleetService(options.fleet, options.config, options.cameraDefaults, reactor)
    if reactor is None:
        from twisted.internet import reactor
    recorder = RecorderService(options.config, reactor)
    log.info("{what}", what=recorder.describe())
    return cast(IService, recorder)


def fleetService(fleet: fleetconfig.FleetConfig, config: recordconfig.RecorderConfig, defaults: dict[str, Any],
                 reactor: Any = None, recording: bool = True) -> IService:
    """The fleet member (on Twisted's asyncio reactor, installed here if no reactor is yet)."""
    from tcpcam.fleet.aio import installAsyncioReactor

    if reactor is None:
        try:
            reactor = installAsyncioReactor()
        except fleetconfig.FleetConfigError as error:
            raise usage.UsageError(str(error)) from None
    from tcpcam.fleet.service import FleetService

    service = FleetService(fleet, config, reactor, defaults, recording=recording)
    if recording:
        log.info("joining the fleet at {urls} as {id}: recording the cameras it gives this recorder into {out}{s3}",
                 urls=", ".join(fleet.urls), id=fleet.recorderId, out=config.out,
                 s3="" if fleet.s3 is None else " and uploading them to s3://%s/%s"
                 % (fleet.s3.bucket, fleet.s3.prefix))
    return cast(IService, service)
