"""Subcommands of the ``tcpcam`` console script, one module each.

Each module has ``add_arguments(parser)`` and ``run(args) -> int``.
"""
