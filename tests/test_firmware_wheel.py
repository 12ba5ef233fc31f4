"""A wheel installed with pip carries the firmware sources, and ``tcpcam firmware bundle`` finds them."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from firmware_support import REPO, expected_tree, tree

from tcpcam.board import simulate as firmware_simulate

#: Seconds a wheel build or an install may take.
PIP_TIMEOUT = 120
#: What building the wheel needs from the source tree.
BUILD_INPUTS = ("setup.cfg", "pyproject.toml", "README.md", "MANIFEST.in", "src", "firmware")


def _run(argv, **options):
    result = subprocess.run(argv, capture_output=True, text=True, timeout=PIP_TIMEOUT, check=False, **options)
    assert result.returncode == 0, "%s failed:\n%s%s" % (argv, result.stdout, result.stderr)
    return result.stdout


@pytest.fixture(scope="module")
def venv(tmp_path_factory):
    """A fresh venv with tcpcam installed by pip from a wheel built from this tree, and nothing else."""
    pytest.importorskip("setuptools")
    pytest.importorskip("wheel")
    work = tmp_path_factory.mktemp("wheel")
    source = work / "source"
    for name in BUILD_INPUTS:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            source.mkdir(exist_ok=True)
            shutil.copyfile(REPO / name, source / name)
    pip = [sys.executable, "-m", "pip", "--disable-pip-version-check", "--no-input"]
    _run(pip + ["wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q", "-w", str(work / "dist"),
                str(source)])
    (wheel,) = (work / "dist").glob("tcpcam-*.whl")
    home = work / "venv"
    _run([sys.executable, "-m", "venv", "--without-pip", str(home)])
    python = home / ("Scripts/python.exe" if os.name == "nt" else "bin/python")
    _run(pip + ["--python", str(python), "install", "--no-deps", "--no-index", "-q", str(wheel)])
    return python


def _in_venv(python, *argv, cwd):
    env = {key: value for key, value in os.environ.items() if not key.startswith("PYTHON")}
    return _run([str(python), *argv], cwd=str(cwd), env=env)


def test_the_wheel_carries_the_firmware_as_package_data(venv, tmp_path):
    script = "from tcpcam.board import bundle; print(bundle.firmware_files())"
    found = _in_venv(venv, "-c", script, cwd=tmp_path).strip()
    assert Path(found).is_relative_to(venv.parents[1])
    assert (Path(found) / "tcpcam_fw" / "server.py").is_file()
    for name in firmware_simulate.SIMULATOR_MODULES:
        assert (Path(found) / "simulator" / name).is_file(), name


def test_bundle_from_the_installed_wheel(venv, tmp_path):
    _in_venv(venv, "-m", "tcpcam.cli.firmware", "bundle", "out", cwd=tmp_path)
    assert tree(tmp_path / "out") == expected_tree(".py")
    for name in ("session.py", "server_role.py"):
        assert (tmp_path / "out/lib/tcpcam/core" / name).read_bytes() == (REPO / "src/tcpcam/core" / name).read_bytes()
    shipped = sorted(path.name for path in (REPO / "firmware/tcpcam_fw").glob("*.py"))
    assert sorted(path.name for path in (tmp_path / "out/lib/tcpcam_fw").iterdir()) == shipped
