"""Copy a bundle and its config.json to a board with mpremote, then reset it.

mpremote runs as a child process (``python -m mpremote``), one chained
command: remove the previous application and core (a stale ``.py`` would hide
a new ``.mpy``), copy ``lib/`` and the root files, reset.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from tcpcam.board.bundle import BoardError

#: Seconds the whole copy may take before it is stopped.
DEPLOY_TIMEOUT = 600.0

# Runs on the board (passed as one line through exec): removes lib/tcpcam and lib/tcpcam_fw if they exist, makes lib/.
_CLEAN = (
    "import os\n"
    "def rm(p):\n"
    " try:\n"
    "  for e in os.ilistdir(p):\n"
    "   q=p+'/'+e[0]\n"
    "   rm(q) if e[1]==0x4000 else os.remove(q)\n"
    "  os.rmdir(p)\n"
    " except OSError:\n"
    "  pass\n"
    "rm('lib/tcpcam')\n"
    "rm('lib/tcpcam_fw')\n"
    "try:\n"
    " os.mkdir('lib')\n"
    "except OSError:\n"
    " pass\n"
)


class DeployError(BoardError):
    """The bundle cannot be deployed; the message says why in one line."""


def mpremote_argv(port: str, bundle: str | Path) -> list[str]:
    """The full mpremote command line that deploys the folder ``bundle``; run it in ``bundle``."""
    bundle = Path(bundle)
    if not (bundle / "main.py").is_file() or not (bundle / "lib").is_dir():
        raise DeployError("%s is not a firmware bundle (no main.py and lib/)" % bundle)
    if not (bundle / "config.json").is_file():
        raise DeployError("%s has no config.json: write one with tcpcam firmware config" % bundle)
    return chained_argv(port, sorted(path.name for path in bundle.iterdir() if path.is_file()))


def chained_argv(port: str, root_files: list[str]) -> list[str]:
    """The mpremote command line that deploys a bundle whose root folder holds ``root_files``."""
    return [
        sys.executable, "-m", "mpremote", "connect", port,
        "exec", "exec(%r)" % _CLEAN,
        "+", "fs", "cp", "-r", "lib/tcpcam", "lib/tcpcam_fw", ":lib/",
        "+", "fs", "cp", *sorted(root_files), ":",
        "+", "reset",
    ]


def deploy(argv: list[str], bundle: str | Path) -> None:
    """Run mpremote; DeployError when it fails or takes too long."""
    try:
        result = subprocess.run(argv, cwd=str(bundle), timeout=DEPLOY_TIMEOUT, check=False)
    except (OSError, subprocess.TimeoutExpired) as error:
        raise DeployError("mpremote failed: %s" % (error,)) from None
    if result.returncode != 0:
        raise DeployError("mpremote failed (exit status %d)" % result.returncode)

