"""config.json: every key with its default and its rule, and a loader that never fails.

A missing file, bad JSON, an unknown key or a bad value each give one clear
line on the console and the safe default, so a typo can never cause a crash
loop on the board. The host's ``tcpcam firmware config`` command validates with
this same table, so both sides agree on what a good value is.
"""

import json

from tcpcam.errors import TCPCamError
from tcpcam.request import DEFAULT_IDLE_MS, check_pin

#: Name of the configuration file in the device's root folder.
CONFIG_FILE = "config.json"
#: Frame sizes offered by the original firmware, as micropython-camera-driver
#: names them (``camera.FRAME_<name>``).
FRAMESIZES = ("240X240", "QVGA", "CIF", "HVGA", "VGA", "SVGA", "XGA", "HD", "SXGA", "UXGA")
#: Frame sources: the original's three build types.
SOURCES = ("camera", "jpeg", "hello")

# key, default, kind, low/choices, high, meaning. Kinds: int, bool, str, choice, pin, ipv4.
SCHEMA = (
    ("ssid", "", "str", 0, 32, "WiFi network name (empty: do not join)"),
    ("password", "", "str", 0, 63, "WiFi password"),
    ("port", 3333, "int", 1, 65535, "TCP port"),
    ("bind", "0.0.0.0", "ipv4", None, None, "address to listen on"),
    ("pin", "1235", "pin", 1, 128, "PIN clients must send"),
    ("source", "camera", "choice", SOURCES, None, "frame source"),
    ("framesize", "VGA", "choice", FRAMESIZES, None, "camera frame size"),
    ("quality", 10, "int", 10, 63, "JPEG quality (lower is better)"),
    ("flip", False, "bool", None, None, "flip the picture upside down"),
    ("mirror", False, "bool", None, None, "mirror the picture left to right"),
    ("interval_ms", 2000, "int", 0, 3600000, "time between frames"),
    ("max_clients", 8, "int", 1, 16, "clients served at once"),
    ("handshake_timeout_ms", 10000, "int", 100, 600000, "time a client has for its PIN and command"),
    ("send_timeout_ms", 30000, "int", 100, 600000, "time a streaming client may take to accept one frame"),
    ("idle_ms", DEFAULT_IDLE_MS, "int", 10, 10000, "quiet time that ends an unterminated token"),
    ("keepalive_idle", 5, "int", 1, 7200, "TCP keep-alive idle seconds"),
    ("keepalive_interval", 5, "int", 1, 600, "seconds between keep-alive probes"),
    ("keepalive_count", 3, "int", 1, 60, "keep-alive probes before the connection is dropped"),
    ("jpeg_path", "test.jpg", "str", 1, 128, "JPEG file served by the jpeg source"),
    ("hello_text", "Hello World", "str", 1, 1024, "text served by the hello source"),
    ("chunk_bytes", 4096, "int", 256, 65536, "bytes written per slice of a frame"),
    ("wifi_timeout_ms", 15000, "int", 1000, 120000, "time one WiFi join attempt may take"),
    ("wifi_retry_ms", 1000, "int", 10, 60000, "first pause before joining again"),
    ("wifi_retry_max_ms", 30000, "int", 10, 600000, "longest pause between join attempts"),
    ("camera_retry_ms", 2000, "int", 10, 600000, "pause before the camera is started again"),
    ("stats_every", 0, "int", 0, 1000000, "log frame and heap figures every N frames (0: never)"),
)


def defaults():
    """A new dict holding every key's default."""
    return {entry[0]: entry[1] for entry in SCHEMA}


def describe(entry):
    """The rule of one schema entry in words, for messages."""
    _, _, kind, low, high, _ = entry
    if kind == "int":
        return "a whole number from %d to %d" % (low, high)
    if kind == "bool":
        return "true or false"
    if kind == "choice":
        return "one of " + ", ".join(low)
    if kind == "pin":
        return "1 to %d characters with no CR, LF or NUL" % high
    if kind == "ipv4":
        return "an IPv4 address such as 0.0.0.0"
    return "text of %d to %d characters" % (low, high)


def check(entry, value):
    """Return ``value`` normalised if it is good for ``entry``, else raise ValueError."""
    _, _, kind, low, high, _ = entry
    if kind == "int":
        if type(value) is not int or not low <= value <= high:
            raise ValueError(describe(entry))
        return value
    if kind == "bool":
        if type(value) is not bool:
            raise ValueError(describe(entry))
        return value
    if not isinstance(value, str):
        raise ValueError(describe(entry))
    if kind == "choice":
        for choice in low:
            if value.upper() == choice.upper():
                return choice
        raise ValueError(describe(entry))
    if kind == "pin":
        try:
            check_pin(value, high)
        except TCPCamError:
            raise ValueError(describe(entry)) from None
        return value
    if kind == "ipv4":
        if not _is_ipv4(value):
            raise ValueError(describe(entry))
        return value
    if not low <= len(value) <= high:
        raise ValueError(describe(entry))
    return value


def _is_ipv4(text):
    parts = text.split(".")
    if len(parts) != 4:
        return False
    for part in parts:
        if not 1 <= len(part) <= 3 or not part.isdigit() or int(part) > 255:
            return False
    return True


def apply(data):
    """Merge ``data`` (a dict) over the defaults: returns (config, problems).

    Each problem is one line saying what was wrong and what is used instead.
    """
    config = defaults()
    problems = []
    if not isinstance(data, dict):
        problems.append("config: expected a JSON object of settings; using defaults")
        return config, problems
    entries = {entry[0]: entry for entry in SCHEMA}
    for key in sorted(data):
        entry = entries.get(key)
        if entry is None:
            problems.append("config: unknown key %r ignored" % (key,))
            continue
        try:
            config[key] = check(entry, data[key])
        except ValueError as error:
            problems.append("config: bad %s %s: expected %s; using %s"
                            % (key, _show(data[key]), error, _show(entry[1])))
    if config["wifi_retry_max_ms"] < config["wifi_retry_ms"]:
        problems.append("config: wifi_retry_max_ms is below wifi_retry_ms; using %d"
                        % config["wifi_retry_ms"])
        config["wifi_retry_max_ms"] = config["wifi_retry_ms"]
    if len(config["password"]) not in range(8, 64) and config["password"]:
        problems.append("config: bad password: a WPA password has 8 to 63 characters; using none")
        config["password"] = ""
    return config, problems


def load(path=CONFIG_FILE, say=print):
    """Read ``path`` and return the config; every problem is said once, never raised."""
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError:
        say("config: no %s; using defaults" % path)
        return defaults()
    try:
        data = json.loads(text)
    except ValueError:
        say("config: %s is not valid JSON; using defaults" % path)
        return defaults()
    config, problems = apply(data)
    for problem in problems:
        say(problem)
    return config


def _show(value):
    text = json.dumps(value)
    if len(text) > 40:
        text = text[:37] + "..."
    return text
