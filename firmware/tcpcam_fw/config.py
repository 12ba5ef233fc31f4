"""Read config.json with the core's schema; never fails.

A missing file, bad JSON, an unknown key or a bad value each give one clear
line on the console and the safe default, so a typo can never cause a crash
loop on the board. The rules are :mod:`tcpcam.core.device_config`, the same
ones ``tcpcam firmware config`` refuses by on the host.
"""

import json

from tcpcam.core import device_config

#: Name of the configuration file in the board's root folder.
CONFIG_FILE = device_config.CONFIG_FILE


def load(path=CONFIG_FILE, say=print):
    """Read ``path`` and return the config; every problem is said once, never raised."""
    try:
        with open(path) as handle:
            text = handle.read()
    except OSError:
        say("config: no %s; using defaults" % path)
        return device_config.defaults()
    try:
        data = json.loads(text)
    except ValueError:
        say("config: %s is not valid JSON; using defaults" % path)
        return device_config.defaults()
    config, problems = device_config.apply(data)
    for problem in problems:
        say(problem)
    return config
