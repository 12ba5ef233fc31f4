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
    optParameters = [["config", "c", None, CONFIG_HELP]] + twistedParameters(recordconfig.OPTIONS)

    def __init__(self) -> None:
        OneLineOptions.__init__(self)
        self["camera"] = []
        self.config: recordconfig.RecorderConfig | None = None

    def opt_camera(self, spec: str) -> None:
        """NAME=ENDPOINT: record camera NAME at a client endpoint such as
        tcp:host=192.168.1.50:port=3333 (repeat for more cameras)"""
        self["camera"].append(spec)

    opt_C = opt_camera

    def postOptions(self) -> None:
        """Merge the config file and the options, and check everything."""
        try:
            self.config = checkedConfig(textsFromTwisted(self, recordconfig.OPTIONS), self["camera"],
                                        self["config"], bool(self["no-web"]))
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


def makeService(options: Options, reactor: Any = None) -> IService:
    """Return the recorder service for parsed ``options``; logs what it records first."""
    from tcpcam.record.service import RecorderService

    if reactor is None:
        from twisted.internet import reactor
    assert options.config is not None
    # twistd started by a script in the background inherits SIGINT ignored.
    restoreInterrupt()
    recorder = RecorderService(options.config, reactor)
    log.info("{what}", what=recorder.describe())
    return cast(IService, recorder)
