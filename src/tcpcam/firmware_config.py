"""Host side of config.json: build it from options and check it, with the device's own rules.

The keys, defaults and rules live in one place, the firmware's
``tcpcam_fw/config.py``; this module loads that file from the firmware
sources so the host refuses exactly what the board would replace.
"""

import importlib.util
import json
import os
import tempfile
from pathlib import Path

from tcpcam.firmware_bundle import APP_PACKAGE, BundleError, find_firmware_dir

_TRUE = ("true", "yes", "on", "1")
_FALSE = ("false", "no", "off", "0")


def load_schema(firmware=None):
    """The firmware's config module (SCHEMA, defaults, apply), loaded from its source."""
    path = (firmware or find_firmware_dir()) / APP_PACKAGE / "config.py"
    spec = importlib.util.spec_from_file_location("tcpcam_firmware_config", path)
    if spec is None or spec.loader is None:
        raise BundleError("cannot load %s" % path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def option_name(key):
    """The command-line option for a config key: ``interval_ms`` -> ``--interval-ms``."""
    return "--" + key.replace("_", "-")


def parse_text(entry, text):
    """Turn the text of a command-line option into the value the schema expects."""
    kind = entry[2]
    if kind == "int":
        try:
            return int(text, 10)
        except ValueError:
            return text
    if kind == "bool":
        lowered = text.lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        return text
    return text


def build(schema, base, updates):
    """Apply ``updates`` ({key: option text}) over ``base``; returns (config, problems).

    Problems are one line each; an empty list means the config is good.
    """
    entries = {entry[0]: entry for entry in schema.SCHEMA}
    data = dict(base)
    problems = []
    for key, text in updates.items():
        entry = entries.get(key)
        if entry is None:
            problems.append("config: unknown key %r" % (key,))
            continue
        data[key] = parse_text(entry, text)
    config, found = schema.apply(data)
    return config, problems + [_refusal(line) for line in found]


def read(path, schema):
    """Read a config.json: (the data as written, problems); a missing file is an empty config."""
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


def render(config):
    """The config as the text of config.json."""
    return json.dumps(config, indent=2, sort_keys=True) + "\n"


def write(path, config):
    """Write config.json atomically (a temporary file renamed over it)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(prefix=".config-", suffix=".json", dir=path.parent)
    try:
        with os.fdopen(handle, "w") as stream:
            stream.write(render(config))
        os.replace(temporary, path)
    except BaseException:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        raise


def _refusal(line):
    # The board's message ends with what it would use instead; the host refuses instead.
    head, _, _ = line.partition("; using ")
    if head.endswith(" ignored"):
        head = head[:-len(" ignored")]
    return head
