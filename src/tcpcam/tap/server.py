"""``twistd tcpcam-server``: the reference server as a twistd service."""

from __future__ import annotations

from typing import Any, cast

from twisted.application import strports
from twisted.application.service import IService
from twisted.internet.interfaces import IProtocolFactory
from twisted.python import usage

from tcpcam.common.endpoints import checkEndpoint
from tcpcam.common.optionparsers import textsFromTwisted, twistedParameters
from tcpcam.common.signals import restoreInterrupt
from tcpcam.server.options import OPTIONS, buildFactory, checkedValues
from tcpcam.server.sources import sourceFromSpec
from tcpcam.tap.usage import OneLineOptions


class Options(OneLineOptions):
    """The options of ``tcpcam serve``, for twistd."""

    synopsis = "[options]"
    longdesc = ("Serve TCPCam frames from a source (a simulated camera by default): "
                "the reference server of the TCPCam protocol.")
    optParameters = twistedParameters(OPTIONS)

    def postOptions(self) -> None:
        """Check every value and build the source now, so that a bad one is one usage line."""
        try:
            self.checked: dict[str, Any] = checkedValues(textsFromTwisted(self, OPTIONS))
            checkEndpoint(self.checked["listen"], True, "--listen")
            self.source = sourceFromSpec(self.checked["source"])
        except ValueError as error:
            raise usage.UsageError(str(error)) from None


def makeService(options: Options) -> IService:
    """The listening service for parsed :class:`Options`."""
    # twistd started by a script in the background inherits SIGINT ignored.
    restoreInterrupt()
    try:
        factory = buildFactory(options.checked, source=options.source)
    except ValueError as error:
        raise usage.UsageError(str(error)) from None
    return cast(IService, strports.service(options.checked["listen"], cast(IProtocolFactory, factory)))
