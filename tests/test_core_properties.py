"""Property tests of the sans-IO core (CPython only: they use hypothesis)."""

import subprocess
import sys

from hypothesis import given, settings
from hypothesis import strategies as st

from tcpcam.core.errors import FrameTooLarge, RemoteProtocolError
from tcpcam.core.events import Accepted, Rejected
from tcpcam.core.framing import FrameDecoder, encode_frame
from tcpcam.core.request import MAX_TOKEN_BYTES
from tcpcam.core.session import AWAITING_COMMAND, AWAITING_PIN, Session

payloads = st.lists(st.binary(max_size=300), max_size=12)


@st.composite
def split_stream(draw):
    """A list of payloads and their encoded stream cut at arbitrary points."""
    frames = draw(payloads)
    data = b"".join(encode_frame(frame) for frame in frames)
    cuts = sorted(draw(st.lists(st.integers(0, len(data)), max_size=40)))
    pieces = [data[start:end] for start, end in zip([0] + cuts, cuts + [len(data)], strict=True)]
    return frames, pieces


@given(split_stream())
def test_any_split_decodes_to_the_same_frames(case):
    frames, pieces = case
    decoder = FrameDecoder()
    decoded = []
    for piece in pieces:
        decoded.extend(decoder.feed(piece))
    assert decoded == frames
    assert not decoder.in_frame


@given(st.lists(st.binary(max_size=64), max_size=30), st.integers(0, 100))
def test_random_bytes_never_crash_the_decoder(pieces, limit):
    decoder = FrameDecoder(max_frame_bytes=limit)
    try:
        for piece in pieces:
            for frame in decoder.feed(piece):
                assert len(frame) <= limit
    except FrameTooLarge as error:
        assert error.length > limit
    assert len(decoder._payload) <= limit


@given(st.lists(st.binary(max_size=200), max_size=30), st.booleans())
@settings(max_examples=300)
def test_random_bytes_never_crash_the_request_parser(pieces, idle_between):
    session = Session("1235")
    for piece in pieces:
        events = session.receive_data(piece)
        if idle_between:
            events += session.peer_idle()
        for event in events:
            assert isinstance(event, (Accepted, Rejected))
            if isinstance(event, Rejected):
                assert isinstance(event.error, RemoteProtocolError) and event.reason
        if session.state in (AWAITING_PIN, AWAITING_COMMAND):
            assert len(session._partial) <= MAX_TOKEN_BYTES


@given(st.integers(-(2**31), 2**31 - 1), st.sampled_from([b"\n", b"\r\n", b"\x00"]), st.integers(1, 8))
def test_valid_requests_in_any_chunking_are_accepted(frames, terminator, chunk):
    request = b"1235" + terminator + str(frames).encode() + terminator
    session = Session("1235")
    events = []
    for start in range(0, len(request), chunk):
        events.extend(session.receive_data(request[start:start + chunk]))
    assert [type(event) for event in events] == [Accepted]
    assert events[0].frames == frames


def test_importing_tcpcam_core_does_not_import_twisted():
    code = (
        "import sys, tcpcam, tcpcam.core.framing, tcpcam.core.session, tcpcam.core.server_role,"
        " tcpcam.core.client_role, tcpcam.core.request, tcpcam.core.device_config;"
        "print(sorted(name for name in sys.modules if name.split('.')[0] == 'twisted'))"
    )
    output = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60, check=True)
    assert output.stdout.strip() == "[]"


def test_decoding_in_small_chunks_does_not_recopy_a_growing_buffer():
    import tracemalloc

    payload = bytes(range(256)) * 4096
    data = encode_frame(payload)
    pieces = [data[start:start + 512] for start in range(0, len(data), 512)]
    decoder = FrameDecoder()
    tracemalloc.start()
    try:
        received = []
        for piece in pieces:
            decoder.receive_data(piece)
            frame = decoder.next_frame()
            if frame is not None:
                received.append(len(frame))
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert received == [len(payload)]
    # One payload buffer plus small change: a buffer re-copied per chunk would
    # need at least twice the payload at its peak.
    assert peak < len(payload) * 1.25


def test_frame_whole_in_a_chunk_is_a_view_of_it_and_a_split_one_reuses_a_buffer():
    chunk = encode_frame(b"a" * 100) + encode_frame(b"b" * 100)[:50]
    decoder = FrameDecoder()
    decoder.receive_data(chunk)
    first = decoder.next_frame()
    assert first.obj is chunk and bytes(first) == b"a" * 100
    assert decoder.next_frame() is None
    decoder.receive_data(encode_frame(b"b" * 100)[50:])
    second = decoder.next_frame()
    assert second.obj is decoder._payload and bytes(second) == b"b" * 100
    decoder.receive_data(encode_frame(b"c" * 20)[:10])
    decoder.receive_data(encode_frame(b"c" * 20)[10:])
    third = decoder.next_frame()
    assert third.obj is second.obj and bytes(third) == b"c" * 20


# Protocol 2.

sys.path.insert(0, str(__import__("pathlib").Path(__file__).parent / "core"))
from wire import KEY, Pipe, Randomness  # noqa: E402

from tcpcam.core.actions import Close, Write  # noqa: E402
from tcpcam.core.client_role2 import Client2Role, Frame  # noqa: E402
from tcpcam.core.server_role import ServerRole  # noqa: E402


def _server_bytes_of_a_session(frames):
    """What a protocol 2 server sends in a session that streams ``frames``, and what its client got."""
    pipe = Pipe(ServerRole("1235", key=KEY, random=Randomness()))
    pipe.request("stream", frames=len(frames))
    for index, frame in enumerate(frames):
        pipe.tick(10 * (index + 1), frame=frame)
    return b"".join(pipe.transcript), [frame[0] for frame in pipe.frames]


@settings(max_examples=30)
@given(st.lists(st.binary(min_size=1, max_size=200), min_size=1, max_size=5), st.data())
def test_any_split_of_a_protocol_2_stream_gives_the_client_the_same_frames(frames, data):
    wire, expected = _server_bytes_of_a_session(frames)
    assert expected == frames
    client = Client2Role(KEY, Randomness(100))
    client.connected(0)
    cuts = sorted(data.draw(st.lists(st.integers(0, len(wire)), max_size=30)))
    got = []
    for start, end in zip([0, *cuts], [*cuts, len(wire)], strict=True):
        client.receive_data(wire[start:end], 1)
        while True:
            item = client.next_item(1)
            if item is None:
                break
            if isinstance(item, Frame):
                got.append(bytes(item.payload))
    # The client draws the same randomness as the pipe's, so it holds the same session key.
    assert got == frames and client.error is None


@given(st.lists(st.binary(max_size=80), max_size=30))
def test_random_bytes_after_the_opening_never_crash_the_server_nor_make_it_buffer(pieces):
    role = ServerRole("1235", key=KEY, random=Randomness())
    conn = object()
    role.connect(conn, "10.0.0.1", 0)
    actions = role.receive(conn, b"TCPCAM/2\n", 0)
    for piece in pieces:
        actions += role.receive(conn, piece, 1)
    session = role.session(conn)
    assert session is None or session.state in ("hello-sent", "rejected", "done")
    assert all(isinstance(action.head, bytes) for action in actions if isinstance(action, Write))
    assert sum(len(piece) for piece in pieces) < 4096 * 2 or any(isinstance(a, Close) for a in actions)


@given(st.lists(st.binary(max_size=80), max_size=30))
def test_random_bytes_never_crash_the_protocol_2_client(pieces):
    client = Client2Role(KEY, Randomness())
    client.connected(0)
    for piece in pieces:
        client.receive_data(piece, 1)
        for _ in range(100):
            if client.next_item(1) is None:
                break
    client.connection_lost(2)
    for _ in range(100):
        if client.next_item(2) is None:
            break
    assert client.done
