"""Serve the fleet's web interface without recording anything: every camera live, footage from the object store.

Takes the recorder's web options (``--web``, ``--web-login``, ``--out`` for the
password file ...) and the fleet's (``--fleet`` is required; ``--s3-bucket``
and ``--s3-endpoint`` to read footage). Live frames come from whichever
recorder holds each camera's lease.
"""

from __future__ import annotations

import argparse

from tcpcam.cli import record


def add_arguments(parser: argparse.ArgumentParser) -> None:
    """The recorder's options (its cameras are not used: the fleet's registry names them)."""
    record.add_arguments(parser)


def run(args: argparse.Namespace) -> int:
    """Serve the pages until stopped; returns the exit status."""
    return record.run(args, recording=False, command="tcpcam web")
