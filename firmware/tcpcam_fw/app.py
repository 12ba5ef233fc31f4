"""Start the firmware: config, reset cause, watchdog, WiFi, then the camera, NTP and the server.

The order is the staying-up order: the reset cause is said first (a
brownout shows as ``PWRON_RESET``), the watchdog starts before anything
that could hang, WiFi joins before the camera starts (the camera starts
only once the first join attempt ended, so their start-up currents never
add up), then the frame source and the server. The watchdog is fed only
while the frame loop (every capture, or no client streaming) and the
server (its reads of its clock: its timer reads it at least every minute)
make progress.
"""

try:
    import asyncio
except ImportError:  # MicroPython before 1.21 calls it uasyncio
    import uasyncio as asyncio
import sys

from tcpcam_fw import config as config_file
from tcpcam_fw.clock import MAX_GAP_MS, Clock
from tcpcam_fw.health import Health
from tcpcam_fw.log import say
from tcpcam_fw.ntp import keep_synced
from tcpcam_fw.server import FrameServer
from tcpcam_fw.sources import Monitored, make_source
from tcpcam_fw.watchdog import Liveness, Watchdog
from tcpcam_fw.wifi import WifiLink, keep_joined

from tcpcam.core.limits import CAMERA_FRAME_WAIT_MS, CAPTURE_RETRY_MAX_MS, LIVENESS_SLACK_MS


def frame_allowance_ms(config):
    """Longest the frame loop may rightly go without a capture while a client streams.

    A frame is due every ``interval_ms``; a busy client holds the next one
    back for up to ``send_timeout_ms``; failures back off up to
    ``CAPTURE_RETRY_MAX_MS``; a capture blocks up to ``CAMERA_FRAME_WAIT_MS``.
    """
    return (config["interval_ms"] + config["send_timeout_ms"] + CAPTURE_RETRY_MAX_MS + CAMERA_FRAME_WAIT_MS
            + LIVENESS_SLACK_MS)


class Firmware:
    """The running firmware's parts, for protocol 2's server to reach (health, source, watchdog).

    ``network`` overrides the ``network`` module (tests).
    """

    def __init__(self, config, network=None):
        self.config = config
        self.network = network
        self.health = Health()
        self.liveness = Liveness()
        self.watchdog = Watchdog(config["watchdog_ms"], self.liveness, on_round=self.health.now)
        self.link = WifiLink()
        self.health.link = self.link
        self.source = None
        self.server = None

    def captured(self, ok):
        """The frame loop made one capture."""
        self.liveness.mark("frames")
        self.health.captured(ok)
        every = self.config["stats_every"]
        # Half-way between the server's stats lines, so their garbage figures never include this line's.
        if ok and every and self.health.frames % every == every // 2:
            say("health: %s" % (self.health.snapshot(),))

    async def run(self):
        """Bring every part up in the staying-up order and serve until the program stops."""
        config = self.config
        health = self.health
        say("boot: reset cause %s (%s)" % (health.reset_cause, health.reset_meaning))
        self.watchdog.start()
        asyncio.create_task(self.watchdog.run())
        asyncio.create_task(keep_joined(config, self.network, link=self.link))
        await self.link.first_attempt.wait()
        asyncio.create_task(keep_synced(config, self.link, health))
        self.source = Monitored(make_source(config, health.psram), self.captured)
        self.source.start()
        server = FrameServer(config, self.source)
        server.clock = Clock(self.liveness.marker("server"))
        self.server = server
        role = server.role
        health.clients = lambda: role.streaming
        self.liveness.expect("frames", frame_allowance_ms(config), idle=lambda: not role.streaming)
        self.liveness.expect("server", MAX_GAP_MS + LIVENESS_SLACK_MS)
        await server.serve()


async def run(path=config_file.CONFIG_FILE):
    """Load the config and run the firmware."""
    await Firmware(config_file.load(path, say)).run()


def main():
    """Run the firmware until it is stopped (Ctrl-C, or the port cannot be opened)."""
    try:
        asyncio.run(run())
    except KeyboardInterrupt:
        say("tcpcam: stopped")
    except OSError as error:
        say("tcpcam: stopped: %s" % (error,))
        sys.exit(1)
    finally:
        asyncio.new_event_loop()
