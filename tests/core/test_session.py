"""Request parsing and the session state machine (pytest and MicroPython)."""

from checks import raises

from tcpcam.core.errors import (
    BadCommand,
    HandshakeTimeout,
    LocalProtocolError,
    RemoteProtocolError,
    TokenTooLong,
    WrongPin,
)
from tcpcam.core.events import Accepted, Finished, Rejected
from tcpcam.core.limits import COMMAND_MAX, COMMAND_MIN, MAX_TOKEN_BYTES
from tcpcam.core.request import constant_time_equal, parse_command
from tcpcam.core.session import (
    AWAITING_COMMAND,
    AWAITING_PIN,
    DONE,
    REJECTED,
    STREAMING,
    TRANSITIONS,
    Session,
)


def feed_all(session, pieces):
    events = []
    for piece in pieces:
        events.extend(session.receive_data(piece))
    return events


def accepted_frames(events):
    assert len(events) == 1 and isinstance(events[0], Accepted), events
    return events[0].frames


def test_newline_terminated_tokens_in_one_segment():
    session = Session("1235")
    assert accepted_frames(session.receive_data(b"1235\n5\n")) == 5
    assert session.state == STREAMING and session.frames_remaining == 5


def test_crlf_and_nul_terminators():
    for request in (b"1235\r\n7\r\n", b"1235\x007\x00", b"1235\r7\r", b"1235\n\r\n7\n"):
        session = Session("1235")
        assert accepted_frames(session.receive_data(request)) == 7, request


def test_tokens_split_at_every_byte():
    session = Session("1235")
    events = feed_all(session, [bytes((byte,)) for byte in b"1235\r\n-1\r\n"])
    assert accepted_frames(events) == -1
    assert session.frames_remaining is None


def test_original_client_two_segments_with_idle():
    session = Session("1235")
    assert session.receive_data(b"1235") == []
    assert session.state == AWAITING_PIN and session.wants_idle_timer
    assert session.awaiting_request and not session.streaming
    assert session.peer_idle() == []
    assert session.state == AWAITING_COMMAND and not session.wants_idle_timer
    assert session.receive_data(b"5") == []
    assert session.wants_idle_timer
    assert accepted_frames(session.peer_idle()) == 5
    assert session.streaming and not session.awaiting_request


def test_original_client_merged_segments_use_the_pin_prefix():
    session = Session("1235")
    assert session.receive_data(b"12355") == []
    assert session.state == AWAITING_COMMAND
    assert accepted_frames(session.peer_idle()) == 5


def test_original_client_pin_then_command_before_idle():
    session = Session("1235")
    assert session.receive_data(b"1235") == []
    assert session.receive_data(b"10") == []
    assert session.state == AWAITING_COMMAND
    assert accepted_frames(session.peer_idle()) == 10


def test_prefix_rule_waits_while_the_pin_is_not_passed():
    session = Session("1235")
    session.receive_data(b"123")
    assert session.state == AWAITING_PIN


def test_terminated_token_is_the_whole_pin():
    session = Session("1235")
    events = session.receive_data(b"12355\n")
    assert len(events) == 1 and isinstance(events[0], Rejected)
    assert isinstance(events[0].error, WrongPin)
    assert session.state == REJECTED and "wrong PIN" in session.reason


def test_wrong_pin_by_idle():
    session = Session("1235")
    session.receive_data(b"9999")
    events = session.peer_idle()
    assert isinstance(events[0], Rejected) and session.state == REJECTED


def test_idle_without_pending_bytes_does_nothing():
    session = Session("1235")
    assert session.peer_idle() == []
    assert session.state == AWAITING_PIN


def test_commands_signed_and_blank_padded():
    for text, value in ((b"0", 0), (b"+3", 3), (b"-5", -5), (b"  42\t", 42), (b"2147483647", COMMAND_MAX)):
        session = Session("1235")
        assert accepted_frames(session.receive_data(b"1235\n" + text + b"\n")) == value
    assert parse_command(b"-2147483648") == COMMAND_MIN


def test_bad_commands_are_refused():
    for text in (b"abc", b"5x", b"", b" ", b"+", b"--1", b"1.5", b"0x10", b"\xff", b"2147483648", b"-2147483649"):
        with raises(BadCommand):
            parse_command(text)
    session = Session("1235")
    events = session.receive_data(b"1235\nfive\n")
    assert isinstance(events[0], Rejected) and isinstance(events[0].error, BadCommand)
    assert "bad command" in events[0].reason


def test_token_of_limit_length_is_fine_and_one_more_is_refused():
    session = Session("1235")
    session.receive_data(b"1235\n")
    session.receive_data(b" " * (MAX_TOKEN_BYTES - 1))
    assert session.state == AWAITING_COMMAND
    assert accepted_frames(session.receive_data(b"1\n")) == 1
    session = Session("1235")
    events = session.receive_data(b"9" * (MAX_TOKEN_BYTES + 1))
    assert isinstance(events[0].error, TokenTooLong)
    assert isinstance(events[0].error, RemoteProtocolError)


def test_long_token_over_many_segments_is_refused():
    session = Session("1235")
    events = []
    for _ in range(MAX_TOKEN_BYTES + 5):
        events.extend(session.receive_data(b"7"))
    assert len(events) == 1 and isinstance(events[0].error, TokenTooLong)


def test_bytes_after_the_command_are_ignored():
    session = Session("1235")
    accepted_frames(session.receive_data(b"1235\n2\ngarbage"))
    assert session.receive_data(b"x" * 10000) == []
    assert session.state == STREAMING


def test_data_after_rejection_is_ignored():
    session = Session("1235")
    session.receive_data(b"0000\n")
    assert session.receive_data(b"1235\n5\n") == []
    assert session.state == REJECTED


def test_exactly_n_frames_then_finished():
    session = Session("1235")
    session.receive_data(b"1235\n3\n")
    assert session.frame_sent() == []
    session.frame_skipped()
    assert session.frame_sent() == []
    events = session.frame_sent()
    assert len(events) == 1 and isinstance(events[0], Finished) and events[0].frames_sent == 3
    assert session.state == DONE and session.frames_skipped == 1
    with raises(LocalProtocolError, match="frame_sent"):
        session.frame_sent()


def test_endless_stream_never_finishes():
    session = Session("1235")
    session.receive_data(b"1235\n0\n")
    for _ in range(1000):
        assert session.frame_sent() == []
    assert session.state == STREAMING and session.frames_sent == 1000


def test_handshake_timeout_rejects_only_during_the_request():
    session = Session("1235")
    session.receive_data(b"12")
    events = session.handshake_timed_out()
    assert isinstance(events[0].error, HandshakeTimeout) and session.state == REJECTED
    session = Session("1235")
    session.receive_data(b"1235\n1\n")
    assert session.handshake_timed_out() == []
    assert session.state == STREAMING


def test_connection_lost_ends_the_session():
    for request in (b"", b"1235\n", b"1235\n0\n"):
        session = Session("1235")
        session.receive_data(request)
        session.connection_lost()
        assert session.state == DONE
    session = Session("1235")
    session.receive_data(b"1\n")
    session.connection_lost()
    assert session.state == REJECTED


def test_frames_before_streaming_are_misuse():
    session = Session("1235")
    with raises(LocalProtocolError):
        session.frame_sent()
    with raises(LocalProtocolError):
        session.frame_skipped()


def test_pin_must_be_sendable():
    for pin in ("", "12\n34", "x" * (MAX_TOKEN_BYTES + 1)):
        with raises(ValueError):
            Session(pin)
    assert accepted_frames(Session(b"secret").receive_data(b"secret\n1\n")) == 1


def test_transition_table_is_closed():
    for state, targets in TRANSITIONS.items():
        for target in targets:
            assert target in TRANSITIONS, (state, target)
    assert TRANSITIONS[DONE] == () and TRANSITIONS[REJECTED] == ()


def test_constant_time_equal():
    assert constant_time_equal(b"1235", b"1235")
    assert not constant_time_equal(b"1234", b"1235")
    assert not constant_time_equal(b"123", b"1235")
    assert not constant_time_equal(b"12350", b"1235")
    assert not constant_time_equal(b"", b"1")
    assert constant_time_equal(bytearray(b"ab"), b"ab")


def test_bad_command_message_shows_the_bytes_as_text():
    with raises(BadCommand, match="bad command 'abc':"):
        parse_command(b"abc")
    with raises(BadCommand, match="bad command '5\\xff\\x5c':"):
        parse_command(b"5\xff\\")
