"""The Host header check that stops DNS rebinding.

A page on another site can make the user's browser send requests to the
recorder under the attacker's own host name (DNS rebinding: the name first
points at the attacker, then at the recorder), and read the answers, even
when the recorder listens on 127.0.0.1 only. Such requests carry the
attacker's name in their Host header. So the web interface answers only
requests whose Host is:

- an IP address (IPv4, or IPv6 in brackets): a rebinding attack needs a name;
- ``localhost`` or a name under ``.localhost`` (browsers resolve them to
  loopback themselves);
- this machine's own name (``socket.gethostname()``, also with ``.local``);
- a name the user allows with ``--web-hosts`` (``*`` allows any).

A request with no Host header (HTTP/1.0 tools) is answered: browsers always
send one.
"""

from __future__ import annotations

import ipaddress
import socket
from collections.abc import Iterable


def hostName(header: bytes) -> str | None:
    """The host part of a Host header, lower case, without port or final dot; None if it is malformed."""
    try:
        text = header.decode("ascii").strip().lower()
    except UnicodeDecodeError:
        return None
    if text.startswith("["):
        end = text.find("]")
        port = text[end + 1:] if end >= 0 else None
        if port is None or (port and not (port.startswith(":") and port[1:].isdigit())):
            return None
        return text[:end + 1]
    host, colon, port = text.partition(":")
    if colon and not port.isdigit():
        return None
    return host[:-1] if host.endswith(".") else host


def isAddress(host: str) -> bool:
    """True for an IPv4 address or a bracketed IPv6 address."""
    literal = host[1:-1] if host.startswith("[") and host.endswith("]") else host
    try:
        address = ipaddress.ip_address(literal)
    except ValueError:
        return False
    return (address.version == 6) == host.startswith("[")


class HostCheck:
    """Decide whether a Host header names this recorder (see the module)."""

    def __init__(self, allowed: Iterable[str] = (), machineName: str | None = None) -> None:
        names = {name.lower().rstrip(".") for name in allowed}
        self.anyHost = "*" in names
        machine = (socket.gethostname() if machineName is None else machineName).lower().rstrip(".")
        if machine:
            names.update((machine, machine.split(".")[0] + ".local"))
        self.names = frozenset(names - {"*"})

    def allows(self, header: bytes | None) -> bool:
        """True if a request with this Host header (None: none) may be answered."""
        if header is None or self.anyHost:
            return True
        host = hostName(header)
        if not host:
            return False
        return (isAddress(host) or host == "localhost" or host.endswith(".localhost")
                or host in self.names)
