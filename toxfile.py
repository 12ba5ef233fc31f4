"""tox plugin that lets ``tox`` alone run the whole matrix on a fresh machine.

tox 4 loads this file by itself (an inline plugin). It does two things, each
only when needed:

- **Interpreters.** An env whose base python names a version (``py310``,
  ``python3.10``) that no ``python3.10``, ``python3`` or ``python`` on ``PATH``
  provides gets the newest ``$PYENV_ROOT/versions/3.10.N/bin/python3.10``
  (``PYENV_ROOT`` defaults to ``~/.pyenv``), through tox's own ``--discover``
  list. A pyenv shim that fails for a version not selected counts as absent.
  When the version is nowhere, the env still fails (``skip_missing_interpreters``
  stays false) and this plugin adds one line saying which version is missing and
  where it looked.
- **Debian packages.** Before an env with ``needs_system_packages = true``
  installs or runs anything, the packages listed in ``.ci/system-packages`` that
  are not installed are installed with ``apt-get`` when tox runs as root;
  otherwise the env fails with one line naming the command to run.

At import time only the standard library and pluggy (which both tox and pytest
bring) are needed, so ``tests/test_toxfile.py`` can load this file in the test
envs, where tox is not installed.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
import threading
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from tox.config.sets import EnvConfigSet
    from tox.session.state import State
    from tox.tox_env.api import ToxEnv
    from tox.tox_env.installer import InstallArguments

hookimpl = pluggy.HookimplMarker("tox")  # what tox.plugin.impl is
log = logging.getLogger(__name__)

#: The Debian packages an env with ``needs_system_packages = true`` gets, relative to the tox root.
SYSTEM_PACKAGES_FILE = ".ci/system-packages"
_VERSION_PROBE = "import sys; print('%d.%d' % sys.version_info[:2])"
_apt_lock = threading.Lock()  # tox -p runs envs in threads; dpkg takes one apt-get at a time
_apt_updated = False


def spec_version(spec: str) -> str | None:
    """The ``3.N`` a base python spec such as ``py310`` or ``python3.10`` asks for, else None."""
    found = re.fullmatch(r"(?:c?python|py)(3)\.?(\d{1,2})", spec)
    return "%s.%s" % found.groups() if found else None


@cache
def _reported_version(executable: str) -> str | None:
    """The ``3.N`` the interpreter at ``executable`` reports, or None if it does not run (a failing shim)."""
    try:
        result = subprocess.run([executable, "-c", _VERSION_PROBE], capture_output=True, text=True, timeout=30)
    except (OSError, subprocess.SubprocessError):
        return None
    return result.stdout.strip() if result.returncode == 0 else None


def on_path(version: str, path: str) -> str | None:
    """An interpreter on ``path`` that runs and is ``version``, looked for under the names tox tries."""
    for folder in path.split(os.pathsep):
        for name in ("python" + version, "python3", "python"):
            candidate = os.path.join(folder, name)
            if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
                if _reported_version(candidate) == version:
                    return candidate
    return None


def pyenv_root(environ: Mapping[str, str]) -> Path:
    """Where pyenv keeps its interpreters: ``$PYENV_ROOT``, else ``$HOME/.pyenv``."""
    if environ.get("PYENV_ROOT"):
        return Path(environ["PYENV_ROOT"])
    return Path(environ.get("HOME", "~")).expanduser() / ".pyenv"


def pyenv_interpreter(version: str, root: Path) -> Path | None:
    """The newest final release ``root/versions/3.N.P/bin/python3.N`` there is, or None."""
    best: tuple[int, Path] | None = None
    for folder in (root / "versions").glob(version + ".*"):
        patch = re.fullmatch(re.escape(version) + r"\.(\d+)", folder.name)
        executable = folder / "bin" / ("python" + version)
        if patch and executable.is_file() and os.access(executable, os.X_OK):
            if best is None or int(patch.group(1)) > best[0]:
                best = (int(patch.group(1)), executable)
    return best[1] if best else None


def read_package_list(path: Path) -> list[str]:
    """The package names in ``path``: one a line, blank lines and ``#`` comments ignored."""
    lines = (line.split("#", 1)[0].strip() for line in path.read_text().splitlines())
    return [line for line in lines if line]


def missing_packages(names: Iterable[str]) -> list[str]:
    """Those of the Debian packages ``names`` that dpkg does not list as installed."""
    missing = []
    for name in names:
        query = subprocess.run(["dpkg-query", "-W", "-f=${Status}", name], capture_output=True, text=True)
        if query.returncode != 0 or query.stdout.split()[-1:] != ["installed"]:
            missing.append(name)
    return missing


def _run_apt(*arguments: str) -> None:
    from tox.tox_env.errors import Fail

    command = ["apt-get", *arguments]
    code = subprocess.run(command, env={**os.environ, "DEBIAN_FRONTEND": "noninteractive"}).returncode
    if code != 0:
        raise Fail("%s exited with %d" % (" ".join(command), code))


def ensure_system_packages(tox_env: ToxEnv) -> None:
    """Install the missing packages of ``.ci/system-packages`` if the env needs them, or fail saying how."""
    global _apt_updated
    from tox.tox_env.errors import Fail

    if not tox_env.conf["needs_system_packages"]:
        return
    names = read_package_list(Path(tox_env.core["tox_root"]) / SYSTEM_PACKAGES_FILE)
    with _apt_lock:
        try:
            missing = missing_packages(names)
        except FileNotFoundError:  # no dpkg: not Debian, the env's own checks will tell
            log.warning("no dpkg-query here: not checking the Debian packages %s", " ".join(names))
            return
        if not missing:
            return
        if os.geteuid() != 0:
            raise Fail("needs Debian packages that are not installed; run: sudo apt-get install -y "
                       "--no-install-recommends %s" % " ".join(missing))
        log.warning("installing the Debian packages %s", " ".join(missing))
        if not _apt_updated:
            _run_apt("update", "-qq")
            _apt_updated = True
        _run_apt("install", "-y", "-qq", "--no-install-recommends", *missing)
        if still := missing_packages(missing):
            raise Fail("apt-get did not install %s" % " ".join(still))


@hookimpl
def tox_add_env_config(env_conf: EnvConfigSet, state: State) -> None:
    """Declare ``needs_system_packages``; point the env at a pyenv interpreter if PATH has none of its version."""
    env_conf.add_config(
        keys=["needs_system_packages"], of_type=bool, default=False,
        desc="install the missing Debian packages of %s before the env installs or runs anything"
        % SYSTEM_PACKAGES_FILE)
    discover = getattr(state.conf.options, "discover", None)  # only commands that run envs have it
    if discover is None or "base_python" not in env_conf:
        return
    for spec in env_conf["base_python"]:
        version = spec_version(spec)
        if version is None or on_path(version, os.environ.get("PATH", os.defpath)):
            continue
        found = pyenv_interpreter(version, pyenv_root(os.environ))
        if found is not None and str(found) not in discover:
            discover.append(str(found))


@hookimpl
def tox_on_install(tox_env: ToxEnv, arguments: InstallArguments, section: str, of_type: str) -> None:
    """Have the Debian packages before the env's first install."""
    ensure_system_packages(tox_env)


@hookimpl
def tox_before_run_commands(tox_env: ToxEnv) -> None:
    """Have the Debian packages before the env's commands (also for an env that installs nothing)."""
    ensure_system_packages(tox_env)


@hookimpl
def tox_env_teardown(tox_env: ToxEnv) -> None:
    """After an env that found no interpreter, say which version is missing and where it was looked for."""
    from tox.tox_env.errors import Fail, Skip
    from tox.tox_env.python.api import Python

    if not isinstance(tox_env, Python):
        return
    try:
        _ = tox_env.base_python  # tox searched once; this raises again if it found nothing
    except (Fail, Skip):
        root = pyenv_root(os.environ)
        for version in filter(None, map(spec_version, tox_env.conf["base_python"])):
            log.error("Python %s is not on PATH nor under %s: install it (pyenv install %s)",
                      version, root / "versions", version)
