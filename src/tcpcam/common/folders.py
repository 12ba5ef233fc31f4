"""Whether files can be written under a folder, asked before a long-running program starts."""

from __future__ import annotations

import os


def _readOnlyMount(path: str) -> bool:
    try:
        return bool(os.statvfs(path).f_flag & os.ST_RDONLY)
    except OSError:
        return False


def _notWritable(folder: str) -> str:
    if _readOnlyMount(folder):
        return "%s is on a read-only file system" % folder
    return "%s is not writable (no permission, or the folder is immutable)" % folder


def folderProblem(path: str) -> str | None:
    """Why files cannot be written under the folder ``path`` (made later if missing), or None if they can.

    It asks :func:`os.access` about the nearest folder that exists, which
    answers for this process as the kernel will: a read-only mount and an
    immutable folder refuse even root, and root may write where the mode
    bits say no. Nothing is written. A full disk is not a reason here: a
    running program meets it, and may see space come back.
    """
    current = os.path.abspath(path)
    while not os.path.lexists(current):
        parent = os.path.dirname(current)
        if parent == current:
            return None
        current = parent
    if not os.path.isdir(current):
        if current == os.path.abspath(path):
            return "%s is a file, not a folder" % path
        return "%s is a file, so the folder %s cannot be made" % (current, path)
    if not os.access(current, os.W_OK | os.X_OK):
        return _notWritable(current)
    return None
