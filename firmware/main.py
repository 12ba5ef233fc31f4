"""Runs after boot.py: the loader (tcpcam_boot, never replaced by an update) picks the application and starts it."""

import sys

if "lib" not in sys.path and "/lib" not in sys.path:
    sys.path.append("lib")

import tcpcam_boot  # noqa: E402

tcpcam_boot.run()
