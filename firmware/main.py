"""Runs after boot.py: the loader (tcpcam_boot, never replaced by an update) picks the application and starts it."""

import tcpcam_boot

tcpcam_boot.run()
