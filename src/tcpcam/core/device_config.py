"""The firmware's ``config.json``: every key with its default and its rule.

The board reads its file with :func:`apply`, which never fails: a bad value
gives one line and the default, so a typo can never cause a crash loop.
The host's ``tcpcam firmware config`` refuses with the same table, so both
sides agree on what a good value is.
"""

from tcpcam.core.camera_settings import SETTINGS
from tcpcam.core.limits import (
    BOARD_INTERVAL_MS,
    BOARD_MAX_CLIENTS,
    CLOSE_TIMEOUT_MS,
    DEFAULT_PIN,
    DEFAULT_PORT,
    FIRST_BYTE_TIMEOUT_MS,
    HANDSHAKE_TIMEOUT_MS,
    IDLE_MS,
    KEEPALIVE_COUNT,
    KEEPALIVE_IDLE_S,
    KEEPALIVE_INTERVAL_S,
    MAX_CLIENTS,
    MAX_FRAME_BUFFERS,
    MAX_INTERVAL_MS,
    MAX_TOKEN_BYTES,
    MAX_WATCHDOG_TIMEOUT_MS,
    MIN_WATCHDOG_TIMEOUT_MS,
    NTP_HOST,
    PENDING_PER_ADDRESS,
    PIN_FAILURES,
    SEND_TIMEOUT_MS,
    WATCHDOG_TIMEOUT_MS,
)
from tcpcam.core.options import Option, OptionTable, show_value

#: Name of the configuration file in the device's root folder.
CONFIG_FILE = "config.json"
#: Frame sources: the original's three build types.
SOURCES = ("camera", "jpeg", "hello")
#: A WPA password's length; an empty password joins an open network.
WPA_PASSWORD_LENGTHS = (8, 63)

SCHEMA = OptionTable((
    Option("ssid", "", "text", 0, 32, "WiFi network name (empty: do not join)"),
    Option("password", "", "text", 0, WPA_PASSWORD_LENGTHS[1], "WiFi password (empty for an open network)",
           wording="empty, or %d to %d characters" % WPA_PASSWORD_LENGTHS),
    Option("port", DEFAULT_PORT, "int", 1, 65535, "TCP port"),
    Option("bind", "0.0.0.0", "ipv4", meaning="address to listen on"),
    Option("pin", DEFAULT_PIN, "pin", 1, MAX_TOKEN_BYTES, "PIN legacy clients must send"),
    Option("key", "", "key", meaning="device key of protocol 2, as tcpcam firmware config writes it"
           " (empty: protocol 2 off)"),
    Option("legacy", True, "bool", meaning="also serve legacy clients (with the PIN)"),
    Option("name", "tcpcam", "text", 1, 32, "the camera's name in protocol 2's hello"),
    Option("source", "camera", "choice", meaning="frame source", choices=SOURCES),
) + SETTINGS.options + (
    Option("interval_ms", BOARD_INTERVAL_MS, "int", 0, MAX_INTERVAL_MS, "time between frames", unit="ms"),
    Option("max_clients", MAX_CLIENTS, "int", 1, BOARD_MAX_CLIENTS, "clients served at once"),
    Option("handshake_timeout_ms", HANDSHAKE_TIMEOUT_MS, "int", 100, 600000,
           "time a client has for its PIN and command", unit="ms"),
    Option("send_timeout_ms", SEND_TIMEOUT_MS, "int", 100, 600000,
           "time a streaming client may take to accept one frame", unit="ms"),
    Option("close_timeout_ms", CLOSE_TIMEOUT_MS, "int", 100, 600000,
           "time a finished client may take to read its last frame", unit="ms"),
    Option("idle_ms", IDLE_MS, "int", 10, 10000, "quiet time that ends an unterminated token", unit="ms"),
    Option("pin_failures", PIN_FAILURES, "int", 1, 1000,
           "failed requests from one address that get it refused for a minute", zero=True),
    Option("pending_per_address", PENDING_PER_ADDRESS, "int", 1, BOARD_MAX_CLIENTS,
           "connections one address may have that have not given the PIN yet"),
    Option("first_byte_timeout_ms", FIRST_BYTE_TIMEOUT_MS, "int", 100, 600000,
           "time a connection has for its first byte", unit="ms"),
    Option("keepalive_idle", KEEPALIVE_IDLE_S, "int", 1, 7200, "TCP keep-alive idle time", unit="s"),
    Option("keepalive_interval", KEEPALIVE_INTERVAL_S, "int", 1, 600, "time between keep-alive probes", unit="s"),
    Option("keepalive_count", KEEPALIVE_COUNT, "int", 1, 60, "keep-alive probes before the connection is dropped"),
    Option("jpeg_path", "test.jpg", "text", 1, 128, "JPEG file served by the jpeg source"),
    Option("hello_text", "Hello World", "text", 1, 1024, "text served by the hello source"),
    Option("chunk_bytes", 4096, "int", 256, 65536, "bytes written per slice of a frame"),
    Option("wifi_timeout_ms", 15000, "int", 1000, 120000, "time one WiFi join attempt may take", unit="ms"),
    Option("wifi_retry_ms", 1000, "int", 10, 60000, "first pause before joining again", unit="ms"),
    Option("wifi_retry_max_ms", 30000, "int", 10, 600000, "longest pause between join attempts", unit="ms"),
    Option("camera_retry_ms", 2000, "int", 10, 600000, "pause before the camera is started again", unit="ms"),
    Option("stats_every", 0, "int", 1, 1000000, "log frame and heap figures every N frames", zero=True),
    Option("frame_buffers", 0, "int", 1, MAX_FRAME_BUFFERS,
           "camera frame buffers (0: two where the board has PSRAM, else one)", zero=True),
    Option("watchdog_ms", WATCHDOG_TIMEOUT_MS, "int", MIN_WATCHDOG_TIMEOUT_MS, MAX_WATCHDOG_TIMEOUT_MS,
           "hardware watchdog timeout (0: no watchdog)", zero=True, unit="ms"),
    Option("ntp_host", NTP_HOST, "text", 0, 64, "NTP server that sets the clock (empty: do not set it)"),
))


def defaults() -> dict:
    """A new dict holding every key's default."""
    return SCHEMA.defaults()


def apply(data: object) -> tuple:
    """Merge ``data`` (the parsed file) over the defaults: returns ``(config, problems)``.

    Each problem is one line saying what was wrong and what is used instead;
    :func:`refusals` turns them into the host's refusals.
    """
    config, found = SCHEMA.merge(data)
    problems = []
    for line in found:
        if line.startswith("unknown key"):
            problems.append("config: %s ignored" % line)
        elif line.startswith("bad "):
            key = line.split(" ", 2)[1]
            problems.append("config: %s; using %s" % (line, show_value(SCHEMA[key].default)))
        else:
            problems.append("config: %s; using defaults" % line)
    if config["wifi_retry_max_ms"] < config["wifi_retry_ms"]:
        problems.append("config: wifi_retry_max_ms is below wifi_retry_ms; using %d" % config["wifi_retry_ms"])
        config["wifi_retry_max_ms"] = config["wifi_retry_ms"]
    if not config["key"] and not config["legacy"]:
        problems.append("config: legacy is false but there is no key; serving legacy clients")
        config["legacy"] = True
    password = config["password"]
    if password and not WPA_PASSWORD_LENGTHS[0] <= len(password) <= WPA_PASSWORD_LENGTHS[1]:
        problems.append("config: bad password: a WPA password has %d to %d characters; using none"
                        % WPA_PASSWORD_LENGTHS)
        config["password"] = ""
    return config, problems


def refusal(problem: str) -> str:
    """A board's problem line as the host's refusal: what is wrong, without what the board would use."""
    head = problem.split("; using ", 1)[0]
    if head.endswith(" ignored"):
        head = head[:-len(" ignored")]
    return head
