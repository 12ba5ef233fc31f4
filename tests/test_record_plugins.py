"""The twistd plugins are found after ``pip install .`` and after ``pip install -e .``.

Each case builds a fresh virtual environment that sees this environment's
packages (Twisted and the rest) but not tcpcam, installs a copy of the
project into it with no download, and asks ``twistd --help`` there.
"""

import os
import sys

import pytest
from install_support import buildable, copyProject, run, shadowPackages


@pytest.mark.slow
@pytest.mark.skipif(not buildable(), reason="building tcpcam needs setuptools>=70.1 or the"
                    " wheel package in this environment: pip install wheel")
@pytest.mark.parametrize("editable", [False, True], ids=["install", "editable"])
def test_twistd_finds_the_plugins(tmp_path, editable):
    shadow = tmp_path / "shadow"
    shadowPackages(str(shadow))
    venv = tmp_path / "venv"
    run([sys.executable, "-m", "venv", "--without-pip", str(venv)])
    python = str(venv / "bin" / "python")
    purelib = run([python, "-c", "import sysconfig; print(sysconfig.get_paths()['purelib'])"]).strip()
    with open(os.path.join(purelib, "shadow.pth"), "w") as handle:
        handle.write(str(shadow) + "\n")
    copy = tmp_path / "project"
    copyProject(str(copy))
    env = dict(os.environ, PIP_NO_INDEX="1", PIP_DISABLE_PIP_VERSION_CHECK="1", PYTHONPATH="")
    run([python, "-m", "pip", "install", "-q", "--no-deps", "--no-build-isolation"]
         + (["-e"] if editable else []) + [str(copy)], env=env, cwd=str(tmp_path))
    where = run([python, "-c", "import tcpcam.tap.record as m; print(m.__file__)"],
                 env=env, cwd=str(tmp_path))
    assert where.startswith(str(copy) if editable else purelib), where
    helpText = run([python, "-c", "import sys; sys.argv[0] = 'twistd';"
                     " from twisted.scripts.twistd import run; run()", "--help"],
                    env=env, cwd=str(tmp_path))
    names = [line.split()[0] for line in helpText.splitlines() if line.startswith("    ")]
    assert "tcpcam-record" in names and "tcpcam" in names, helpText
