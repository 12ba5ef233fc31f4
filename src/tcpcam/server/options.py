"""The reference server's settings, one table for ``tcpcam serve`` and ``twistd tcpcam-server``."""

from __future__ import annotations

from typing import Any

from tcpcam.core import limits
from tcpcam.core.mac import parse_key
from tcpcam.core.options import Option, OptionTable
from tcpcam.server.protocol import DEFAULT_KEEPALIVE, TCPCamServerFactory
from tcpcam.server.sources import DEFAULT_SPEC, IFrameSource, builtinSources, sourceFromSpec

#: The original's port, on every interface.
DEFAULT_LISTEN = "tcp:%d" % limits.DEFAULT_PORT

OPTIONS = OptionTable((
    Option("listen", DEFAULT_LISTEN, "text", 1, 1000,
           "endpoint to listen on, such as tcp:3333 or tcp:3333:interface=127.0.0.1", short="l"),
    Option("pin", limits.DEFAULT_PIN, "pin", 1, limits.MAX_TOKEN_BYTES, "PIN legacy clients must send", short="p"),
    Option("key", "", "key", meaning="device key of protocol 2 (base32 text; empty: protocol 2 off)", short="k"),
    Option("legacy", True, "bool", meaning="also serve legacy clients (with the PIN)"),
    Option("name", "tcpcam", "text", 1, 32, "the camera's name in protocol 2's hello"),
    Option("source", DEFAULT_SPEC, "text", 1, 4096,
           "frame source, one of " + ", ".join(builtinSources()) + " or an installed tcpcam.sources plugin",
           short="s"),
    Option("interval_ms", limits.SERVER_INTERVAL_MS, "number", 0, limits.MAX_INTERVAL_MS,
           "milliseconds between frames; 0 sends as fast as the clients take them", short="i"),
    Option("max_clients", limits.MAX_CLIENTS, "int", 1, limits.SERVER_MAX_CLIENTS,
           "most connections at once; more are closed at once"),
    Option("handshake_timeout", limits.HANDSHAKE_TIMEOUT_MS / 1000, "number", 0.001, 600,
           "seconds a client has to send its PIN and command"),
    Option("send_timeout", limits.SEND_TIMEOUT_MS / 1000, "number", 0.001, 3600,
           "seconds a streaming client may take to accept one frame before it is dropped"),
    Option("keepalive", DEFAULT_KEEPALIVE, "keepalive", meaning="TCP keep-alive of each connection"),
    Option("pending_per_address", limits.PENDING_PER_ADDRESS, "int", 1, limits.SERVER_MAX_CLIENTS,
           "connections one address may have that have not given the PIN yet"),
    Option("first_byte_timeout", limits.FIRST_BYTE_TIMEOUT_MS / 1000, "number", 0.001, 600,
           "seconds a connection has for its first byte"),
    Option("pin_failures", limits.PIN_FAILURES, "int", 1, 1000,
           "failed requests from one address that get it refused; 0 turns throttling off", zero=True),
    Option("pin_window", limits.PIN_WINDOW_MS / 1000, "number", 0.001, 86400,
           "seconds over which failed requests are counted"),
    Option("pin_block", limits.PIN_BLOCK_MS / 1000, "number", 0.001, 86400,
           "seconds an address is refused after too many failed requests"),
))


def buildFactory(values: dict[str, Any], reactor: Any = None, source: IFrameSource | None = None
                 ) -> TCPCamServerFactory:
    """A :class:`~tcpcam.server.protocol.TCPCamServerFactory` from checked option values.

    ``source`` (an already built source) overrides ``values["source"]``.
    Raises ValueError (including :class:`~tcpcam.server.sources.SourceSpecError`)
    with a one-line message for an unusable value.
    """
    if source is None:
        source = sourceFromSpec(values["source"], reactor)
    key = parse_key(values["key"]) if values["key"] else None
    if key is None and not values["legacy"]:
        raise ValueError("--legacy false needs a --key: without one only legacy clients could connect")
    return TCPCamServerFactory(
        source, pin=values["pin"], key=key, legacy=values["legacy"], name=values["name"],
        interval=values["interval_ms"] / 1000, maxClients=values["max_clients"],
        handshakeTimeout=values["handshake_timeout"], sendTimeout=values["send_timeout"],
        keepAlive=values["keepalive"], reactor=reactor, pinFailures=values["pin_failures"],
        pinWindow=values["pin_window"], pinBlock=values["pin_block"],
        pendingPerAddress=values["pending_per_address"], firstByteTimeout=values["first_byte_timeout"])


def checkedValues(texts: dict[str, str]) -> dict[str, Any]:
    """Every option's value from the texts given, or ValueError with the first problem."""
    values, problems = OPTIONS.parse_texts(texts)
    if problems:
        raise ValueError(problems[0])
    return values
