"""One line per event on the console (the serial port on a board)."""

import time


def say(message):
    """Print ``message`` with the seconds since boot in front."""
    print("%9.3f %s" % (time.ticks_ms() / 1000, message))
