"""The server role: admission, requests, pacing, fan-out and deadlines (pytest and MicroPython)."""

from checks import raises

from tcpcam.core.actions import WARN, CancelCapture, Capture, Close, Log, Write
from tcpcam.core.framing import encode_header
from tcpcam.core.server_role import ServerRole

FRAME = b"\xff\xd8frame\xff\xd9"


class Conn:
    """A driver handle: the role only keeps it and hands it back."""

    def __init__(self, name):
        self.name = name

    def __repr__(self):
        return "Conn(%s)" % self.name


def of(kind, actions):
    return [action for action in actions if isinstance(action, kind)]


def texts(actions):
    return [action.text for action in of(Log, actions)]


def streaming(role, name, frames=0, now=0, address="10.0.0.1"):
    """Connect a client and let it ask for ``frames`` frames."""
    conn = Conn(name)
    assert role.connect(conn, address, now, "%s:%s" % (address, name)) == []
    actions = role.receive(conn, b"1235\n%d\n" % frames, now)
    assert any("streams" in text for text in texts(actions)), actions
    return conn


def capture(role, now, frame=FRAME):
    """Tick until the role asks for a frame, answer it; returns the actions of the answer."""
    captures = of(Capture, role.tick(now))
    assert len(captures) == 1, "no capture asked for at %d" % now
    return role.captured(captures[0].ticket, frame, now)


def test_a_client_gets_exactly_n_frames_then_a_close():
    role = ServerRole("1235")
    conn = streaming(role, "a", 2)
    actions = capture(role, 0)
    assert [(w.conn, w.head, w.payload) for w in of(Write, actions)] == [(conn, encode_header(len(FRAME)), FRAME)]
    assert of(Close, actions) == []
    assert role.tick(1) == []
    role.written(conn, 2)
    actions = capture(role, 3)
    assert len(of(Write, actions)) == 1
    closes = of(Close, actions)
    assert len(closes) == 1 and closes[0].conn is conn and not closes[0].abort
    assert any("got its 2 frames" in text for text in texts(actions))
    assert role.streaming == 0


def test_the_source_is_asked_only_while_someone_can_take_a_frame():
    role = ServerRole("1235")
    assert role.next_deadline() is None
    conn = Conn("a")
    role.connect(conn, "10.0.0.1", 0)
    assert of(Capture, role.tick(0)) == []
    role.receive(conn, b"1235\n0\n", 5)
    assert role.next_deadline() <= 5
    capture(role, 5)
    # Busy with the frame: no capture until it is written.
    assert of(Capture, role.tick(10)) == []
    role.written(conn, 20)
    assert role.next_deadline() <= 20
    assert len(of(Capture, role.tick(20))) == 1


def test_interval_paces_the_requests_from_when_each_began():
    role = ServerRole("1235", interval_ms=100)
    conn = streaming(role, "a")
    capture(role, 0)
    role.written(conn, 30)
    assert of(Capture, role.tick(99)) == []
    assert role.next_deadline() == 100
    assert len(of(Capture, role.tick(100))) == 1


def test_interval_zero_captures_as_soon_as_the_client_took_the_frame():
    role = ServerRole("1235", interval_ms=0)
    conn = streaming(role, "a")
    for now in range(0, 50, 10):
        assert of(Write, capture(role, now))
        role.written(conn, now + 1)
    assert role.pacer.requests == 5


def test_frames_go_newest_connection_first_and_a_busy_one_skips():
    role = ServerRole("1235")
    old = streaming(role, "old")
    new = streaming(role, "new")
    actions = capture(role, 0)
    assert [write.conn for write in of(Write, actions)] == [new, old]
    role.written(new, 1)
    actions = capture(role, 2)
    assert [write.conn for write in of(Write, actions)] == [new]
    assert role.session(old).frames_skipped == 1
    assert role.counters["frames_skipped"] == 1


def test_a_skip_does_not_count_towards_n():
    role = ServerRole("1235")
    slow = streaming(role, "slow", 2)
    fast = streaming(role, "fast")
    capture(role, 0)
    role.written(fast, 1)
    capture(role, 2)
    assert role.session(slow).frames_sent == 1
    role.written(slow, 3)
    role.written(fast, 3)
    actions = capture(role, 4)
    assert [close.conn for close in of(Close, actions)] == [slow]


def test_a_client_that_takes_no_frame_is_dropped_after_the_send_timeout_from_the_offer():
    role = ServerRole("1235", send_timeout_ms=1000)
    conn = streaming(role, "stuck")
    capture(role, 100)
    assert role.next_deadline() <= 1100
    assert of(Close, role.tick(1099)) == []
    actions = role.tick(1100)
    closes = of(Close, actions)
    assert len(closes) == 1 and closes[0].abort
    assert any("took no frame for 1 s" in text for text in texts(actions))
    assert role.counters["dropped_stalled"] == 1
    assert role.disconnected(conn, 1101) == []


def test_a_handshake_that_does_not_finish_is_rejected():
    role = ServerRole("1235", handshake_timeout_ms=500, idle_ms=1000)
    conn = Conn("slow")
    role.connect(conn, "10.0.0.1", 0)
    role.receive(conn, b"12", 100)
    assert of(Close, role.tick(499)) == []
    actions = role.tick(500)
    assert [close.conn for close in of(Close, actions)] == [conn]
    assert any("not finished in time" in text for text in texts(actions))


def test_an_unterminated_pin_ends_after_the_idle_time():
    role = ServerRole("1235", idle_ms=100)
    conn = Conn("original")
    role.connect(conn, "10.0.0.1", 0)
    role.receive(conn, b"1235", 10)
    assert role.next_deadline() == 110
    assert role.tick(109) == []
    role.tick(110)
    actions = role.receive(conn, b"3", 300)
    assert actions == []
    actions = role.tick(400)
    assert any("streams 3 frames" in text for text in texts(actions))


def test_a_full_server_refuses_with_nothing_sent():
    role = ServerRole("1235", max_clients=2)
    streaming(role, "a")
    streaming(role, "b")
    extra = Conn("c")
    actions = role.connect(extra, "10.0.0.2", 0, "10.0.0.2:9")
    assert [(close.conn, close.abort) for close in of(Close, actions)] == [(extra, True)]
    assert of(Write, actions) == []
    assert texts(actions) == ["refused 10.0.0.2:9: server full (2 clients)"]
    assert role.counters["refused_full"] == 1


def test_a_closing_connection_gives_its_place_back():
    role = ServerRole("1235", max_clients=1)
    first = Conn("a")
    role.connect(first, "10.0.0.1", 0)
    role.receive(first, b"0000\n", 1)
    assert role.connect(Conn("b"), "10.0.0.1", 2) == []


def test_wrong_pins_block_the_address_and_the_right_pin_clears_the_count():
    role = ServerRole("1235", pin_failures=3, pin_window_ms=60000, pin_block_ms=30000)
    for now in (1, 2):
        conn = Conn("x")
        role.connect(conn, "10.0.0.9", now)
        assert of(Close, role.receive(conn, b"0000\n", now))
        role.disconnected(conn, now)
    streaming(role, "good", 0, 3, "10.0.0.9")
    for now in (4, 5):
        conn = Conn("y")
        role.connect(conn, "10.0.0.9", now)
        role.receive(conn, b"0000\n", now)
    conn = Conn("z")
    role.connect(conn, "10.0.0.9", 6)
    actions = role.receive(conn, b"0000\n", 6)
    assert any("is refused for 30 s" in text for text in texts(actions))
    refused = role.connect(Conn("w"), "10.0.0.9", 7)
    assert of(Close, refused) and "refused for 30 s more" in texts(refused)[0]
    assert role.connect(Conn("v"), "10.0.0.8", 7) == []
    assert role.connect(Conn("u"), "10.0.0.9", 30006) == []


def test_throttling_can_be_off():
    role = ServerRole("1235", pin_failures=0)
    assert role.throttle is None
    for now in range(20):
        conn = Conn(now)
        assert role.connect(conn, "10.0.0.9", now) == []
        role.receive(conn, b"0000\n", now)
        role.disconnected(conn, now)


def test_a_failed_capture_is_logged_once_and_backed_off():
    role = ServerRole("1235", capture_retry_ms=100, capture_retry_max_ms=400)
    streaming(role, "a")
    logged = []
    times = []
    now = 0
    for _ in range(5):
        (ask,) = of(Capture, role.tick(now))
        times.append(now)
        actions = role.capture_failed(ask.ticket, "lens cap", now)
        logged += texts(actions)
        now = role.next_deadline()
    assert [b - a for a, b in zip(times, times[1:])] == [100, 200, 400, 400]
    assert len(logged) == 1 and "lens cap" in logged[0] and "counted, not logged" in logged[0]
    actions = capture(role, now)
    assert texts(actions) == ["frame source recovered after 5 failed frames"]


def test_a_source_that_does_not_answer_is_timed_out_and_its_late_answer_dropped():
    role = ServerRole("1235", source_timeout_ms=1000)
    conn = streaming(role, "a")
    (ask,) = of(Capture, role.tick(0))
    assert role.next_deadline() == 1000
    actions = role.tick(1000)
    assert [cancel.ticket for cancel in of(CancelCapture, actions)] == [ask.ticket]
    assert any("no answer in 1 s" in text for text in texts(actions))
    assert role.captured(ask.ticket, FRAME, 1001) == []
    assert role.session(conn).frames_sent == 0


def test_a_finished_client_that_does_not_read_is_aborted_after_the_close_timeout():
    role = ServerRole("1235", close_timeout_ms=500)
    conn = streaming(role, "a", 1)
    actions = capture(role, 0)
    assert not of(Close, actions)[0].abort
    assert of(Close, role.tick(499)) == []
    closes = of(Close, role.tick(500))
    assert [(close.conn, close.abort) for close in closes] == [(conn, True)]


def test_stop_closes_everyone_and_cancels_the_pending_capture():
    role = ServerRole("1235")
    first = streaming(role, "a")
    second = Conn("b")
    role.connect(second, "10.0.0.1", 0)
    (ask,) = of(Capture, role.tick(0))
    actions = role.stop(1)
    assert [cancel.ticket for cancel in of(CancelCapture, actions)] == [ask.ticket]
    assert sorted(close.conn.name for close in of(Close, actions)) == ["a", "b"]
    assert role.captured(ask.ticket, FRAME, 2) == []
    assert of(Capture, role.tick(3)) == []
    role.disconnected(first, 4)
    role.restart()
    streaming(role, "c", 0, 5)
    assert of(Capture, role.tick(5))


def test_a_client_that_leaves_is_logged_and_forgotten():
    role = ServerRole("1235")
    conn = streaming(role, "a")
    capture(role, 0)
    actions = role.disconnected(conn, 1)
    assert texts(actions) == ["10.0.0.1:a left after 1 frame"]
    assert role.clients == 0
    assert role.session(conn) is None
    assert role.disconnected(conn, 2) == []


def test_bytes_after_the_request_are_ignored():
    role = ServerRole("1235")
    conn = streaming(role, "a", 1)
    assert role.receive(conn, b"junk" * 100, 1) == []


def test_counters_tell_what_happened():
    role = ServerRole("1235", max_clients=1)
    conn = streaming(role, "a", 1)
    role.connect(Conn("b"), "10.0.0.2", 0)
    capture(role, 1)
    status = role.status()
    assert status["accepted"] == 1 and status["refused_full"] == 1 and status["frames_offered"] == 1
    assert status["bytes_offered"] == len(FRAME) and status["finished"] == 1
    assert role.session(conn).frames_sent == 1


def test_the_log_levels_say_how_bad_it_is():
    role = ServerRole("1235", max_clients=1)
    streaming(role, "a")
    (line,) = of(Log, role.connect(Conn("b"), "10.0.0.2", 0))
    assert line.level == WARN and line.topic == "refused"


def test_bad_settings_raise_value_error():
    for settings in ({"max_clients": 0}, {"send_timeout_ms": 0}, {"interval_ms": -1}, {"pin_failures": -1}):
        with raises(ValueError):
            ServerRole("1235", **settings)
    with raises(ValueError):
        ServerRole("12\n35")
    role = ServerRole("1235")
    conn = Conn("a")
    role.connect(conn, "10.0.0.1", 0)
    with raises(ValueError, match="twice"):
        role.connect(conn, "10.0.0.1", 0)


def unterminated_guess(role, guess, now, address="10.0.0.66"):
    """The attack of issue 12: a guess, 0, a pause, then blanks up to the token limit, unterminated."""
    conn = Conn(guess)
    actions = role.connect(conn, address, now)
    if conn in [close.conn for close in of(Close, actions)]:
        return "refused"
    actions = role.receive(conn, guess + b"0", now) + role.tick(now + 150)
    actions += role.receive(conn, b" " * 123, now + 200) + role.tick(now + 400)
    role.disconnected(conn, now + 500)
    return "streams" if any("streams" in text for text in texts(actions)) else "failed"


def test_the_unterminated_guess_attack_is_throttled_and_the_right_pin_then_refused():
    role = ServerRole("1235", pin_failures=5, pin_window_ms=60000, pin_block_ms=60000)
    results = [unterminated_guess(role, b"%04d" % guess, index * 1000) for index, guess in enumerate(range(8))]
    assert results[:5] == ["failed"] * 5
    assert results[5:] == ["refused"] * 3
    assert unterminated_guess(role, b"1235", 9000) == "refused"
    assert unterminated_guess(role, b"1235", 70000) == "streams"
    assert role.counters["failed_requests"] == 5


def test_every_request_that_ends_before_the_right_pin_counts_but_silence_does_not():
    role = ServerRole("1235", pin_failures=100, handshake_timeout_ms=1000, first_byte_timeout_ms=500, idle_ms=5000)
    slow, leaver, silent = Conn("slow"), Conn("leaver"), Conn("silent")
    for conn in (slow, leaver, silent):
        role.connect(conn, "10.0.0.5", 0)
    role.receive(slow, b"12", 10)
    role.receive(leaver, b"9", 10)
    role.disconnected(leaver, 20)
    actions = role.tick(500)
    assert [close.conn for close in of(Close, actions)] == [silent]
    assert role.counters["silent"] == 1
    actions = role.tick(1000)
    assert [close.conn for close in of(Close, actions)] == [slow]
    assert role.counters["failed_requests"] == 2


def test_one_address_cannot_hold_more_than_its_pending_places():
    role = ServerRole("1235", pending_per_address=3, max_clients=8)
    waiting = [Conn(index) for index in range(3)]
    for conn in waiting:
        assert role.connect(conn, "10.0.0.7", 0) == []
    actions = role.connect(Conn("fourth"), "10.0.0.7", 1)
    assert [(close.conn, close.abort) for close in of(Close, actions)] == [(waiting[0], True)]
    assert role.counters["evicted"] == 1 and role.counters["failed_requests"] == 0


def test_a_full_server_takes_the_place_of_the_oldest_pending_connection_and_refuses_only_when_all_stream():
    role = ServerRole("1235", max_clients=3, pending_per_address=3)
    streaming(role, "a", 0, 0, "10.0.0.1")
    idle = [Conn("idle1"), Conn("idle2")]
    for conn in idle:
        role.connect(conn, "10.0.0.2", 1)
    newcomer = Conn("new")
    actions = role.connect(newcomer, "10.0.0.3", 2)
    assert [close.conn for close in of(Close, actions)] == [idle[0]]
    role.receive(newcomer, b"1235\n0\n", 3)
    role.receive(idle[1], b"1235\n0\n", 3)
    actions = role.connect(Conn("late"), "10.0.0.4", 4)
    assert [close.abort for close in of(Close, actions)] == [True] and role.counters["refused_full"] == 1


def test_two_hundred_silent_sockets_lock_nobody_out():
    role = ServerRole("1235", max_clients=8)
    served = {"other": 0, "same": 0}
    attackers = []
    now = 0
    for _ in range(40):
        for _ in range(5):
            conn = Conn("attacker")
            role.connect(conn, "127.0.0.2", now)
            attackers.append(conn)
        for who, address in (("other", "127.0.0.3"), ("same", "127.0.0.2")):
            conn = Conn(who)
            if conn not in [close.conn for close in of(Close, role.connect(conn, address, now))]:
                actions = role.receive(conn, b"1235\n1\n", now + 1)
                if any("streams" in text for text in texts(actions)):
                    served[who] += 1
            role.disconnected(conn, now + 2)
        for conn in attackers:
            if role.session(conn) is not None and role.session(conn).awaiting_request is False:
                role.disconnected(conn, now)
        now += 100
        role.tick(now)
    assert served == {"other": 40, "same": 40}
    assert role.counters["failed_requests"] == 0


def test_repeated_refusals_are_one_line_per_address_and_reason_per_interval():
    role = ServerRole("1235", max_clients=1, pin_failures=0)
    streaming(role, "a", 0, 0, "10.0.0.1")
    lines = []
    for now in range(0, 60000, 10):
        lines += texts(role.connect(Conn(now), "10.0.0.9", now, "10.0.0.9:%d" % now))
        lines += texts(role.tick(now))
    lines += texts(role.tick(60000))
    refusals = [line for line in lines if "refused" in line]
    assert refusals == ["refused 10.0.0.9:0: server full (1 client)",
                        "10.0.0.9: 5999 more refused in the last 60 s (full)"]
    assert role.counters["refused_full"] == 6000


def test_guesses_from_many_addresses_are_bounded_in_total():
    role = ServerRole("1235")
    evaluated = 0
    for index in range(300):
        address = "127.0.%d.%d" % (index // 250, index % 250 + 1)
        for attempt in range(3):
            conn = Conn(index)
            if conn not in [close.conn for close in of(Close, role.connect(conn, address, index * 10 + attempt))]:
                evaluated += 1
                role.receive(conn, b"0000\n", index * 10 + attempt)
            role.disconnected(conn, index * 10 + attempt)
    assert evaluated <= role.throttle.total_failures
