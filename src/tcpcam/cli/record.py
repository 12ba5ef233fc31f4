"""Record from cameras, with a live view in the browser (the recorder without twistd).

Takes the same options as ``twistd -n tcpcam-record``. With no --camera it
records the built-in simulated camera. Stop it with Ctrl-C or SIGTERM: the
frame being written is finished and no temporary file is left.
"""

from __future__ import annotations

import argparse
import sys
from typing import Any, cast

from tcpcam.common.optionparsers import addArguments, textsFromNamespace
from tcpcam.common.signals import restoreInterrupt
from tcpcam.fleet import config as fleetconfig
from tcpcam.record import config as recordconfig
from tcpcam.tap.record import CAMERA_HELP, CONFIG_HELP, NO_WEB_HELP, checkedConfig, checkedFleet


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the recorder's options to ``parser``: the same table as the twistd plugin's."""
    parser.add_argument("--camera", "-C", action="append", default=[], metavar="NAME=ENDPOINT", help=CAMERA_HELP)
    parser.add_argument("--config", "-c", metavar="FILE", help=CONFIG_HELP)
    parser.add_argument("--no-web", action="store_true", help=NO_WEB_HELP)
    addArguments(parser, recordconfig.OPTIONS)
    addArguments(parser, fleetconfig.FLEET_OPTIONS)


def run(args: argparse.Namespace, recording: bool = True, command: str = "tcpcam record") -> int:
    """Check the options, then record until stopped; returns the exit status."""
    try:
        texts = textsFromNamespace(args, recordconfig.OPTIONS)
        config = checkedConfig(texts, args.camera, args.config, args.no_web)
        fleet, defaults = checkedFleet(textsFromNamespace(args, fleetconfig.FLEET_OPTIONS), texts, config,
                                       args.camera, args.config)
        if not recording and fleet is None:
            raise recordconfig.ConfigError("%s needs --fleet nats://HOST:PORT" % command)
    except recordconfig.ConfigError as error:
        print("%s: %s" % (command, error), file=sys.stderr)
        return 2
    from twisted.logger import ILogObserver, Logger, globalLogBeginner, textFileLogObserver

    service: Any
    if fleet is not None:
        from tcpcam.fleet.aio import installAsyncioReactor
        from tcpcam.tap.record import fleetService

        reactor: Any = installAsyncioReactor()
        globalLogBeginner.beginLoggingTo([cast(ILogObserver, textFileLogObserver(sys.stderr))],
                                         redirectStandardIO=False)
        service = fleetService(fleet, config, defaults, reactor, recording=recording)
    else:
        from twisted.internet import reactor as global_reactor

        from tcpcam.record.service import RecorderService

        reactor = global_reactor
        globalLogBeginner.beginLoggingTo([cast(ILogObserver, textFileLogObserver(sys.stderr))],
                                         redirectStandardIO=False)
        service = RecorderService(config, reactor)
        Logger(namespace="tcpcam.record").info("{what}", what=service.describe())
    reactor.callWhenRunning(service.startService)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    restoreInterrupt()
    reactor.run()
    return 0
