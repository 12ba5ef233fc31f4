"""Files that appear whole or not at all: written under a temporary name and renamed."""

from __future__ import annotations

import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import BinaryIO

#: Suffix of the temporary name a file has while being written.
TEMP_SUFFIX = ".tmp"


def temporaryName(path: str | os.PathLike[str]) -> str:
    """The hidden name ``path`` is written under: ``DIR/.NAME.tmp``."""
    folder, name = os.path.split(os.fspath(path))
    return os.path.join(folder, "." + name + TEMP_SUFFIX)


def isTemporary(name: str) -> bool:
    """True for a name that :func:`temporaryName` makes."""
    base = os.path.basename(name)
    return base.startswith(".") and base.endswith(TEMP_SUFFIX)


def _defaultMode() -> int:
    # mkstemp makes files only their owner can read: give them the mode an
    # ordinary open() would, which the umask decides.
    umask = os.umask(0o022)
    os.umask(umask)
    return 0o666 & ~umask


def writeAtomically(path: str | os.PathLike[str], data: bytes, fixedName: bool = False,
                    makeFolder: bool = True, sync: bool = False, mode: int | None = None) -> None:
    """Write ``data`` to ``path`` so that ``path`` is always either absent, old or whole.

    The bytes go to a temporary file in the same folder (``DIR/.NAME.tmp``
    with ``fixedName``, so a crash leaves a name the next start recognises,
    else a unique one), which is then renamed over ``path``. ``sync`` flushes
    the file to the disk before the rename. On any error the temporary file
    is removed and the error raised. ``mode`` (such as ``0o600``) is the
    file's mode from the start, instead of the one the umask gives.
    """
    writeWith(path, lambda stream: stream.write(data), fixedName, makeFolder, sync, mode)


def writeWith(path: str | os.PathLike[str], write: Callable[[BinaryIO], object], fixedName: bool = False,
              makeFolder: bool = True, sync: bool = False, mode: int | None = None) -> None:
    """Like :func:`writeAtomically`, with ``write(binary stream)`` producing the content."""
    path = os.fspath(path)
    folder = os.path.dirname(path) or "."
    if makeFolder:
        os.makedirs(folder, exist_ok=True)
    temporary = None
    try:
        if fixedName:
            temporary = temporaryName(path)
            try:
                stream = open(temporary, "wb")
            except FileNotFoundError:
                # The folder went away (retention, or a person): make it again.
                os.makedirs(folder, exist_ok=True)
                stream = open(temporary, "wb")
            if mode is not None:
                os.fchmod(stream.fileno(), mode)
        else:
            # mkstemp makes the file with mode 0600, so a narrower mode never
            # has a moment of being wider.
            handle, temporary = tempfile.mkstemp(dir=folder, prefix="." + os.path.basename(path) + ".",
                                                 suffix=TEMP_SUFFIX)
            stream = os.fdopen(handle, "wb")
            os.fchmod(stream.fileno(), _defaultMode() if mode is None else mode)
        with stream:
            write(stream)
            if sync:
                stream.flush()
                os.fsync(stream.fileno())
        os.replace(temporary, path)
    except BaseException:
        if temporary is not None:
            removeQuietly(temporary)
        raise


def replaceFolder(building: Path, destination: Path) -> None:
    """Put the finished folder ``building`` in the place of ``destination`` (which may exist)."""
    import shutil

    if destination.exists():
        shutil.rmtree(destination)
    os.replace(building, destination)


def removeQuietly(path: str | os.PathLike[str]) -> bool:
    """Remove a file; False (and no error) if it could not be removed."""
    try:
        os.unlink(path)
    except OSError:
        return False
    return True
