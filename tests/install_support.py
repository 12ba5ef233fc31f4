"""Helpers that install this project into a fresh virtual environment with no download.

The new environment sees this environment's packages (Twisted and the rest)
through a ``.pth`` file pointing at a "shadow" folder of links that leaves
tcpcam out, so that ``pip install`` of a copy of the project needs no index.
"""

import os
import shutil
import subprocess
import sys
import sysconfig

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN_FILES = ("tcpcam_record.py", "tcpcam_plugin.py", "tcpcam_server.py")


def buildable():
    """True when this environment can build tcpcam without an index (setuptools, and wheel if old)."""
    try:
        import setuptools
    except ImportError:
        return False
    major, minor = (int(part) for part in setuptools.__version__.split(".")[:2])
    if (major, minor) >= (70, 1):
        return True
    try:
        import wheel  # noqa: F401
    except ImportError:
        return False
    return True


def _linkAll(source, target, skip):
    os.makedirs(target, exist_ok=True)
    for name in os.listdir(source):
        destination = os.path.join(target, name)
        if skip(name) or os.path.lexists(destination):
            continue
        os.symlink(os.path.join(source, name), destination)


def shadowPackages(shadow):
    """Link every installed package into ``shadow``, leaving tcpcam out."""
    stdlib = {os.path.realpath(sysconfig.get_paths()["stdlib"]),
              os.path.realpath(sysconfig.get_paths()["platstdlib"])}
    # A console script (``pytest``, as tox runs it) puts its bin folder first on
    # sys.path, where scripts such as ``incremental`` would hide the packages.
    scripts = {os.path.realpath(sysconfig.get_paths()["scripts"]), os.path.realpath(os.path.dirname(sys.executable))}
    tests = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        real = os.path.realpath(entry)
        if real in stdlib or real in scripts or real == tests or "lib-dynload" in real or real.endswith(".zip"):
            continue
        _linkAll(entry, shadow, lambda name: (
            name.startswith(("tcpcam", "__editable__", "_sandbox")) or name.endswith(".pth")
            or name == "twisted"))
        twisted = os.path.join(entry, "twisted")
        if os.path.isdir(twisted):
            _linkAll(twisted, os.path.join(shadow, "twisted"), lambda name: name == "plugins")
            plugins = os.path.join(twisted, "plugins")
            if os.path.isdir(plugins):
                _linkAll(plugins, os.path.join(shadow, "twisted", "plugins"), lambda name: (
                    name in PLUGIN_FILES or name == "dropin.cache" or name == "__pycache__"))


def copyProject(target):
    os.makedirs(target)
    for name in ("setup.cfg", "pyproject.toml", "README.md", "MANIFEST.in"):
        if os.path.exists(os.path.join(PROJECT, name)):
            shutil.copy(os.path.join(PROJECT, name), target)
    for tree in ("src", "firmware"):
        shutil.copytree(os.path.join(PROJECT, tree), os.path.join(target, tree),
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "dropin.cache"))


def run(argv, **kwargs):
    """Run ``argv`` (bounded), fail with its output unless it succeeds; returns its stdout."""
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)
    assert result.returncode == 0, "%s failed:\n%s\n%s" % (argv, result.stdout, result.stderr)
    return result.stdout




#: Environment for pip in the new environment: no index, no version check, no PYTHONPATH.
PIP_ENV = {"PIP_NO_INDEX": "1", "PIP_DISABLE_PIP_VERSION_CHECK": "1", "PYTHONPATH": ""}


def seeThisEnvironment(python, shadow):
    """Make the environment of ``python`` see this environment's packages (all but tcpcam) through ``shadow``."""
    shadowPackages(str(shadow))
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    with open(os.path.join(purelib, "shadow.pth"), "w") as handle:
        handle.write(str(shadow) + "\n")
    return purelib
