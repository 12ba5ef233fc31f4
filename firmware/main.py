"""Runs after boot.py: start the tcpcam firmware (its modules live in lib/)."""

import sys

if "lib" not in sys.path and "/lib" not in sys.path:
    sys.path.append("lib")

from tcpcam_fw import app  # noqa: E402

app.main()
