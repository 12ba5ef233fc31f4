"""Host tools for the board: write its config, bundle, flash, deploy and simulate the firmware.

The firmware's own files are package data, :mod:`tcpcam.firmware`.
"""
