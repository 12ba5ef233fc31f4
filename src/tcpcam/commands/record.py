"""Record from cameras, with a live view in the browser (the recorder without twistd).

Takes the same options as ``twistd -n tcpcam-record``. With no --camera it
records the built-in simulated camera. Stop it with Ctrl-C or SIGTERM: the
frame being written is finished and no temporary file is left.
"""

import sys

from twisted.python import usage

from tcpcam.tap.record import Options


def add_arguments(parser):
    """Add the recorder's options to ``parser``, built from the twistd Options."""
    options = Options()
    for long, short, description in options.optFlags:
        names = ["--" + long] + (["-" + short] if short else [])
        parser.add_argument(*names, action="store_true", help=description)
    parser.add_argument(
        "--camera", "-C", action="append", default=[], metavar="NAME=ENDPOINT",
        help=" ".join(Options.opt_camera.__doc__.split()))
    for long, short, default, description in options.optParameters:
        names = ["--" + long] + (["-" + short] if short else [])
        parser.add_argument(*names, default=default, metavar=long.upper().replace("-", "_"),
                            help=description)


def toArgv(args):
    """Turn parsed arguments back into the recorder Options' command line."""
    options = Options()
    argv = []
    for spec in args.camera:
        argv += ["--camera", spec]
    for long, _, _ in options.optFlags:
        if getattr(args, long.replace("-", "_")):
            argv.append("--" + long)
    for long, _, _, _ in options.optParameters:
        value = getattr(args, long.replace("-", "_"))
        if value is not None:
            argv += ["--" + long, str(value)]
    return argv


def run(args):
    """Parse the options, then record until stopped; returns the exit status."""
    options = Options()
    try:
        options.parseOptions(toArgv(args))
    except usage.UsageError as error:
        print("tcpcam record: %s" % error, file=sys.stderr)
        return 2
    from twisted.internet import reactor
    from twisted.logger import globalLogBeginner, textFileLogObserver

    from tcpcam.tap.record import makeService

    globalLogBeginner.beginLoggingTo([textFileLogObserver(sys.stderr)], redirectStandardIO=False)
    service = makeService(options, reactor)
    reactor.callWhenRunning(service.startService)
    reactor.addSystemEventTrigger("before", "shutdown", service.stopService)
    reactor.run()
    return 0
