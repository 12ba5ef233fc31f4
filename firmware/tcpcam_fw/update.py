"""The board's side of an update: store the bundle in the slot that does not run, verify it, name it for the next boot.

Every rule of the transfer (sizes, paths, order, the digest of what came) is
``tcpcam.core.update``'s, checked by the server role before a step gets
here. This module carries the steps out on the filesystem, beside the
running application, which keeps serving: ``begin`` empties the other slot
and checks the free space, ``write`` appends pieces to its files, ``commit``
reads every file back, checks sizes and SHA-256 against the manifest, and
only then names the slot in the boot state (:mod:`tcpcam_boot`'s atomic
rename); ``abort`` removes a slot the boot state does not name.
"""

import errno
import hashlib
import os

from tcpcam_fw.log import say

from tcpcam.core.limits import UPDATE_CHUNK_BYTES, UPDATE_FREE_RESERVE_BYTES
from tcpcam.core.text import plural
from tcpcam.core.update import ABORT, BEGIN, BUNDLE_DIRS, COMMIT, WRITE, digest_hex

#: "No space left on device" (28 with newlib on the ESP32 and on Linux; the unix port's errno module lacks the name).
ENOSPC = getattr(errno, "ENOSPC", 28)


def describe(error):
    """An OSError in words: littlefs gives only the number (``28``)."""
    code = error.args[0] if error.args else None
    if code == ENOSPC:
        return "the board's filesystem is full (ENOSPC)"
    return str(error)


def loader():
    """The loader module, or None when the firmware was started without it (updates are then refused)."""
    try:
        import tcpcam_boot
    except ImportError:
        return None
    return tcpcam_boot


def free_bytes(path):
    """Free bytes of the filesystem holding ``path`` (``os.statvfs``: block size times free blocks)."""
    info = os.statvfs(path)
    return info[0] * info[3]


class UpdateStore:
    """Carries out the core's :class:`~tcpcam.core.actions.UpdateStep` actions; ``boot`` is the loader module."""

    def __init__(self, boot=None):
        self.boot = boot if boot is not None else loader()
        #: The slot being written (None: none).
        self.slot = None

    def target(self):
        """The update slot that does not run now."""
        running = self.boot.running["slot"]
        return self.boot.SLOTS[1] if running == self.boot.SLOTS[0] else self.boot.SLOTS[0]

    def carry_out(self, step):
        """Do ``step``; returns None when done, else why not in one line."""
        if self.boot is None:
            return "this firmware was started without its loader (main.py): it cannot take updates"
        if not self.boot.running["slots"]:
            return "this board has no flash for update slots (a host without the simulator's stand-in)"
        try:
            if step.step == BEGIN:
                return self._begin(step.manifest)
            if step.step == WRITE:
                return self._write(step.pieces)
            if step.step == COMMIT:
                return self._commit(step.manifest)
            if step.step == ABORT:
                self._abort()
                return None
        except (OSError, ValueError) as error:
            return "the board's filesystem failed: %s" % describe(error)
        return "unknown update step %r" % (step.step,)

    def _folder(self):
        return self.boot.slot_path(self.slot)

    def _begin(self, manifest):
        boot = self.boot
        slot = self.target()
        state = boot.read_state()
        if state["good"] == slot:
            return "slot %s holds the good application and runs nothing: refusing to overwrite it" % slot
        if state["try"] == slot:
            # A stored update that never booted gives way to this one.
            state["try"] = None
            state["tries"] = 0
            boot.write_state(state)
        self.slot = slot
        folder = self._folder()
        boot.remove_tree(folder)
        free = free_bytes(boot.SLOT_ROOT)
        needed = manifest["bytes"] + UPDATE_FREE_RESERVE_BYTES
        if free < needed:
            self.slot = None
            return "not enough room on the board: %s free, the bundle needs %s" % (plural(free, "byte"),
                                                                                   plural(needed, "byte"))
        os.mkdir(folder)
        for name in BUNDLE_DIRS:
            os.mkdir(folder + "/" + name)
        return None

    def _write(self, pieces):
        if self.slot is None:
            return "no update is being stored"
        folder = self._folder()
        for piece in pieces:
            try:
                with open(folder + "/" + piece.path, "ab" if piece.offset else "wb") as handle:
                    handle.write(piece.data)
            except OSError as error:
                return "cannot store %s: %s" % (piece.path, describe(error))
        return None

    def _commit(self, manifest):
        if self.slot is None:
            return "no update is being stored"
        folder = self._folder()
        digest = hashlib.sha256()
        buffer = bytearray(UPDATE_CHUNK_BYTES)
        for path, size in manifest["files"]:
            got = 0
            with open(folder + "/" + path, "rb") as handle:
                while True:
                    count = handle.readinto(buffer)
                    if not count:
                        break
                    got += count
                    digest.update(buffer[:count] if count < len(buffer) else buffer)
            if got != size:
                return "%s holds %s on the board, not %d: storing it failed" % (path, plural(got, "byte"), size)
        found = digest_hex(digest.digest())
        if found != manifest["sha256"]:
            return "what the board stored has the digest %s, not %s: storing it failed" % (found[:16],
                                                                                          manifest["sha256"][:16])
        state = self.boot.read_state()
        state["try"] = self.slot
        state["tries"] = 0
        state["version"] = manifest["version"]
        self.boot.write_state(state)
        self.slot = None
        return None

    def _abort(self):
        slot = self.slot
        self.slot = None
        if slot is None:
            return
        state = self.boot.read_state()
        if slot not in (state["good"], state["try"]):
            self.boot.remove_tree(self.boot.slot_path(slot))
            say("update: removed the unfinished bundle from slot %s" % slot)
