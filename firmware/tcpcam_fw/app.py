"""Start the firmware: config, WiFi, frame source, server."""

try:
    import asyncio
except ImportError:  # MicroPython before 1.21 calls it uasyncio
    import uasyncio as asyncio
import sys

from tcpcam_fw import config as config_file
from tcpcam_fw.log import say
from tcpcam_fw.server import FrameServer
from tcpcam_fw.sources import make_source
from tcpcam_fw.wifi import keep_joined


async def run(path=config_file.CONFIG_FILE):
    """Load the config, keep WiFi joined in the background and serve frames."""
    config = config_file.load(path, say)
    asyncio.create_task(keep_joined(config))
    source = make_source(config)
    source.start()
    await FrameServer(config, source).serve()


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
