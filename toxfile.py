"""tox plugin that lets ``tox`` alone run the whole matrix on a fresh machine.

tox 4 loads this file by itself (an inline plugin). It does, only when needed:

- **Interpreters.** An env whose base python names a version (``py310``,
  ``python3.10``) that no ``python3.10``, ``python3`` or ``python`` on ``PATH``
  provides gets the newest ``$PYENV_ROOT/versions/3.10.N/bin/python3.10``
  (``PYENV_ROOT`` defaults to ``~/.pyenv``), through tox's own ``--discover``
  list. A pyenv shim that fails for a version not selected counts as absent.
  When the version is nowhere, the env still fails (``skip_missing_interpreters``
  stays false) and this plugin adds one line saying which version is missing and
  where it looked.

At import time only the standard library and pluggy (which both tox and pytest
bring) are needed, so ``tests/test_toxfile.py`` can load this file in the test
envs, where tox is not installed.
"""

from __future__ import annotations

import logging
import os
import re
import subprocess
from collections.abc import Mapping
from functools import cache
from pathlib import Path
from typing import TYPE_CHECKING

import pluggy

if TYPE_CHECKING:
    from tox.config.sets import EnvConfigSet
    from tox.session.state import State
    from tox.tox_env.api import ToxEnv

hookimpl = pluggy.HookimplMarker("tox")  # what tox.plugin.impl is
log = logging.getLogger(__name__)

_VERSION_PROBE = "import sys; print('%d.%d' % sys.version_info[:2])"


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


@hookimpl
def tox_add_env_config(env_conf: EnvConfigSet, state: State) -> None:
    """Point the env at a pyenv interpreter if PATH has none of its version."""
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
