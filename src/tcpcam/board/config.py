"""Host side of the board's ``config.json``: build it from options and check it, by the board's own rules.

The keys, defaults and rules live in one place, :mod:`tcpcam.core.device_config`,
which the board runs too; the host refuses exactly what the board would
replace with a default.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tcpcam.common.atomic import writeAtomically
from tcpcam.core import device_config


def build(base: dict[str, Any], updates: dict[str, str]) -> tuple[dict[str, Any], list[str]]:
    """Apply ``updates`` ({key: option text}) over ``base`` (parsed JSON); returns ``(config, problems)``.

    Problems are one line each; an empty list means the config is good.
    """
    data = dict(base)
    problems = []
    for key, text in updates.items():
        if key not in device_config.SCHEMA:
            problems.append("config: unknown key %r" % (key,))
            continue
        option = device_config.SCHEMA[key]
        try:
            data[key] = option.from_text(text)
        except ValueError as error:
            problems.append("config: bad %s %s: expected %s" % (option.flag, json.dumps(text), error))
            data.pop(key, None)
    config, found = device_config.apply(data)
    return config, problems + [device_config.refusal(line) for line in found]


def read(path: str | Path) -> tuple[dict[str, Any], list[str]]:
    """Read a config.json: ``(the data as written, problems)``; a missing file is an empty config."""
    path = Path(path)
    if not path.exists():
        return {}, []
    try:
        data = json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, ValueError) as error:
        return {}, ["config: cannot read %s: %s" % (path, error)]
    if not isinstance(data, dict):
        return {}, ["config: %s does not hold a JSON object" % path]
    return data, []


def render(config: dict[str, Any]) -> str:
    """The config as the text of config.json."""
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


#: config.json holds the WiFi password and the device key: readable by its owner only.
CONFIG_MODE = 0o600


def write(path: str | Path, config: dict[str, Any]) -> None:
    """Write config.json atomically (a temporary file renamed over it), mode :data:`CONFIG_MODE`."""
    writeAtomically(path, render(config).encode(), mode=CONFIG_MODE)
