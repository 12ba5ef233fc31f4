"""Where frames go on disk: a tree of JPEG files, or one MJPEG file per hour.

Both stores write synchronously: a frame is written whole (or not at all)
before control returns to the reactor, so a shutdown can never cut one in
half. Both raise OSError on disk errors, after cleaning up after themselves.
"""

import os
import time

#: Suffix of the temporary name a JPEG file has while being written.
TEMP_SUFFIX = ".tmp"


def _dayAndTime(when):
    local = time.localtime(when)
    return (
        time.strftime("%Y-%m-%d", local),
        time.strftime("%H-%M-%S", local),
        int(when * 1000) % 1000,
        local.tm_hour,
    )


class JpegTreeStore:
    """One file per frame: ``DIRECTORY/YYYY-MM-DD/HH-MM-SS.mmm_SEQ.jpg`` (local time).

    Each file is written under a hidden temporary name (``.NAME.tmp``) in the
    same folder and renamed when whole, so a file with the final name is
    always a complete frame.
    """

    format = "jpg"

    def __init__(self, directory):
        self.directory = directory
        self._folder = None

    @property
    def openPaths(self):
        """Files this store holds open: none between frames."""
        return ()

    def write(self, frame, when, seq):
        """Write ``frame`` taken at ``when`` (Unix seconds); return its path."""
        day, hms, millis, _ = _dayAndTime(when)
        folder = os.path.join(self.directory, day)
        if folder != self._folder:
            os.makedirs(folder, exist_ok=True)
            self._folder = folder
        name = "%s.%03d_%06d.jpg" % (hms, millis, seq)
        final = os.path.join(folder, name)
        temp = os.path.join(folder, "." + name + TEMP_SUFFIX)
        try:
            try:
                handle = open(temp, "wb")
            except FileNotFoundError:
                # The folder went away (retention, or a person): make it again.
                os.makedirs(folder, exist_ok=True)
                handle = open(temp, "wb")
            with handle:
                handle.write(frame)
            os.replace(temp, final)
        except OSError:
            self._folder = None
            _removeQuietly(temp)
            raise
        return final

    def close(self):
        """Nothing is held open between frames."""


class MjpegHourlyStore:
    """One concatenated-JPEG file per hour: ``DIRECTORY/YYYY-MM-DD/HH.mjpeg``.

    Players such as ffplay and VLC read it as an MJPEG stream. Frames go
    straight to the file with no user-space buffer, and the file is closed
    when the hour changes and on :meth:`close`; a frame that cannot be written whole is cut off again, so
    the file always ends on a frame boundary.
    """

    format = "mjpeg"

    def __init__(self, directory):
        self.directory = directory
        self._path = None
        self._handle = None

    @property
    def openPaths(self):
        """The file being appended to, if any."""
        return (self._path,) if self._handle is not None else ()

    def write(self, frame, when, seq):
        """Append ``frame`` to the file of its hour; return that file's path."""
        day, _, _, hour = _dayAndTime(when)
        path = os.path.join(self.directory, day, "%02d.mjpeg" % hour)
        if path != self._path or self._handle is None:
            self.close()
            os.makedirs(os.path.dirname(path), exist_ok=True)
            self._handle = open(path, "ab", buffering=0)
            self._path = path
        handle = self._handle
        start = handle.tell()
        view = memoryview(frame)
        try:
            while view:
                view = view[handle.write(view):]
        except OSError:
            self._handle = None
            _truncateQuietly(path, start)
            handle.close()
            raise
        return path

    def close(self):
        """Close the current file (every frame is already in it)."""
        handle, self._handle = self._handle, None
        if handle is not None:
            handle.close()


def makeStore(fmt, directory):
    """Return the store for format ``fmt`` (``jpg`` or ``mjpeg``) writing under ``directory``."""
    if fmt == "mjpeg":
        return MjpegHourlyStore(directory)
    return JpegTreeStore(directory)


def _removeQuietly(path):
    try:
        os.unlink(path)
    except OSError:
        pass


def _truncateQuietly(path, size):
    try:
        os.truncate(path, size)
    except OSError:
        pass
