"""The board's flash for the unix port: a file-backed block device with esp32.Partition's block API, as littlefs.

A board's filesystem is a littlefs on a flash partition (``esp32.Partition``),
mounted before ``main.py`` runs. The unix port has no flash, so the loader
asks this module (absent on a board) to mount a stand-in at the update slots'
folder: a file of ``TCPCAM_FLASH_BLOCKS`` blocks of 4096 bytes (default
:data:`DEFAULT_BLOCKS`), named by ``TCPCAM_FLASH_IMAGE``, formatted as
littlefs v2 the first time. It fills up as a real partition does
(``OSError(ENOSPC)``), and a process killed at any point leaves what it had
written, as a power cut leaves flash. Not part of the device bundle.
"""

import os

import vfs

#: Bytes of a flash erase block (the ESP32's), and blocks of the stand-in by default (1 MiB).
BLOCK_SIZE = 4096
DEFAULT_BLOCKS = 256
#: ``ioctl`` operations of MicroPython's block device protocol.
IOCTL_INIT = 1
IOCTL_DEINIT = 2
IOCTL_SYNC = 3
IOCTL_BLOCK_COUNT = 4
IOCTL_BLOCK_SIZE = 5
IOCTL_BLOCK_ERASE = 6


class Partition:
    """``esp32.Partition``'s block protocol over the file ``path``: ``readblocks``, ``writeblocks``, ``ioctl``.

    As on the chip, ``writeblocks(block_num, buf)`` erases the blocks first
    and ``writeblocks(block_num, buf, offset)`` programs erased bytes only;
    an erased byte reads 0xff.
    """

    def __init__(self, path, blocks=DEFAULT_BLOCKS, block_size=BLOCK_SIZE):
        self.blocks = blocks
        self.block_size = block_size
        try:
            os.stat(path)
        except OSError:
            with open(path, "wb") as handle:
                erased = b"\xff" * block_size
                for _ in range(blocks):
                    handle.write(erased)
        self._file = open(path, "r+b")

    def readblocks(self, block_num, buf, offset=0):
        """Read ``len(buf)`` bytes from block ``block_num`` at ``offset``."""
        self._file.seek(block_num * self.block_size + offset)
        self._file.readinto(buf)

    def writeblocks(self, block_num, buf, offset=None):
        """Write ``buf`` at block ``block_num`` (erasing the blocks first when no ``offset`` is given)."""
        if offset is None:
            for block in range((len(buf) + self.block_size - 1) // self.block_size):
                self.ioctl(IOCTL_BLOCK_ERASE, block_num + block)
            offset = 0
        self._file.seek(block_num * self.block_size + offset)
        self._file.write(buf)
        self._file.flush()

    def ioctl(self, cmd, arg):
        """Block count, block size, erase; init, deinit and sync do nothing; other operations return None."""
        if cmd in (IOCTL_INIT, IOCTL_DEINIT, IOCTL_SYNC):
            return 0
        if cmd == IOCTL_BLOCK_COUNT:
            return self.blocks
        if cmd == IOCTL_BLOCK_SIZE:
            return self.block_size
        if cmd == IOCTL_BLOCK_ERASE:
            self._file.seek(arg * self.block_size)
            self._file.write(b"\xff" * self.block_size)
            self._file.flush()
            return 0
        return None


def mount(path):
    """Mount the stand-in flash at ``path`` (formatting it the first time); OSError without ``TCPCAM_FLASH_IMAGE``."""
    image = os.getenv("TCPCAM_FLASH_IMAGE")
    if not image:
        raise OSError("no TCPCAM_FLASH_IMAGE: the simulated board has no flash for its update slots")
    device = Partition(image, int(os.getenv("TCPCAM_FLASH_BLOCKS") or DEFAULT_BLOCKS))
    try:
        filesystem = vfs.VfsLfs2(device)
    except OSError:
        vfs.VfsLfs2.mkfs(device)
        filesystem = vfs.VfsLfs2(device)
    vfs.mount(filesystem, path)
    return True
