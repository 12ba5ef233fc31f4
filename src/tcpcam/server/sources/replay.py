"""``replay:PATH``: pictures saved by the recorder, sent again at their recorded pace.

The recorder stores ``DIR/NAME/YYYY-MM-DD/HH-MM-SS.mmm_SEQ.jpg``. ``PATH``
may be one day's folder, a camera's folder (``DIR/NAME``: its days in
order) or the recording folder when it holds a single camera. Frames are
ordered by date, time and sequence number, and each is handed out as long
after the previous one as their names are apart; gaps longer than
:attr:`ReplaySource.maxGap` (outages, the night) are shortened to it. At the
end the replay starts again from the first picture.

Hourly files of the old ``--format mjpeg`` (``YYYY-MM-DD/HH.mjpeg``) are
replayed too, in the same order; they hold no time per frame, so their frames
are handed out as fast as they are asked for (the server's interval sets the
pace).

A camera folder of the segment store (``DIR/NAME/index.sqlite3``, the
recorder's default format) is replayed from its index with
:class:`SegmentReplaySource`: every indexed frame in time order, at its
recorded pace; a day folder of it replays that day.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING, BinaryIO

from zope.interface import implementer

from tcpcam.common.jpeg import JpegSplitter
from tcpcam.record.layout import INDEX_NAME, dayNumber, isHourFile, recordingTime
from tcpcam.server.sources.base import MAX_SOURCE_FRAME_BYTES, FrameUnavailable, IFrameSource, SourceSpecError, readJpeg

if TYPE_CHECKING:
    from twisted.internet.defer import Deferred
    from twisted.internet.interfaces import IReactorTime


def _entries(path: str) -> list[str]:
    try:
        return sorted(os.listdir(path))
    except OSError as error:
        raise SourceSpecError("replay source: cannot list %s: %s" % (path, error.strerror or error)) from None


def _hasPictures(path: str) -> bool:
    return any(recordingTime(name) is not None for name in _entries(path))


def segmentFolder(path: str) -> tuple[str, str | None] | None:
    """``(camera folder, day or None)`` if ``path`` is (a day of, or the only camera in) a segment store."""
    path = os.path.normpath(path)
    if os.path.exists(os.path.join(path, INDEX_NAME)):
        return path, None
    parent, name = os.path.split(path)
    if dayNumber(name) is not None and os.path.exists(os.path.join(parent, INDEX_NAME)):
        return parent, name
    if os.path.isdir(path):
        cameras = [name for name in _entries(path) if os.path.exists(os.path.join(path, name, INDEX_NAME))]
        others = [name for name in _entries(path) if os.path.isdir(os.path.join(path, name))
                  and not name.startswith(".")]
        if len(cameras) == 1 and len(others) == 1:
            return os.path.join(path, cameras[0]), None
    return None


def findDays(path: str) -> list[tuple[int, str]]:
    """The ``[(day number, folder)]`` a replay of ``path`` plays, oldest first."""
    if not os.path.isdir(path):
        raise SourceSpecError("replay source: %s is not a folder" % (path,))
    if _hasPictures(path):
        return [(dayNumber(os.path.basename(os.path.normpath(path))) or 0, path)]
    named = [(dayNumber(name), os.path.join(path, name)) for name in _entries(path)]
    days = [(number, folder) for number, folder in named if number is not None and os.path.isdir(folder)]
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

    def __init__(self, path: str, reactor: IReactorTime | None = None) -> None:
        self.path = path
        self._days = findDays(path)
        self._reactor = reactor
        self._dayIndex = -1
        self._pictures: list[tuple[float, str]] = []
        self._position = 0
        self._previous: float | None = None
        self._lastDue: float | None = None
        self._hourFile: HourFileReader | None = None
        self._rounds = 0
        if not self._loadNextDay(wrap=False):
            raise SourceSpecError(
                "replay source: no recorded pictures (HH-MM-SS.mmm_SEQ.jpg or HH.mjpeg) in %s" % (path,))

    def _loadNextDay(self, wrap: bool = True) -> bool:
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
                when = recordingTime(name)
                if when is not None:
                    pictures.append((number * 86400 + when[0], when[1], name))
            if pictures:
                pictures.sort()
                self._pictures = [(moment, os.path.join(folder, name)) for moment, _, name in pictures]
                self._position = 0
                return True
        return False

    def _advance(self) -> tuple[None, str, bytes] | tuple[float, str, None]:
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
            if not isHourFile(os.path.basename(path)):
                return moment, path, None
            try:
                self._hourFile = HourFileReader(path)
            except OSError as error:
                raise FrameUnavailable("cannot read %s: %s" % (path, error.strerror or error)) from None

    def nextFrame(self) -> bytes | Deferred[bytes]:
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
        assert moment is not None
        if self._previous is None or self._lastDue is None:
            due = now
        else:
            due = self._lastDue + min(max(moment - self._previous, 0.0), self.maxGap)
        self._previous = moment
        self._lastDue = max(due, now)
        return deferLater(reactor, self._lastDue - now, readJpeg, path)


class HourFileReader:
    """The JPEG frames of one concatenated-JPEG file, read a chunk at a time.

    Bytes between frames are dropped; a frame longer than the frame limit
    is skipped (see :class:`~tcpcam.common.jpeg.JpegSplitter`).
    """

    #: Bytes read at a time.
    chunkBytes = 1 << 16

    def __init__(self, path: str) -> None:
        self.path = path
        self._file: BinaryIO | None = open(path, "rb")
        self._splitter = JpegSplitter(MAX_SOURCE_FRAME_BYTES)

    def nextFrame(self) -> bytes | None:
        """The next frame's bytes, or None at the end of the file (which closes it)."""
        while self._file is not None:
            try:
                frame = self._splitter.next()
            except ValueError as error:
                raise FrameUnavailable("%s: %s, skipped" % (self.path, error)) from None
            if frame is not None:
                return frame
            data = self._file.read(self.chunkBytes)
            if not data:
                self._file.close()
                self._file = None
                return None
            self._splitter.feed(data)
        return None


@implementer(IFrameSource)
class SegmentReplaySource:
    """The frames of a camera's segment store in time order, each after its recorded gap.

    Frames are read from the index a page at a time (see
    :meth:`tcpcam.record.footage.Footage.frames`); at the end the replay
    starts again. Gaps longer than :attr:`maxGap` are shortened to it.
    """

    #: Longest wait between two frames, in seconds.
    maxGap = 10.0

    def __init__(self, folder: str, day: str | None = None, reactor: IReactorTime | None = None) -> None:
        from tcpcam.record.footage import Footage

        folder = os.path.abspath(folder)
        self.path = folder
        self._footage = Footage(os.path.dirname(folder))
        self._camera = os.path.basename(folder)
        try:
            self._footage.folder(self._camera)
        except ValueError as error:
            raise SourceSpecError("replay source: %s" % error) from None
        self._start, self._end = 0.0, float(2 ** 42)
        if day is not None:
            import time

            number = dayNumber(day)
            assert number is not None
            year, month, mday = (int(part) for part in day.split("-"))
            self._start = time.mktime((year, month, mday, 0, 0, 0, 0, 0, -1))
            self._end = self._start + 86400 + 3600  # a day of 25 hours at most (daylight saving)
        if not self._footage.count(self._camera, self._start, self._end):
            raise SourceSpecError("replay source: no recorded frames in %s" % (folder if day is None else
                                                                                os.path.join(folder, day)))
        self._reactor = reactor
        self._frames = self._footage.frames(self._camera, self._start, self._end)
        self._previous: float | None = None
        self._lastDue: float | None = None

    def _nextRecorded(self) -> tuple[float, bytes]:
        for _ in range(2):
            for found in self._frames:
                return found
            self._frames = self._footage.frames(self._camera, self._start, self._end)
            self._previous = None
        raise FrameUnavailable("replay source: no frames left in %s" % (self.path,))

    def nextFrame(self) -> bytes | Deferred[bytes]:
        """A Deferred firing with the next frame when its time has come."""
        from twisted.internet.task import deferLater

        reactor = self._reactor
        if reactor is None:
            from twisted.internet import reactor as global_reactor

            reactor = self._reactor = global_reactor
        moment, frame = self._nextRecorded()
        now = reactor.seconds()
        if self._previous is None or self._lastDue is None:
            due = now
        else:
            due = self._lastDue + min(max(moment - self._previous, 0.0), self.maxGap)
        self._previous = moment
        self._lastDue = max(due, now)
        return deferLater(reactor, self._lastDue - now, lambda: frame)
