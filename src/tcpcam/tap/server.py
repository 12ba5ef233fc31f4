"""``twistd tcpcam-server``: the reference server as a twistd service."""

from twisted.application import strports
from twisted.python import usage

from tcpcam.server_options import buildFactory, twistedParameters
from tcpcam.sources import SourceSpecError, sourceFromSpec


class Options(usage.Options):
    """The options of ``tcpcam serve``, for twistd."""

    synopsis = "[options]"
    longdesc = ("Serve TCPCam frames from a source (a simulated camera by default): "
                "the reference server of the TCPCam protocol.")
    optParameters = twistedParameters()

    def postOptions(self):
        """Check the source spec now, so that a bad one is a usage error."""
        try:
            self.source = sourceFromSpec(self["source"])
        except SourceSpecError as error:
            raise usage.UsageError(str(error)) from None


def makeService(options):
    """The listening service for parsed :class:`Options`."""
    try:
        factory = buildFactory(options, source=options.source)
    except ValueError as error:
        raise usage.UsageError(str(error)) from None
    return strports.service(options["listen"], factory)
