"""Run the reference server: frames from a source (a simulated camera by default) to TCPCam clients."""

import sys

from tcpcam.server import describePeer
from tcpcam.server_options import addArguments, buildFactory, fromNamespace


def add_arguments(parser):
    """Add the ``serve`` options to ``parser``."""
    addArguments(parser)


def run(args):
    """Serve until interrupted; returns the exit status (1: cannot listen, 2: bad option)."""
    from twisted.internet import reactor
    from twisted.internet.endpoints import serverFromString
    from twisted.logger import Logger, globalLogBeginner, textFileLogObserver

    options = fromNamespace(args)
    try:
        factory = buildFactory(options, reactor)
        endpoint = serverFromString(reactor, options["listen"])
    except ValueError as error:
        print("tcpcam serve: %s" % (error,), file=sys.stderr)
        return 2
    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    log = Logger(namespace="tcpcam.serve")
    status = []

    def listening(port):
        log.info("tcpcam server on {address}, source {source}, at most one frame every {interval} ms",
                 address=describePeer(port.getHost()), source=options["source"], interval=options["interval-ms"])

    def failed(failure):
        print("tcpcam serve: cannot listen on %s: %s" % (options["listen"], failure.getErrorMessage()),
              file=sys.stderr)
        status.append(1)
        reactor.stop()

    def start():
        endpoint.listen(factory).addCallbacks(listening, failed)

    reactor.callWhenRunning(start)
    reactor.run()
    return status[0] if status else 0
