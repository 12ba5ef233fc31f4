"""Endpoint strings checked before anything starts, with the form to use when one is wrong."""

from __future__ import annotations

import re

from twisted.internet.endpoints import clientFromString, serverFromString

#: What a client endpoint (a camera) looks like.
CLIENT_EXAMPLE = "tcp:host=192.168.1.50:port=3333"
#: What a server endpoint (a port to listen on) looks like.
SERVER_EXAMPLE = "tcp:8080:interface=127.0.0.1"

_HOST_PORT = re.compile(r"^\[?([^\[\]=]*?)\]?:(\d{1,5})$")
_PORT = re.compile(r"^\d{1,5}$")


class _NoReactor:
    """Stands in for the reactor while endpoint strings are only being checked."""


def _escaped(host: str) -> str:
    return host.replace(":", "\\:")


def hint(description: str, server: bool) -> str:
    """The form to write instead of ``description``: its own host and port in endpoint syntax if it has them."""
    text = description.strip()
    match = _HOST_PORT.match(text)
    if _PORT.match(text) and server:
        return "write it as tcp:%s (every interface) or tcp:%s:interface=127.0.0.1" % (text, text)
    if match and match.group(1):
        host, port = match.group(1), match.group(2)
        if server:
            return "write it as %s:%s:interface=%s" % ("tcp6" if ":" in host else "tcp", port, _escaped(host))
        return "write it as tcp:host=%s:port=%s" % (_escaped(host), port)
    return "a %s endpoint looks like %s" % (("server", SERVER_EXAMPLE) if server else ("client", CLIENT_EXAMPLE))


def checkEndpoint(description: str, server: bool, what: str) -> None:
    """Raise ValueError with one line (naming ``what`` and the right form) unless ``description`` parses.

    ``server`` picks a server endpoint (to listen on) over a client one (to connect to).
    """
    parse = serverFromString if server else clientFromString
    try:
        parse(_NoReactor(), description)
    except (ValueError, TypeError, KeyError, IndexError) as error:
        raise ValueError("bad endpoint for %s: %r: %s (%s)" % (what, description, error, hint(description, server))
                         ) from None
