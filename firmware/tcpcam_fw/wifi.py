"""Join the WiFi network as a station and stay joined, with backoff between attempts.

Boards without a ``network`` module (the unix port that runs the simulator)
skip WiFi with one line on the console. A :class:`WifiLink` tells the rest
of the firmware how the link is: the app starts the camera only once the
first join attempt has ended (the known cure for brownouts when WiFi and
camera draw their start-up current at once), NTP waits for a join, and
health reads the signal strength from its station.
"""

try:
    import asyncio
except ImportError:  # MicroPython before 1.21 calls it uasyncio
    import uasyncio as asyncio
import time

from tcpcam_fw.log import say

#: How often a joined station checks that it is still joined, in ms.
CHECK_MS = 2000


class WifiLink:
    """The state of the WiFi link, as :func:`keep_joined` keeps it."""

    def __init__(self):
        #: The station interface (``network.WLAN``), once WiFi is up.
        self.station = None
        #: True while joined.
        self.joined = False
        #: Joins so far.
        self.joins = 0
        #: Set once the first join attempt ended: joined, failed or timed out (or WiFi is skipped).
        self.first_attempt = asyncio.Event()


def next_delay(delay, config):
    """The pause after ``delay`` ms: doubled, capped at ``wifi_retry_max_ms``."""
    return min(delay * 2, config["wifi_retry_max_ms"])


async def keep_joined(config, network=None, rounds=-1, link=None):
    """Join, then rejoin whenever the link drops; ``rounds`` >= 0 bounds the loop (tests).

    ``link`` (a :class:`WifiLink`) is kept up to date; its ``first_attempt``
    is set when the first attempt ended, or at once when WiFi is skipped.
    """
    link = link or WifiLink()
    try:
        await _keep_joined(config, network, rounds, link)
    finally:
        link.first_attempt.set()


async def _keep_joined(config, network, rounds, link):
    if network is None:
        try:
            import network
        except ImportError:
            say("wifi: no network module here; serving on the host's network")
            return
    if not config["ssid"]:
        say("wifi: no ssid in config.json; not joining a network")
        return
    station = network.WLAN(network.STA_IF)
    station.active(True)
    link.station = station
    delay = config["wifi_retry_ms"]
    while rounds != 0:
        rounds -= 1
        if station.isconnected():
            if not link.joined:
                link.joined = True
                link.joins += 1
                delay = config["wifi_retry_ms"]
                say("wifi: joined %s as %s" % (config["ssid"], station.ifconfig()[0]))
            link.first_attempt.set()
            await asyncio.sleep_ms(CHECK_MS)
            continue
        if link.joined:
            link.joined = False
            say("wifi: lost %s; joining again" % config["ssid"])
        if await _attempt(station, config):
            continue
        link.first_attempt.set()
        say("wifi: could not join %s (status %s); next try in %d ms"
            % (config["ssid"], station.status(), delay))
        await asyncio.sleep_ms(delay)
        delay = next_delay(delay, config)


async def _attempt(station, config):
    try:
        station.disconnect()
    except OSError:
        pass
    try:
        station.connect(config["ssid"], config["password"])
    except OSError as error:
        say("wifi: connect failed: %s" % (error,))
        return False
    deadline = time.ticks_add(time.ticks_ms(), config["wifi_timeout_ms"])
    while time.ticks_diff(deadline, time.ticks_ms()) > 0:
        if station.isconnected():
            return True
        await asyncio.sleep_ms(100)
    return station.isconnected()
