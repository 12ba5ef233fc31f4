"""Failed-PIN throttling per address (pytest and MicroPython)."""

from checks import raises

from tcpcam.errors import LocalProtocolError
from tcpcam.throttle import DEFAULT_BLOCK, DEFAULT_MAX_FAILURES, DEFAULT_WINDOW, PinThrottle


def fail_times(throttle, address, count, now):
    blocked = False
    for _ in range(count):
        blocked = throttle.failed(address, now)
    return blocked


def test_defaults_are_five_failures_a_minute_then_a_minute_off():
    throttle = PinThrottle()
    assert (throttle.max_failures, throttle.window, throttle.block) == (
        DEFAULT_MAX_FAILURES, DEFAULT_WINDOW, DEFAULT_BLOCK)
    assert (DEFAULT_MAX_FAILURES, DEFAULT_WINDOW, DEFAULT_BLOCK) == (5, 60.0, 60.0)


def test_unknown_address_is_allowed():
    throttle = PinThrottle()
    assert throttle.allowed("10.0.0.1", 0.0)
    assert throttle.blocked_for("10.0.0.1", 0.0) == 0
    assert len(throttle) == 0


def test_blocks_on_the_last_allowed_failure_and_not_before():
    throttle = PinThrottle(max_failures=3, window=60, block=30)
    assert not throttle.failed("a", 100.0)
    assert not throttle.failed("a", 101.0)
    assert throttle.allowed("a", 101.0)
    assert throttle.failed("a", 102.0)
    assert not throttle.allowed("a", 102.0)
    assert throttle.blocked_for("a", 112.0) == 20.0


def test_block_ends_after_block_seconds():
    throttle = PinThrottle(max_failures=2, window=60, block=30)
    fail_times(throttle, "a", 2, 100.0)
    assert not throttle.allowed("a", 129.9)
    assert throttle.allowed("a", 130.0)


def test_failures_outside_the_window_do_not_add_up():
    throttle = PinThrottle(max_failures=3, window=10, block=30)
    fail_times(throttle, "a", 2, 0.0)
    assert not throttle.failed("a", 10.0)
    assert not throttle.failed("a", 11.0)
    assert throttle.allowed("a", 11.0)
    assert throttle.failed("a", 12.0)


def test_one_address_never_blocks_another():
    throttle = PinThrottle(max_failures=2)
    fail_times(throttle, "attacker", 2, 5.0)
    assert not throttle.allowed("attacker", 5.0)
    assert throttle.allowed("friend", 5.0)
    assert not throttle.failed("friend", 5.0)
    assert throttle.allowed("friend", 5.0)


def test_success_clears_the_count():
    throttle = PinThrottle(max_failures=3)
    fail_times(throttle, "a", 2, 0.0)
    throttle.succeeded("a", 1.0)
    assert len(throttle) == 0
    assert not fail_times(throttle, "a", 2, 2.0)
    assert throttle.allowed("a", 2.0)


def test_success_does_not_lift_a_running_block():
    throttle = PinThrottle(max_failures=2, block=30)
    fail_times(throttle, "a", 2, 0.0)
    throttle.succeeded("a", 1.0)
    assert not throttle.allowed("a", 1.0)
    throttle.succeeded("unknown", 1.0)


def test_memory_is_bounded_and_blocked_addresses_outlive_quiet_ones():
    throttle = PinThrottle(max_failures=2, window=10, block=100, max_addresses=4)
    fail_times(throttle, "blocked", 2, 0.0)
    for index in range(50):
        throttle.failed("scan%d" % index, 20.0 + index)
        assert len(throttle) <= 4
    assert not throttle.allowed("blocked", 70.0)


def test_least_recently_seen_goes_first_when_all_are_fresh():
    throttle = PinThrottle(max_failures=5, window=1000, block=10, max_addresses=3)
    throttle.failed("a", 1.0)
    throttle.failed("b", 2.0)
    throttle.failed("c", 3.0)
    throttle.failed("a", 4.0)
    throttle.failed("d", 5.0)
    assert len(throttle) == 3
    fail_times(throttle, "a", 3, 6.0)
    assert not throttle.allowed("a", 6.0)
    fail_times(throttle, "b", 4, 6.0)
    assert throttle.allowed("b", 6.0)


def test_bad_settings_are_refused():
    for arguments in ((0, 60, 60), (5, 0, 60), (5, 60, 0), (5, 60, 60, 0)):
        with raises(LocalProtocolError, match="throttle needs"):
            PinThrottle(*arguments)
