"""The server's settings, defined once for ``tcpcam serve`` and ``twistd tcpcam-server``."""

from tcpcam.broadcast import DEFAULT_MAX_CLIENTS
from tcpcam.server import (
    DEFAULT_HANDSHAKE_TIMEOUT,
    DEFAULT_KEEPALIVE,
    DEFAULT_PIN,
    DEFAULT_SEND_TIMEOUT,
    TCPCamServerFactory,
)
from tcpcam.sources import DEFAULT_SPEC, builtinSources, sourceFromSpec
from tcpcam.throttle import DEFAULT_BLOCK, DEFAULT_MAX_FAILURES, DEFAULT_WINDOW, PinThrottle

#: The original's port.
DEFAULT_LISTEN = "tcp:3333"
#: Milliseconds between frames by default (the original's test build used 2000).
DEFAULT_INTERVAL_MS = 100


def _number(kind, low, what):
    def coerce(text):
        try:
            value = kind(text)
        except (TypeError, ValueError):
            raise ValueError("%s must be a number, not %r" % (what, text)) from None
        if value < low:
            raise ValueError("%s must be at least %s, not %s" % (what, low, value))
        return value

    return coerce


def keepAliveSetting(text):
    """``"IDLE,INTERVAL,COUNT"`` (seconds, seconds, probes) or ``"off"`` -> tuple or None."""
    if isinstance(text, tuple) or text is None:
        return text
    if text.strip().lower() in ("off", "no", "0"):
        return None
    parts = text.split(",")
    if len(parts) != 3 or not all(part.strip().isdigit() and int(part) > 0 for part in parts):
        raise ValueError("keep-alive must be IDLE,INTERVAL,COUNT such as 5,5,3 (all above 0) or off, not %r"
                         % (text,))
    return tuple(int(part) for part in parts)


#: (name, short name, default, coerce, help) for every server option.
OPTIONS = (
    ("listen", "l", DEFAULT_LISTEN, str, "endpoint to listen on, such as tcp:3333 or tcp:3333:interface=127.0.0.1"),
    ("pin", "p", DEFAULT_PIN, str, "PIN the clients must send"),
    ("source", "s", DEFAULT_SPEC, str, "frame source: " + ", ".join(builtinSources())
     + " or an installed tcpcam.sources plugin"),
    ("interval-ms", "i", DEFAULT_INTERVAL_MS, _number(float, 0, "interval-ms"),
     "milliseconds between frames; 0 sends as fast as the clients take them"),
    ("max-clients", None, DEFAULT_MAX_CLIENTS, _number(int, 1, "max-clients"),
     "most connections at once; more are closed at once"),
    ("handshake-timeout", None, DEFAULT_HANDSHAKE_TIMEOUT, _number(float, 0.001, "handshake-timeout"),
     "seconds a client has to send its PIN and command"),
    ("send-timeout", None, DEFAULT_SEND_TIMEOUT, _number(float, 0.001, "send-timeout"),
     "seconds a streaming client may take to accept one frame before it is dropped"),
    ("keepalive", None, DEFAULT_KEEPALIVE, keepAliveSetting,
     "TCP keep-alive IDLE,INTERVAL,COUNT (seconds, seconds, probes), or off"),
    ("pin-failures", None, DEFAULT_MAX_FAILURES, _number(int, 0, "pin-failures"),
     "wrong PINs from one address that get it refused; 0 turns throttling off"),
    ("pin-window", None, DEFAULT_WINDOW, _number(float, 0.001, "pin-window"),
     "seconds over which wrong PINs are counted"),
    ("pin-block", None, DEFAULT_BLOCK, _number(float, 0.001, "pin-block"),
     "seconds an address is refused after too many wrong PINs"),
)


def addArguments(parser):
    """Add every server option to an ``argparse`` parser."""
    for name, short, default, coerce, help_text in OPTIONS:
        flags = ["--" + name] + (["-" + short] if short else [])
        parser.add_argument(*flags, default=default, type=_forArgparse(coerce),
                            help="%s (default: %s)" % (help_text, _show(default)))


def _forArgparse(coerce):
    import argparse

    def wrapped(text):
        try:
            return coerce(text)
        except ValueError as error:
            raise argparse.ArgumentTypeError(str(error)) from None

    wrapped.__name__ = getattr(coerce, "__name__", "value")
    return wrapped


def _show(default):
    if isinstance(default, tuple):
        return ",".join(str(part) for part in default)
    return default


def twistedParameters():
    """The options as ``usage.Options.optParameters`` rows."""
    return [[name, short, _show(default), "%s." % (help_text[:1].upper() + help_text[1:]), coerce]
            for name, short, default, coerce, help_text in OPTIONS]


def fromNamespace(namespace):
    """The option values of an ``argparse`` namespace, keyed by option name."""
    return {name: getattr(namespace, name.replace("-", "_")) for name, _, _, _, _ in OPTIONS}


def buildFactory(options, reactor=None, source=None):
    """A :class:`TCPCamServerFactory` from option values keyed by option name.

    ``source`` (an already built source) overrides ``options["source"]``.
    Raises ValueError (including :class:`~tcpcam.sources.SourceSpecError`)
    with a one-line message for an unusable value.
    """
    if source is None:
        source = sourceFromSpec(options["source"], reactor)
    throttle = None
    if int(options["pin-failures"]) > 0:
        throttle = PinThrottle(int(options["pin-failures"]), float(options["pin-window"]),
                               float(options["pin-block"]))
    from tcpcam.errors import LocalProtocolError

    try:
        return TCPCamServerFactory(
            source, pin=options["pin"], interval=float(options["interval-ms"]) / 1000.0,
            maxClients=int(options["max-clients"]), handshakeTimeout=float(options["handshake-timeout"]),
            sendTimeout=float(options["send-timeout"]), keepAlive=keepAliveSetting(options["keepalive"]),
            reactor=reactor, throttle=throttle)
    except LocalProtocolError as error:
        raise ValueError(str(error)) from None
