"""The twistd plugins are found after ``pip install .`` and after ``pip install -e .``.

Each case builds a fresh virtual environment that sees this environment's
packages (Twisted and the rest) but not tcpcam, installs a copy of the
project into it with no download, and asks ``twistd --help`` there.
"""

import os
import shutil
import subprocess
import sys
import sysconfig

import pytest

PROJECT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
PLUGIN_FILES = ("tcpcam_record.py", "tcpcam_plugin.py")


def _buildable():
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


def _shadowPackages(shadow):
    """Link every installed package into ``shadow``, leaving tcpcam out."""
    stdlib = {os.path.realpath(sysconfig.get_paths()["stdlib"]),
              os.path.realpath(sysconfig.get_paths()["platstdlib"])}
    tests = os.path.dirname(os.path.abspath(__file__))
    for entry in sys.path:
        if not entry or not os.path.isdir(entry):
            continue
        real = os.path.realpath(entry)
        if real in stdlib or real == tests or "lib-dynload" in real or real.endswith(".zip"):
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


def _copyProject(target):
    os.makedirs(target)
    for name in ("setup.cfg", "pyproject.toml", "README.md", "MANIFEST.in"):
        if os.path.exists(os.path.join(PROJECT, name)):
            shutil.copy(os.path.join(PROJECT, name), target)
    for tree in ("src", "firmware"):
        shutil.copytree(os.path.join(PROJECT, tree), os.path.join(target, tree),
                        ignore=shutil.ignore_patterns("__pycache__", "*.egg-info", "dropin.cache"))


def _run(argv, **kwargs):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=120, **kwargs)
    assert result.returncode == 0, "%s failed:\n%s\n%s" % (argv, result.stdout, result.stderr)
    return result.stdout


@pytest.mark.slow
@pytest.mark.skipif(not _buildable(), reason="building tcpcam needs setuptools>=70.1 or the"
                    " wheel package in this environment: pip install wheel")
@pytest.mark.parametrize("editable", [False, True], ids=["install", "editable"])
def test_twistd_finds_the_plugins(tmp_path, editable):
    shadow = tmp_path / "shadow"
    _shadowPackages(str(shadow))
    venv = tmp_path / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    purelib = _run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    with open(os.path.join(purelib, "shadow.pth"), "w") as handle:
        handle.write(str(shadow) + "\n")
    copy = tmp_path / "project"
    _copyProject(str(copy))
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONPATH="")
    _run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
         + (["-e"] if editable else []) + [str(copy)], env=env, cwd=str(tmp_path))
    where = _run([python, "-c", "import tcpcam.tap.record as m; print(m.__file__)"],
                 env=env, cwd=str(tmp_path))
    assert where.startswith(str(copy) if editable else purelib), where
    helpText = _run([python, "-c", "import sys; sys.argv[0] = 'twistd';"
                     " from twisted.scripts.twistd import run; run()", "--help"],
                    env=env, cwd=str(tmp_path))
    names = [line.split()[0] for line in helpText.splitlines() if line.startswith("    ")]
    assert "tcpcam-record" in names and "tcpcam" in names, helpText
