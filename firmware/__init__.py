"""The firmware's files, shipped as package data of tcpcam (``tcpcam.firmware``).

The board tools read them with :mod:`importlib.resources`: ``boot.py``,
``main.py``, ``test.jpg`` and the ``tcpcam_fw`` application go on the board;
``simulator/`` holds stand-ins for the board's hardware drivers, for the unix
MicroPython. This file itself never goes on a board.
"""
