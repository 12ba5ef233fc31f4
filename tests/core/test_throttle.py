"""Failed-PIN throttling per address (pytest and MicroPython)."""

from checks import raises

from tcpcam.core.throttle import PinThrottle


def fail_times(throttle, address, count, now):
    blocked = False
    for _ in range(count):
        blocked = throttle.failed(address, now)
    return blocked


def test_defaults_are_five_failures_a_minute_then_a_minute_off():
    throttle = PinThrottle()
    assert (throttle.max_failures, throttle.window, throttle.block) == (5, 60000, 60000)


def test_unknown_address_is_allowed():
    throttle = PinThrottle()
    assert throttle.allowed("10000.100", 0)
    assert throttle.blocked_for("10000.100", 0) == 0
    assert len(throttle) == 0


def test_blocks_on_the_last_allowed_failure_and_not_before():
    throttle = PinThrottle(max_failures=3, window_ms=60000, block_ms=30000)
    assert not throttle.failed("a", 100000)
    assert not throttle.failed("a", 101000)
    assert throttle.allowed("a", 101000)
    assert throttle.failed("a", 102000)
    assert not throttle.allowed("a", 102000)
    assert throttle.blocked_for("a", 112000) == 20000


def test_block_ends_after_block_seconds():
    throttle = PinThrottle(max_failures=2, window_ms=60000, block_ms=30000)
    fail_times(throttle, "a", 2, 100000)
    assert not throttle.allowed("a", 129900)
    assert throttle.allowed("a", 130000)


def test_failures_outside_the_window_do_not_add_up():
    throttle = PinThrottle(max_failures=3, window_ms=10000, block_ms=30000)
    fail_times(throttle, "a", 2, 0)
    assert not throttle.failed("a", 10000)
    assert not throttle.failed("a", 11000)
    assert throttle.allowed("a", 11000)
    assert throttle.failed("a", 12000)


def test_one_address_never_blocks_another():
    throttle = PinThrottle(max_failures=2)
    fail_times(throttle, "attacker", 2, 5000)
    assert not throttle.allowed("attacker", 5000)
    assert throttle.allowed("friend", 5000)
    assert not throttle.failed("friend", 5000)
    assert throttle.allowed("friend", 5000)


def test_success_clears_the_count():
    throttle = PinThrottle(max_failures=3)
    fail_times(throttle, "a", 2, 0)
    throttle.succeeded("a", 1000)
    assert len(throttle) == 0
    assert not fail_times(throttle, "a", 2, 2000)
    assert throttle.allowed("a", 2000)


def test_success_does_not_lift_a_running_block():
    throttle = PinThrottle(max_failures=2, block_ms=30000)
    fail_times(throttle, "a", 2, 0)
    throttle.succeeded("a", 1000)
    assert not throttle.allowed("a", 1000)
    throttle.succeeded("unknown", 1000)


def test_memory_is_bounded_and_blocked_addresses_outlive_quiet_ones():
    throttle = PinThrottle(max_failures=2, window_ms=10000, block_ms=100000, max_addresses=4)
    fail_times(throttle, "blocked", 2, 0)
    for index in range(50):
        throttle.failed("scan%d" % index, 20000 + index * 1000)
        assert len(throttle) <= 4
    assert not throttle.allowed("blocked", 70000)


def test_least_recently_seen_goes_first_when_all_are_fresh():
    throttle = PinThrottle(max_failures=5, window_ms=1000000, block_ms=10000, max_addresses=3)
    throttle.failed("a", 1000)
    throttle.failed("b", 2000)
    throttle.failed("c", 3000)
    throttle.failed("a", 4000)
    throttle.failed("d", 5000)
    assert len(throttle) == 3
    fail_times(throttle, "a", 3, 6000)
    assert not throttle.allowed("a", 6000)
    fail_times(throttle, "b", 4, 6000)
    assert throttle.allowed("b", 6000)


def test_bad_settings_are_refused():
    for arguments in ((0, 60, 60), (5, 0, 60), (5, 60, 0), (5, 60, 60, 0)):
        with raises(ValueError, match="throttle needs"):
            PinThrottle(*arguments)


def test_blocked_addresses_are_never_evicted_and_new_ones_are_limited_together():
    throttle = PinThrottle(max_failures=2, window_ms=10000, block_ms=100000, max_addresses=3, total_failures=1000)
    for address in ("a", "b", "c"):
        fail_times(throttle, address, 2, 0)
    for index in range(10):
        throttle.failed("new%d" % index, 1000)
    for address in ("a", "b", "c"):
        assert not throttle.allowed(address, 2000), "a blocked address was evicted"
    assert not throttle.allowed("new99", 2000)
    assert "new addresses" in throttle.why("new99", 2000)
    assert len(throttle) <= 4


def test_failures_in_total_are_bounded_and_trusted_addresses_still_get_in():
    throttle = PinThrottle(max_failures=5, total_failures=10, total_window_ms=60000)
    throttle.succeeded("friend", 0)
    for index in range(10):
        throttle.failed("10.0.%d.1" % index, 1000)
    assert not throttle.allowed("10.9.9.9", 2000)
    assert throttle.why("10.9.9.9", 2000) == "too many failed requests in total"
    assert throttle.blocked_for("10.9.9.9", 2000) == 59000
    assert throttle.allowed("friend", 2000)
    assert throttle.allowed("10.9.9.9", 61000)


def test_one_address_gets_at_most_max_failures_guesses_per_block_whatever_it_does():
    throttle = PinThrottle(max_failures=5, window_ms=60000, block_ms=60000)
    guesses = 0
    for now in range(0, 600000, 100):
        if throttle.allowed("guesser", now):
            guesses += 1
            throttle.failed("guesser", now)
    assert guesses <= 5 * 10


def test_trust_is_bounded_and_ends():
    throttle = PinThrottle(max_trusted=2, trust_ms=1000, total_failures=1)
    for address in ("a", "b", "c"):
        throttle.succeeded(address, 0)
    throttle.failed("x", 10)
    assert not throttle.allowed("a", 20) and throttle.allowed("b", 20) and throttle.allowed("c", 20)
    throttle.failed("y", 1100)
    assert not throttle.allowed("b", 1200)
