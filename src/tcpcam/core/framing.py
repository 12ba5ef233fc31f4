"""Frame encoding and an incremental frame decoder.

A frame is a 4-byte big-endian unsigned payload length followed by exactly
that many payload bytes. The decoder takes bytes in chunks of any size and
hands out whole frames in order; its cost is linear in the bytes fed.
"""

from tcpcam.core.errors import FrameTooLarge
from tcpcam.core.limits import MAX_DECLARABLE_BYTES, MAX_FRAME_BYTES
from tcpcam.core.text import plural

#: Size of the length prefix in front of every payload.
HEADER_BYTES = 4


def encode_header(length: int) -> bytes:
    """Return the 4-byte big-endian header for a payload of ``length`` bytes."""
    if not 0 <= length <= MAX_DECLARABLE_BYTES:
        raise ValueError(
            "cannot frame a payload of %s: the header holds 0 to %d"
            % (plural(length, "byte"), MAX_DECLARABLE_BYTES)
        )
    return length.to_bytes(HEADER_BYTES, "big")


def encode_frame(payload: bytes) -> bytes:
    """Return header and payload as one ``bytes`` object."""
    return encode_header(len(payload)) + bytes(payload)


class FrameDecoder:
    """Turn a byte stream into frames, h11 style.

    Call :meth:`receive_data` with whatever arrived, then :meth:`next_frame`
    until it returns ``None``. A frame is returned as a ``memoryview``, so no
    large object is allocated per frame: a frame that lies whole in one chunk
    is a view of that chunk, and one split across chunks is gathered into a
    payload buffer that the decoder reuses. The view is valid until the next
    call into the decoder; copy it (``bytes(view)``) to keep it, or use
    :meth:`feed`, which does. Chunks are not copied when received, so do not
    change a chunk after passing it in.

    A header that declares more than ``max_frame_bytes`` raises
    :class:`~tcpcam.core.errors.FrameTooLarge` before any of the payload is
    buffered; the decoder then stays failed.
    """

    def __init__(self, max_frame_bytes: int = MAX_FRAME_BYTES) -> None:
        if not 0 <= max_frame_bytes <= MAX_DECLARABLE_BYTES:
            raise ValueError(
                "max_frame_bytes must be 0 to %d, not %r"
                % (MAX_DECLARABLE_BYTES, max_frame_bytes)
            )
        self.max_frame_bytes = max_frame_bytes
        self.frames_decoded = 0
        self._header = bytearray(HEADER_BYTES)
        self._header_fill = 0
        self._length = -1
        self._payload = bytearray(0)
        self._payload_fill = 0
        self._chunks: list = []
        self._offset = 0
        self._error: Exception | None = None

    @property
    def in_frame(self) -> bool:
        """True while part of a frame (header or payload) has been received."""
        return self._header_fill > 0 or self._length >= 0 or bool(self._chunks)

    @property
    def declared_length(self) -> int | None:
        """Payload length of the frame in progress, or ``None`` before its header."""
        return self._length if self._length >= 0 else None

    @property
    def payload_received(self) -> int:
        """Payload bytes of the frame in progress received so far."""
        return self._payload_fill

    def receive_data(self, data: bytes) -> None:
        """Queue ``data`` (bytes-like) for decoding; nothing is copied yet."""
        if self._error is not None:
            raise self._error
        if len(data):
            self._chunks.append(memoryview(data))

    def next_frame(self) -> memoryview | None:
        """Return the next complete payload as a memoryview, or ``None``."""
        if self._error is not None:
            raise self._error
        chunks = self._chunks
        while True:
            if self._length >= 0 and self._payload_fill == self._length:
                return self._complete()
            if not chunks:
                return None
            chunk = chunks[0]
            start = self._offset
            if self._header_fill == 0 and self._length < 0:
                whole = self._whole_frame_in(chunk, start)
                if whole is not None:
                    return whole
            if self._length < 0:
                end = min(len(chunk), start + HEADER_BYTES - self._header_fill)
                self._header[self._header_fill:self._header_fill + end - start] = chunk[start:end]
                self._header_fill += end - start
                if self._header_fill == HEADER_BYTES:
                    self._start_payload(int.from_bytes(self._header, "big"))
            else:
                end = min(len(chunk), start + self._length - self._payload_fill)
                self._payload[self._payload_fill:self._payload_fill + end - start] = chunk[start:end]
                self._payload_fill += end - start
            if end == len(chunk):
                chunks.pop(0)
                self._offset = 0
            else:
                self._offset = end

    def feed(self, data: bytes) -> list:
        """Decode ``data`` and return the complete payloads it finished, as bytes."""
        self.receive_data(data)
        frames: list = []
        while True:
            frame = self.next_frame()
            if frame is None:
                return frames
            frames.append(bytes(frame))

    def _whole_frame_in(self, chunk: memoryview, start: int) -> memoryview | None:
        header_end = start + HEADER_BYTES
        if header_end > len(chunk):
            return None
        length = int.from_bytes(chunk[start:header_end], "big")
        end = header_end + length
        if end > len(chunk) or length > self.max_frame_bytes:
            return None
        if end == len(chunk):
            self._chunks.pop(0)
            self._offset = 0
        else:
            self._offset = end
        self.frames_decoded += 1
        return chunk[header_end:end]

    def _start_payload(self, length: int) -> None:
        if length > self.max_frame_bytes:
            self._error = FrameTooLarge(length, self.max_frame_bytes)
            self._chunks = []
            raise self._error
        if len(self._payload) < length:
            # A new buffer, never a resize: views handed out earlier stay valid.
            self._payload = bytearray(length)
        self._length = length
        self._payload_fill = 0

    def _complete(self) -> memoryview:
        length = self._length
        self._length = -1
        self._header_fill = 0
        self._payload_fill = 0
        self.frames_decoded += 1
        return memoryview(self._payload)[:length]
