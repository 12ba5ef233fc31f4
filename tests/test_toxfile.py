"""The lookups of toxfile.py, the tox plugin that finds the matrix's interpreters and Debian packages."""

import importlib.util
import shutil
import sys
from pathlib import Path

import pytest

TOXFILE = Path(__file__).resolve().parents[1] / "toxfile.py"


def _load():
    spec = importlib.util.spec_from_file_location("toxfile", TOXFILE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


toxfile = _load()


def _executable(path, text="#!/bin/sh\nexit 0\n"):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(0o755)
    return path


@pytest.mark.parametrize("spec, version", [
    ("py310", "3.10"), ("py313", "3.13"), ("python3.10", "3.10"), ("cpython3.12", "3.12"), ("py3.11", "3.11"),
    ("py3", None), ("python3", None), ("pypy310", None), ("/usr/bin/python3", None), ("python3.10-32", None),
])
def test_spec_version(spec, version):
    assert toxfile.spec_version(spec) == version


def test_pyenv_root():
    assert toxfile.pyenv_root({"PYENV_ROOT": "/opt/pyenv", "HOME": "/home/me"}) == Path("/opt/pyenv")
    assert toxfile.pyenv_root({"HOME": "/home/me"}) == Path("/home/me/.pyenv")
    assert toxfile.pyenv_root({"PYENV_ROOT": "", "HOME": "/home/me"}) == Path("/home/me/.pyenv")


def test_pyenv_interpreter_takes_the_newest_final_release(tmp_path):
    versions = tmp_path / "versions"
    for name in ("3.10.2", "3.10.13", "3.10.9"):
        _executable(versions / name / "bin" / "python3.10")
    _executable(versions / "3.10.20" / "bin" / "python3")          # no python3.10 in it
    (versions / "3.10.30" / "bin").mkdir(parents=True)
    (versions / "3.10.30" / "bin" / "python3.10").write_text("")   # not executable
    _executable(versions / "3.10-dev" / "bin" / "python3.10")      # not a release
    _executable(versions / "3.10.40rc1" / "bin" / "python3.10")
    _executable(versions / "3.1.99" / "bin" / "python3.1")
    _executable(versions / "3.11.7" / "bin" / "python3.11")
    assert toxfile.pyenv_interpreter("3.10", tmp_path) == versions / "3.10.13" / "bin" / "python3.10"
    assert toxfile.pyenv_interpreter("3.1", tmp_path) == versions / "3.1.99" / "bin" / "python3.1"
    assert toxfile.pyenv_interpreter("3.11", tmp_path) == versions / "3.11.7" / "bin" / "python3.11"
    assert toxfile.pyenv_interpreter("3.13", tmp_path) is None
    assert toxfile.pyenv_interpreter("3.10", tmp_path / "no-such-root") is None


@pytest.mark.skipif(sys.platform == "win32", reason="shell-script stand-ins for interpreters")
def test_on_path_runs_each_candidate(tmp_path):
    shims, real = tmp_path / "shims", tmp_path / "real"
    # a pyenv shim for a version that is not selected: there, but fails
    _executable(shims / "python3.12", "#!/bin/sh\necho 'pyenv: python3.12: command not found' >&2\nexit 127\n")
    _executable(shims / "python3.13", "#!/bin/sh\necho 3.12\n")     # says another version
    _executable(real / "python3.12", "#!/bin/sh\necho 3.12\n")
    path = "%s:%s" % (shims, real)
    assert toxfile.on_path("3.12", path) == str(real / "python3.12")
    assert toxfile.on_path("3.13", path) is None
    assert toxfile.on_path("3.12", str(shims)) is None


def test_on_path_finds_this_interpreter_as_python3(tmp_path):
    (tmp_path / "python3").symlink_to(sys.executable)
    this = "%d.%d" % sys.version_info[:2]
    assert toxfile.on_path(this, str(tmp_path)) == str(tmp_path / "python3")
    assert toxfile.on_path("3.99", str(tmp_path)) is None


def test_read_package_list(tmp_path):
    listing = tmp_path / "system-packages"
    listing.write_text("# for the browser env\nchromium\n\n  fonts-dejavu-core  # its fonts\n")
    assert toxfile.read_package_list(listing) == ["chromium", "fonts-dejavu-core"]


@pytest.mark.skipif(shutil.which("dpkg-query") is None, reason="needs Debian's dpkg")
def test_missing_packages_asks_dpkg():
    # dpkg itself is always installed where dpkg-query is; the other name is no package
    assert toxfile.missing_packages(["dpkg", "tcpcam-no-such-package"]) == ["tcpcam-no-such-package"]
