"""When the source is asked for a frame (pytest and MicroPython)."""

from checks import raises

from tcpcam.core.errors import LocalProtocolError
from tcpcam.core.pacing import CapturePacer


def test_one_request_at_a_time_and_tickets_tell_answers_apart():
    pacer = CapturePacer()
    assert pacer.due() == 0
    first = pacer.start(10)
    assert pacer.pending and pacer.ticket == first and pacer.due() is None
    with raises(LocalProtocolError):
        pacer.start(11)
    assert pacer.succeeded(first) == 0
    assert pacer.succeeded(first) == -1
    second = pacer.start(12)
    assert second != first and pacer.failed(first, 12) == 0


def test_interval_counts_from_the_start_of_the_previous_request():
    pacer = CapturePacer(interval_ms=100)
    ticket = pacer.start(1000)
    pacer.succeeded(ticket)
    assert pacer.due() == 1100


def test_failures_back_off_doubling_up_to_the_cap_and_a_frame_resets():
    pacer = CapturePacer(retry_ms=50, retry_max_ms=300)
    delays = []
    now = 0
    for _ in range(6):
        ticket = pacer.start(now)
        pacer.failed(ticket, now)
        delays.append(pacer.due() - now)
        now = pacer.due()
    assert delays == [50, 100, 200, 300, 300, 300]
    assert pacer.failures_in_a_row == 6
    assert pacer.succeeded(pacer.start(now)) == 6
    ticket = pacer.start(now)
    pacer.failed(ticket, now)
    assert pacer.due() - now == 50


def test_timeout_is_reported_only_while_a_request_is_out():
    pacer = CapturePacer(timeout_ms=500)
    assert pacer.timeout_at() is None
    pacer.start(100)
    assert pacer.timeout_at() == 600
    assert CapturePacer(timeout_ms=None).timeout_at() is None


def test_stop_gives_back_the_ticket_out_and_nothing_is_due_again():
    pacer = CapturePacer()
    ticket = pacer.start(0)
    assert pacer.stop() == ticket
    assert pacer.stopped and pacer.due() is None and pacer.succeeded(ticket) == -1


def test_bad_settings_raise_value_error():
    for arguments in ((-1,), (0, 0), (0, None, 0), (0, None, 10, 5)):
        with raises(ValueError):
            CapturePacer(*arguments)
