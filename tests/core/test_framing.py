"""Frame encoding and decoding (runs under pytest and MicroPython)."""

from checks import raises, split_every

from tcpcam.core.errors import FrameTooLarge, RemoteProtocolError
from tcpcam.core.framing import FrameDecoder, encode_frame, encode_header
from tcpcam.core.limits import MAX_FRAME_BYTES

PAYLOADS = [b"Hello World", b"", b"\xff\xd8" + bytes(range(256)) * 3 + b"\x00\x00", b"\x00"]


def stream_of(payloads):
    return b"".join(encode_frame(payload) for payload in payloads)


def test_header_is_big_endian_unsigned():
    assert encode_header(0) == b"\x00\x00\x00\x00"
    assert encode_header(0x01020304) == b"\x01\x02\x03\x04"
    assert encode_header(0xFFFFFFFF) == b"\xff\xff\xff\xff"
    assert encode_frame(b"Hello World") == b"\x00\x00\x00\x0bHello World"


def test_header_refuses_lengths_it_cannot_hold():
    with raises(ValueError):
        encode_header(-1)
    with raises(ValueError, match="header holds"):
        encode_header(0x100000000)


def test_whole_stream_in_one_chunk():
    assert FrameDecoder().feed(stream_of(PAYLOADS)) == PAYLOADS


def test_one_byte_at_a_time():
    decoder = FrameDecoder()
    frames = []
    for piece in split_every(stream_of(PAYLOADS), 1):
        frames.extend(decoder.feed(piece))
    assert frames == PAYLOADS
    assert not decoder.in_frame


def test_every_chunk_size_gives_the_same_frames():
    data = stream_of(PAYLOADS)
    for size in (2, 3, 4, 5, 7, 13, 64, 1000):
        decoder = FrameDecoder()
        frames = []
        for piece in split_every(data, size):
            frames.extend(decoder.feed(piece))
        assert frames == PAYLOADS, size


def test_zero_length_frame_is_delivered():
    decoder = FrameDecoder()
    assert decoder.feed(b"\x00\x00\x00\x00") == [b""]
    assert decoder.feed(b"\x00\x00\x00\x00\x00\x00\x00\x00") == [b"", b""]
    assert decoder.frames_decoded == 3


def test_partial_frame_is_reported_until_complete():
    decoder = FrameDecoder()
    assert decoder.feed(b"\x00\x00") == []
    assert decoder.in_frame and decoder.declared_length is None
    assert decoder.feed(b"\x00\x05ab") == []
    assert decoder.declared_length == 5 and decoder.payload_received == 2
    assert decoder.feed(b"cde") == [b"abcde"]
    assert not decoder.in_frame and decoder.declared_length is None


def test_frame_of_exactly_the_limit_is_accepted():
    decoder = FrameDecoder(max_frame_bytes=1000)
    payload = b"\xab" * 1000
    assert decoder.feed(encode_frame(payload)) == [payload]


def test_larger_declared_length_fails_before_buffering():
    decoder = FrameDecoder(max_frame_bytes=1000)
    with raises(FrameTooLarge, match="1001 bytes") as caught:
        decoder.feed(b"\x00\x00\x03\xe9" + b"x" * 10)
    assert caught.value.length == 1001 and caught.value.limit == 1000
    assert isinstance(caught.value, RemoteProtocolError)
    assert decoder.payload_received == 0
    with raises(FrameTooLarge):
        decoder.feed(b"more")


def test_absurd_length_with_default_limit():
    decoder = FrameDecoder()
    assert decoder.max_frame_bytes == MAX_FRAME_BYTES == 8 * 1024 * 1024
    with raises(FrameTooLarge, match="4294967295"):
        decoder.feed(b"\xff\xff\xff\xff")


def test_limit_must_fit_the_header():
    with raises(ValueError):
        FrameDecoder(max_frame_bytes=-1)
    with raises(ValueError):
        FrameDecoder(max_frame_bytes=0x100000000)


def test_views_last_until_the_next_call_and_feed_copies():
    decoder = FrameDecoder()
    decoder.receive_data(encode_frame(b"first") + encode_frame(b"2nd"))
    first = decoder.next_frame()
    assert bytes(first) == b"first"
    second = decoder.next_frame()
    assert bytes(second) == b"2nd"
    assert decoder.next_frame() is None
    kept = decoder.feed(encode_frame(b"third"))
    decoder.feed(encode_frame(b"XXXXX"))
    assert kept == [b"third"]


def test_larger_frame_after_a_smaller_one():
    decoder = FrameDecoder()
    assert decoder.feed(encode_frame(b"ab")) == [b"ab"]
    big = bytes(range(200)) * 50
    assert decoder.feed(encode_frame(big)) == [big]
    assert decoder.feed(encode_frame(b"c")) == [b"c"]


def test_accepts_bytearray_and_memoryview_chunks():
    data = stream_of(PAYLOADS)
    decoder = FrameDecoder()
    frames = decoder.feed(bytearray(data[:7])) + decoder.feed(memoryview(data)[7:])
    assert frames == PAYLOADS
