"""``replay:PATH``: pictures saved by the recorder, sent again at their recorded pace.

The recorder stores ``DIR/NAME/YYYY-MM-DD/HH-MM-SS.mmm_SEQ.jpg``. ``PATH``
may be one day's folder, a camera's folder (``DIR/NAME``: its days in
order) or the recording folder when it holds a single camera. Frames are
ordered by date, time and sequence number, and each is handed out as long
after the previous one as their names are apart; gaps longer than
:attr:`ReplaySource.maxGap` (outages, the night) are shortened to it. At the
end the replay starts again from the first picture.

Hourly ``--format mjpeg`` files (``YYYY-MM-DD/HH.mjpeg``) are replayed too,
in the same order; they hold no time per frame, so their frames are handed
out as fast as they are asked for (the server's interval sets the pace).
"""

import os
import re

from zope.interface import implementer

from tcpcam.sources.base import MAX_SOURCE_FRAME_BYTES, FrameUnavailable, IFrameSource, SourceSpecError, readJpeg

_DAY = re.compile(r"^(\d{4})-(\d\d)-(\d\d)$")
_PICTURE = re.compile(r"^(\d\d)-(\d\d)-(\d\d)\.(\d{3})_(\d+)\.jpe?g$", re.IGNORECASE)
_HOUR_FILE = re.compile(r"^(\d\d)\.mjpeg$", re.IGNORECASE)
_SOI = b"\xff\xd8"
_EOI = b"\xff\xd9"


def pictureTime(name):
    """``(seconds into the day, sequence)`` from a recorded file name, or None.

    An hourly ``HH.mjpeg`` file counts as sequence -1 at the start of its hour.
    """
    match = _PICTURE.match(name)
    if match is None:
        hour = _HOUR_FILE.match(name)
        return None if hour is None else (int(hour.group(1)) * 3600.0, -1)
    hours, minutes, seconds, millis, sequence = (int(part) for part in match.groups())
    return hours * 3600 + minutes * 60 + seconds + millis / 1000.0, sequence


def dayNumber(name):
    """Days since 1970-01-01 for a ``YYYY-MM-DD`` folder name, or None."""
    import datetime

    match = _DAY.match(name)
    if match is None:
        return None
    try:
        day = datetime.date(*(int(part) for part in match.groups()))
    except ValueError:
        return None
    return (day - datetime.date(1970, 1, 1)).days


def _entries(path):
    try:
        return sorted(os.listdir(path))
    except OSError as error:
        raise SourceSpecError("replay source: cannot list %s: %s" % (path, error.strerror or error)) from None


def _hasPictures(path):
    return any(pictureTime(name) is not None for name in _entries(path))


def findDays(path):
    """The ``[(day number, folder)]`` a replay of ``path`` plays, oldest first."""
    if not os.path.isdir(path):
        raise SourceSpecError("replay source: %s is not a folder" % (path,))
    if _hasPictures(path):
        return [(dayNumber(os.path.basename(os.path.normpath(path))) or 0, path)]
    days = [(dayNumber(name), os.path.join(path, name)) for name in _entries(path)]
    days = [(number, folder) for number, folder in days if number is not None and os.path.isdir(folder)]
    if days:
        return days
    cameras = [name for name in _entries(path)
               if os.path.isdir(os.path.join(path, name)) and not name.startswith(".")]
    if len(cameras) == 1:
        return findDays(os.path.join(path, cameras[0]))
    if len(cameras) > 1:
        raise SourceSpecError(
            "replay source: %s holds several cameras (%s): name one, as in replay:%s"
            % (path, ", ".join(cameras), os.path.join(path, cameras[0])))
    raise SourceSpecError(
        "replay source: no recorded pictures (YYYY-MM-DD/HH-MM-SS.mmm_SEQ.jpg or HH.mjpeg) in %s" % (path,))


@implementer(IFrameSource)
class ReplaySource:
    """Recorded pictures in order, each after its recorded gap (see the module).

    One day's list of file names is held at a time, so memory follows the
    busiest day, not the whole recording. ``reactor`` (default: the global
    one) provides the clock and the delays.
    """

    #: Longest wait between two frames, in seconds.
    maxGap = 10.0

    def __init__(self, path, reactor=None):
        self.path = path
        self._days = findDays(path)
        self._reactor = reactor
        self._dayIndex = -1
        self._pictures = []
        self._position = 0
        self._previous = None
        self._lastDue = None
        self._hourFile = None
        self._rounds = 0
        if not self._loadNextDay(wrap=False):
            raise SourceSpecError(
                "replay source: no recorded pictures (HH-MM-SS.mmm_SEQ.jpg or HH.mjpeg) in %s" % (path,))

    def _loadNextDay(self, wrap=True):
        for _ in range(len(self._days) + 1):
            self._dayIndex += 1
            if self._dayIndex >= len(self._days):
                if not wrap:
                    return False
                self._dayIndex = 0
                self._previous = None
                self._rounds += 1
            number, folder = self._days[self._dayIndex]
            try:
                names = os.listdir(folder)
            except OSError:
                continue
            pictures = []
            for name in names:
                when = pictureTime(name)
                if when is not None:
                    pictures.append((number * 86400 + when[0], when[1], name))
            if pictures:
                pictures.sort()
                self._pictures = [(moment, os.path.join(folder, name)) for moment, _, name in pictures]
                self._position = 0
                return True
        return False

    def _advance(self):
        """``(moment, path, frame)``: frame is None for a picture file still to be read."""
        # Hour files holding no frame yield nothing: once every file was
        # tried in one call (the start was passed twice), give up on this frame.
        rounds = self._rounds
        while True:
            if self._rounds - rounds >= 2:
                raise FrameUnavailable("replay source: no frames in the recordings under %s" % (self.path,))
            if self._hourFile is not None:
                frame = self._hourFile.nextFrame()
                if frame is not None:
                    return None, self._hourFile.path, frame
                self._hourFile = None
            if self._position >= len(self._pictures) and not self._loadNextDay():
                raise FrameUnavailable("replay source: the pictures in %s are gone" % (self.path,))
            moment, path = self._pictures[self._position]
            self._position += 1
            if not path.lower().endswith(".mjpeg"):
                return moment, path, None
            try:
                self._hourFile = HourFileReader(path)
            except OSError as error:
                raise FrameUnavailable("cannot read %s: %s" % (path, error.strerror or error)) from None

    def nextFrame(self):
        """A Deferred firing with the next picture when its time has come."""
        from twisted.internet.task import deferLater

        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = self._reactor = global_reactor
        moment, path, frame = self._advance()
        now = reactor.seconds()
        if frame is not None:
            self._previous = self._lastDue = None
            return frame
        if self._previous is None or self._lastDue is None:
            due = now
        else:
            due = self._lastDue + min(max(moment - self._previous, 0.0), self.maxGap)
        self._previous = moment
        self._lastDue = max(due, now)
        return deferLater(reactor, self._lastDue - now, readJpeg, path)


class HourFileReader:
    """The JPEG frames of one concatenated-JPEG file, read a chunk at a time.

    A frame runs from a start-of-image marker to the next end-of-image
    marker (camera JPEGs carry no embedded thumbnails). Bytes between frames
    are dropped; a frame longer than the frame limit is skipped.
    """

    #: Bytes read at a time.
    chunkBytes = 1 << 16

    def __init__(self, path):
        self.path = path
        self._file = open(path, "rb")
        self._buffer = bytearray()
        # Bytes of the frame in the buffer already searched for its end.
        self._searched = 0

    def nextFrame(self):
        """The next frame's bytes, or None at the end of the file (which closes it)."""
        while self._file is not None:
            start = self._buffer.find(_SOI)
            if start < 0:
                del self._buffer[:-1]
                self._searched = 0
            else:
                if start:
                    del self._buffer[:start]
                    self._searched = 0
                end = self._buffer.find(_EOI, max(2, self._searched - 1))
                if end >= 0:
                    frame = bytes(self._buffer[:end + 2])
                    del self._buffer[:end + 2]
                    self._searched = 0
                    return frame
                self._searched = len(self._buffer)
                if len(self._buffer) > MAX_SOURCE_FRAME_BYTES:
                    del self._buffer[:2]
                    self._searched = 0
                    raise FrameUnavailable("%s: a frame over %d bytes, skipped" % (self.path, MAX_SOURCE_FRAME_BYTES))
            data = self._file.read(self.chunkBytes)
            if not data:
                self._file.close()
                self._file = None
                return None
            self._buffer += data
        return None
