"""The client role: the request, frames, timeouts and how a stream ended (pytest and MicroPython)."""

from checks import raises

from tcpcam.core.actions import Close, Write
from tcpcam.core.client_role import CLOSED, DONE, RECEIVING, SENDING, ClientRole
from tcpcam.core.errors import (
    ClosedBeforeFirstFrame,
    FrameTimeout,
    FrameTooLarge,
    LocalProtocolError,
    TooFewFrames,
    TruncatedFrame,
)
from tcpcam.core.framing import encode_frame, encode_header
from tcpcam.core.request import encode_request


def writes(actions):
    return [action.head for action in actions if isinstance(action, Write)]


def take_all(role, now=0):
    frames = []
    while True:
        frame = role.next_frame(now)
        if frame is None:
            return frames
        frames.append(bytes(frame))


def test_pin_then_the_command_after_the_pause():
    role = ClientRole("1235", 5, pause_ms=50)
    assert writes(role.connected(0)) == [b"1235\n"]
    assert role.state == SENDING and role.next_deadline() == 50
    assert role.tick(49) == []
    assert writes(role.tick(50)) == [b"5\n"]
    assert role.state == RECEIVING and role.next_deadline() is None


def test_no_pause_sends_both_at_once():
    role = ClientRole("1235", 0, pause_ms=0)
    assert writes(role.connected(0)) == [b"1235\n0\n"]
    assert encode_request("1235", -3) == (b"1235\n", b"-3\n")


def test_exactly_n_frames_end_the_request_with_success():
    role = ClientRole("1235", 2, pause_ms=0)
    role.connected(0)
    role.receive_data(encode_frame(b"one") + encode_frame(b"two") + encode_frame(b"three"), 1)
    assert take_all(role) == [b"one", b"two"]
    assert role.done and role.error is None and role.complete
    assert (role.frames_received, role.bytes_received) == (2, 6)


def test_how_a_stream_ended():
    cases = (
        (5, b"", ClosedBeforeFirstFrame),
        (5, encode_frame(b"x"), TooFewFrames),
        (5, encode_frame(b"x") + encode_header(10) + b"abc", TruncatedFrame),
        (5, b"\x00\x00", TruncatedFrame),
        (0, b"", ClosedBeforeFirstFrame),
    )
    for frames, wire, error in cases:
        role = ClientRole("1235", frames, pause_ms=0)
        role.connected(0)
        role.receive_data(wire, 1)
        take_all(role)
        role.connection_lost(2)
        assert role.state == CLOSED
        take_all(role)
        assert role.done and isinstance(role.error, error), (wire, role.error)


def test_a_stream_the_server_ends_between_frames_is_a_success():
    role = ClientRole("1235", 0, pause_ms=0)
    role.connected(0)
    role.receive_data(encode_frame(b"a") + encode_frame(b"b"), 1)
    role.connection_lost(2)
    assert take_all(role) == [b"a", b"b"]
    assert role.done and role.error is None


def test_truncation_names_the_frame_and_bytes():
    role = ClientRole("1235", 3, pause_ms=0)
    role.connected(0)
    role.receive_data(encode_frame(b"ok") + encode_header(100) + b"x" * 40, 1)
    take_all(role)
    role.connection_lost(2)
    take_all(role)
    assert "after 40 of the 100 payload bytes of frame 2" in str(role.error)


def test_a_frame_over_the_limit_fails_at_once():
    role = ClientRole("1235", 0, max_frame_bytes=10, pause_ms=0)
    role.connected(0)
    role.receive_data(encode_header(11), 1)
    assert take_all(role) == []
    assert role.done and isinstance(role.error, FrameTooLarge)


def test_silence_times_out():
    role = ClientRole("1235", 0, pause_ms=0, timeout_ms=1000)
    role.connected(0)
    role.receive_data(encode_frame(b"a"), 400)
    take_all(role, 400)
    assert role.next_deadline() == 1400
    assert role.tick(1399) == []
    actions = role.tick(1400)
    assert [close.abort for close in actions if isinstance(close, Close)] == [True]
    assert isinstance(role.error, FrameTimeout) and "nothing received for 1 s after 1 frame " in str(role.error)


def test_a_frame_that_trickles_in_times_out_even_if_bytes_keep_coming():
    role = ClientRole("1235", 0, pause_ms=0, timeout_ms=1000)
    role.connected(0)
    role.receive_data(encode_header(100), 0)
    take_all(role, 0)
    for now in range(100, 1000, 100):
        role.receive_data(b"x", now)
        take_all(role, now)
        assert role.tick(now) == []
    role.tick(1000)
    assert role.done and role.error.trickling and "frame 1 did not arrive whole within 1 s" in str(role.error)


def test_time_the_consumer_holds_the_stream_is_not_silence():
    role = ClientRole("1235", 0, pause_ms=0, timeout_ms=1000)
    role.connected(0)
    role.hold(10)
    assert role.next_deadline() is None
    assert role.tick(5000) == []
    role.release(5000)
    assert role.next_deadline() == 6000


def test_a_held_stream_gives_no_frame_until_released():
    role = ClientRole("1235", 0, pause_ms=0)
    role.connected(0)
    role.receive_data(encode_frame(b"a") + encode_frame(b"b"), 1)
    assert bytes(role.next_frame(1)) == b"a"
    role.hold(1)
    assert role.next_frame(1) is None
    role.release(2)
    assert take_all(role) == [b"b"]


def test_cancel_ends_with_the_given_error_once():
    role = ClientRole("1235", 0, pause_ms=0)
    role.connected(0)
    problem = ValueError("consumer broke")
    role.cancel(problem)
    role.cancel(ValueError("later"))
    assert role.state == DONE and role.error is problem and role.next_deadline() is None


def test_misuse_and_bad_arguments():
    with raises(ValueError):
        ClientRole("12\n34", 1)
    with raises(ValueError):
        ClientRole("1235", 2 ** 31)
    with raises(ValueError):
        ClientRole("1235", 1, pause_ms=-1)
    with raises(ValueError):
        ClientRole("1235", 1, timeout_ms=0)
    role = ClientRole("1235", 1)
    role.connected(0)
    with raises(LocalProtocolError):
        role.connected(1)
