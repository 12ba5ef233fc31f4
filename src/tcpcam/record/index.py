"""The segment index: one SQLite database per camera, ``OUT/CAMERA/index.sqlite3``.

Schema (version :data:`SCHEMA_VERSION`, kept in ``PRAGMA user_version``);
every time is an integer of Unix milliseconds::

    segments(id INTEGER PRIMARY KEY, path TEXT UNIQUE,   -- relative to the camera folder
             start_ms, end_ms, frames, bytes,            -- first and last frame, counts
             closed,                                     -- 1 once the file is final
             motion)                                     -- 1 if a motion event overlaps it
    frames(time_ms, segment, offset, length,             -- where the JPEG is: segment file, byte range
           seq, capture_ms)                              -- NULL until protocol 2 gives them
           PRIMARY KEY (segment, offset), index on time_ms
    events(id INTEGER PRIMARY KEY, start_ms, end_ms,     -- end_ms NULL while the event goes on
           peak_ms, peak_score, x0, y0, x1, y1,          -- the region at the peak, in picture pixels
           pre_roll_ms, post_roll_ms, thumbnail BLOB)    -- a small JPEG of the peak frame
    converted(source TEXT PRIMARY KEY, frames)           -- files ``tcpcam convert`` took in

The database is in WAL mode with ``synchronous=NORMAL``. Exactly one
connection writes it (the recorder's disk writer thread, or ``tcpcam
convert``), which :class:`WriterLock` enforces across processes: SQLite
before 3.51.3 can corrupt a WAL database when two connections write or
checkpoint at once. Readers open their own read-only connections
(:func:`connectReader`).
"""

from __future__ import annotations

import errno
import fcntl
import os
import sqlite3

from tcpcam.record.layout import INDEX_NAME

#: The schema version this code writes and reads.
SCHEMA_VERSION = 1
#: Milliseconds a connection waits for a lock before SQLite reports "database is locked".
BUSY_TIMEOUT_MS = 5000
#: Bytes the WAL file is cut back to after a checkpoint (it grows between checkpoints).
WAL_SIZE_LIMIT = 4 * 1024 * 1024
#: Name of the lock file held by the one writer of a camera's index.
LOCK_NAME = ".index.lock"

SCHEMA = """
CREATE TABLE IF NOT EXISTS segments (
    id INTEGER PRIMARY KEY,
    path TEXT NOT NULL UNIQUE,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER NOT NULL,
    frames INTEGER NOT NULL DEFAULT 0,
    bytes INTEGER NOT NULL DEFAULT 0,
    closed INTEGER NOT NULL DEFAULT 0,
    motion INTEGER NOT NULL DEFAULT 0
);
CREATE INDEX IF NOT EXISTS segments_start ON segments (start_ms);
CREATE TABLE IF NOT EXISTS frames (
    time_ms INTEGER NOT NULL,
    segment INTEGER NOT NULL,
    offset INTEGER NOT NULL,
    length INTEGER NOT NULL,
    seq INTEGER,
    capture_ms INTEGER,
    PRIMARY KEY (segment, offset)
) WITHOUT ROWID;
CREATE INDEX IF NOT EXISTS frames_time ON frames (time_ms);
CREATE TABLE IF NOT EXISTS events (
    id INTEGER PRIMARY KEY,
    start_ms INTEGER NOT NULL,
    end_ms INTEGER,
    peak_ms INTEGER NOT NULL,
    peak_score REAL NOT NULL,
    x0 INTEGER, y0 INTEGER, x1 INTEGER, y1 INTEGER,
    pre_roll_ms INTEGER NOT NULL,
    post_roll_ms INTEGER NOT NULL,
    thumbnail BLOB
);
CREATE INDEX IF NOT EXISTS events_start ON events (start_ms);
CREATE TABLE IF NOT EXISTS converted (
    source TEXT PRIMARY KEY,
    frames INTEGER NOT NULL
);
"""


class IndexProblem(Exception):
    """An index this code cannot use (one line for the user)."""


class IndexBusy(IndexProblem):
    """Another process writes this index (a recorder, or ``tcpcam convert``)."""


def indexPath(cameraFolder: str) -> str:
    """Where a camera's index is."""
    return os.path.join(cameraFolder, INDEX_NAME)


class WriterLock:
    """An exclusive ``flock`` on ``CAMERA/.index.lock``, held while a process writes the index."""

    def __init__(self, cameraFolder: str) -> None:
        self.path = os.path.join(cameraFolder, LOCK_NAME)
        self._fd: int | None = None

    def acquire(self) -> None:
        """Take the lock, or raise :class:`IndexBusy` at once if another process has it."""
        os.makedirs(os.path.dirname(self.path), exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError as error:
            os.close(fd)
            if error.errno in (errno.EWOULDBLOCK, errno.EAGAIN, errno.EACCES):
                raise IndexBusy("%s is being written by another process (a recorder or tcpcam convert)"
                                % os.path.dirname(self.path)) from None
            raise
        self._fd = fd

    def release(self) -> None:
        """Let go of the lock."""
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)


def connectWriter(cameraFolder: str) -> sqlite3.Connection:
    """Open (creating if needed) a camera's index for writing: WAL, synchronous NORMAL, schema made.

    The connection is in autocommit mode (``isolation_level=None``): the
    caller opens its own transactions with ``BEGIN``.
    """
    os.makedirs(cameraFolder, exist_ok=True)
    connection = sqlite3.connect(indexPath(cameraFolder), timeout=BUSY_TIMEOUT_MS / 1000.0,
                                 isolation_level=None, check_same_thread=False)
    try:
        connection.execute("PRAGMA journal_mode=WAL")
        connection.execute("PRAGMA synchronous=NORMAL")
        connection.execute("PRAGMA journal_size_limit=%d" % WAL_SIZE_LIMIT)
        version = connection.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise IndexProblem("%s has schema version %d; this tcpcam knows up to %d: upgrade tcpcam"
                              % (indexPath(cameraFolder), version, SCHEMA_VERSION))
        connection.executescript("BEGIN;" + SCHEMA + "PRAGMA user_version=%d; COMMIT;" % SCHEMA_VERSION)
    except BaseException:
        connection.close()
        raise
    return connection


def connectReader(cameraFolder: str) -> sqlite3.Connection | None:
    """A read-only connection to a camera's index, or None if it has none.

    It never writes nor checkpoints (``mode=ro``), so any number of readers
    can sit beside the one writer.
    """
    path = indexPath(cameraFolder)
    if not os.path.exists(path):
        return None
    uri = "file:%s?mode=ro" % _quoteUri(os.path.abspath(path))
    connection = sqlite3.connect(uri, uri=True, timeout=BUSY_TIMEOUT_MS / 1000.0, check_same_thread=False)
    connection.execute("PRAGMA query_only=1")
    return connection


def _quoteUri(path: str) -> str:
    from urllib.parse import quote

    return quote(path, safe="/")
