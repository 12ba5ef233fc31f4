"""JPEG markers: a cheap check that a frame is a whole picture, and a splitter for concatenated JPEGs."""

from __future__ import annotations

from tcpcam.core.text import plural

#: Start-of-image and end-of-image markers.
SOI = b"\xff\xd8"
EOI = b"\xff\xd9"
#: How far before the end the EOI marker may sit: some camera drivers pad
#: the buffer after it with a few zero bytes.
EOI_SLACK = 32


def startsLikeJpeg(frame: bytes | memoryview) -> bool:
    """True when ``frame`` begins with the start-of-image marker."""
    return bytes(frame[:2]) == SOI


def jpegProblem(frame: bytes | memoryview) -> str | None:
    """Return why ``frame`` (bytes-like) is not a whole JPEG, or ``None`` if it is.

    A whole JPEG starts with the SOI marker and ends with the EOI marker
    (followed by at most :data:`EOI_SLACK` zero bytes of padding).
    """
    if len(frame) < 4:
        return "too short for a JPEG (%s)" % plural(len(frame), "byte")
    if not startsLikeJpeg(frame):
        return "no JPEG start marker (starts with %s)" % bytes(frame[:4]).hex()
    tail = bytes(frame[-EOI_SLACK:]) if len(frame) > EOI_SLACK else bytes(frame[2:])
    end = len(tail.rstrip(b"\x00"))
    if end < 2 or tail[end - 2:end] != EOI:
        return "no JPEG end marker: the picture is cut short"
    return None


class JpegSplitter:
    """Cut a stream of concatenated JPEGs (an MJPEG file) into frames, one chunk at a time.

    A frame runs from a start-of-image marker to the next end-of-image
    marker (camera JPEGs carry no embedded thumbnails). Bytes between frames
    are dropped. A frame that grows past ``maxBytes`` without an end is
    dropped and reported by :meth:`next` raising :class:`ValueError`. The
    search is linear in the bytes fed.
    """

    def __init__(self, maxBytes: int) -> None:
        self.maxBytes = maxBytes
        self._buffer = bytearray()
        # Bytes of the frame in the buffer already searched for its end.
        self._searched = 0

    def feed(self, data: bytes) -> None:
        """Add bytes read from the stream."""
        self._buffer += data

    @property
    def pending(self) -> int:
        """Bytes held that are not yet a whole frame."""
        return len(self._buffer)

    def next(self) -> bytes | None:
        """The next whole frame, or None until more bytes are fed."""
        buffer = self._buffer
        start = buffer.find(SOI)
        if start < 0:
            del buffer[:-1]
            self._searched = 0
            return None
        if start:
            del buffer[:start]
            self._searched = 0
        end = buffer.find(EOI, max(2, self._searched - 1))
        if end >= 0:
            frame = bytes(buffer[:end + 2])
            del buffer[:end + 2]
            self._searched = 0
            return frame
        self._searched = len(buffer)
        if len(buffer) > self.maxBytes:
            del buffer[:2]
            self._searched = 0
            raise ValueError("a frame over %s with no end marker" % plural(self.maxBytes, "byte"))
        return None
