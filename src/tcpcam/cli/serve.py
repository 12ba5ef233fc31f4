"""Run the reference server: frames from a source (a simulated camera by default) to TCPCam clients."""

from __future__ import annotations

import argparse
import sys
from typing import Any, cast

from twisted.internet.interfaces import IListeningPort
from twisted.logger import ILogObserver
from twisted.python.failure import Failure

from tcpcam.common.endpoints import checkEndpoint
from tcpcam.common.optionparsers import addArguments, textsFromNamespace
from tcpcam.common.signals import restoreInterrupt
from tcpcam.server.options import OPTIONS, buildFactory, checkedValues
from tcpcam.server.protocol import describePeer


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """Add the ``serve`` options to ``parser``."""
    addArguments(parser, OPTIONS)


def run(args: argparse.Namespace) -> int:
    """Serve until interrupted; returns the exit status (1: cannot listen, 2: bad option)."""
    from twisted.internet import reactor as global_reactor
    from twisted.internet.endpoints import serverFromString
    from twisted.logger import Logger, globalLogBeginner, textFileLogObserver

    reactor: Any = global_reactor

    try:
        values = checkedValues(textsFromNamespace(args, OPTIONS))
        checkEndpoint(values["listen"], True, "--listen")
        factory = buildFactory(values, reactor)
        endpoint = serverFromString(reactor, values["listen"])
    except ValueError as error:
        print("tcpcam serve: %s" % (error,), file=sys.stderr)
        return 2
    globalLogBeginner.beginLoggingTo([cast(ILogObserver, textFileLogObserver(sys.stderr))], redirectStandardIO=False)
    log = Logger(namespace="tcpcam.serve")
    status: list[int] = []

    def listening(port: IListeningPort) -> None:
        log.info("tcpcam server on {address}, source {source}, at most one frame every {interval:g} ms",
                 address=describePeer(port.getHost()), source=values["source"], interval=values["interval_ms"])

    def failed(failure: Failure) -> None:
        print("tcpcam serve: cannot listen on %s: %s" % (values["listen"], failure.getErrorMessage()),
              file=sys.stderr)
        status.append(1)
        reactor.stop()

    def start() -> None:
        endpoint.listen(factory).addCallbacks(listening, failed)

    reactor.callWhenRunning(start)
    restoreInterrupt()
    reactor.run()
    return status[0] if status else 0
