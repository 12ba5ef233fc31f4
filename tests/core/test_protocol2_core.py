"""Protocol 2 end to end in memory: a ServerRole and a Client2Role (pytest and MicroPython)."""

from checks import raises
from wire import KEY, Pipe, Randomness

from tcpcam.core import mac, messages
from tcpcam.core.client_role2 import Closing, Hello, ProtocolMemory, Ready, Result, Settings
from tcpcam.core.errors import LegacyServer, ServerClosed, WrongKey
from tcpcam.core.server_role import ServerRole

FRAME = b"\xff\xd8jpeg\xff\xd9"


def role(**settings):
    settings.setdefault("key", KEY)
    settings.setdefault("random", Randomness())
    settings.setdefault("device", {"name": "door", "firmware": "test", "sensor": "OV2640"})
    return ServerRole("1235", **settings)


def test_hmac_sha256_matches_rfc_4231():
    key = bytes([0x0B] * 20)
    assert mac.hmac_sha256(key, b"Hi There") == bytes.fromhex(
        "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7")
    long_key = bytes([0xAA] * 131)
    assert mac.hmac_sha256(long_key, b"Test Using Larger Than Block-Size Key - Hash Key First") == bytes.fromhex(
        "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54")


def test_the_key_text_round_trips_and_refuses_short_or_bad_keys():
    text = mac.key_text(KEY)
    assert len(text.replace("-", "")) == 32 and all(len(group) == 4 for group in text.split("-"))
    assert mac.parse_key(text) == KEY
    assert mac.parse_key(text.lower().replace("-", " ")) == KEY
    with raises(ValueError):
        mac.parse_key("ABCD-EFGH")
    with raises(ValueError):
        mac.parse_key(text[:-1] + "1")
    with raises(ValueError):
        mac.key_text(b"short")


def test_the_handshake_proves_the_key_both_ways_and_sends_the_settings():
    server = role()
    pipe = Pipe(server)
    (hello,) = pipe.of(Hello)
    assert hello.device["name"] == "door" and "VGA" in hello.device["framesizes"]
    assert hello.info["protocol"] == 2 and "snapshot" in hello.info["capabilities"]
    assert pipe.of(Ready) and pipe.client.ready
    assert pipe.of(Settings)[0].settings["framesize"] == "VGA"
    assert server.counters["authenticated"] == 1 and server.clients == 1


def test_frames_carry_their_sequence_capture_time_wall_time_and_misses():
    server = role()
    pipe = Pipe(server)
    pipe.request("stream", frames=3)
    for now in (10, 20, 30):
        pipe.tick(now)
    assert [frame[0] for frame in pipe.frames] == [FRAME] * 3
    assert [frame[1] for frame in pipe.frames] == [1, 2, 3]
    assert [frame[2] for frame in pipe.frames] == [10, 20, 30]
    assert pipe.frames[0][3] == 1700000000010
    assert all(frame[4] == messages.STREAM and frame[5] == 0 for frame in pipe.frames)
    assert pipe.closed is None and server.counters["finished"] == 1
    pipe.tick(40)
    assert len(pipe.frames) == 3, "the stream ended; the connection stays for more requests"
    pipe.request("snapshot")
    pipe.tick(50)
    assert pipe.frames[-1][4] == messages.SNAPSHOT


def test_a_busy_client_is_told_how_many_frames_it_missed():
    server = role()
    slow = Pipe(server, name="slow")
    fast = Pipe(server, name="fast")
    slow.request("stream", frames=0)
    fast.request("stream", frames=0)
    slow.flushing = False
    slow.tick(10)
    slow.flushing = True
    for now in (20, 30):
        fast.tick(now)
    slow.server(server.written(slow.conn, 35))
    fast.tick(40)
    assert [frame[1] for frame in slow.frames] == [1, 4]
    assert slow.frames[1][5] == 2
    assert [frame[5] for frame in fast.frames] == [0, 0, 0, 0]


def test_a_snapshot_comes_even_while_paused_and_snapshots_are_bounded():
    server = role()
    pipe = Pipe(server)
    pipe.request("stream", frames=0)
    pipe.request("pause")
    pipe.tick(10)
    assert pipe.frames == []
    first = pipe.request("snapshot")
    second = pipe.request("snapshot")
    third = pipe.request("snapshot")
    results = {result.id: result for result in pipe.of(Result)}
    assert results[first].ok and results[second].ok and not results[third].ok
    pipe.tick(20)
    assert [frame[4] for frame in pipe.frames] == [messages.SNAPSHOT]
    pipe.tick(30)
    pipe.tick(40)
    assert len(pipe.frames) == 2
    pipe.request("resume")
    pipe.tick(50)
    assert pipe.frames[-1][4] == messages.STREAM


def test_a_client_sets_its_own_rate():
    server = role()
    pipe = Pipe(server)
    pipe.request("stream", frames=0)
    pipe.request("rate", every=3)
    for now in range(10, 100, 10):
        pipe.tick(now)
    assert [frame[1] for frame in pipe.frames] == [3, 6, 9]
    pipe.request("rate", fps=10)
    before = len(pipe.frames)
    for now in range(100, 1100, 10):
        pipe.tick(now)
    assert 9 <= len(pipe.frames) - before <= 11
    bad = pipe.request("rate", fps=0)
    assert [result.ok for result in pipe.of(Result) if result.id == bad] == [False]


def test_settings_are_checked_applied_by_the_driver_and_sent_to_every_client():
    server = role()
    asker = Pipe(server, name="asker")
    other = Pipe(server, name="other")
    bad = asker.request("set", settings={"quality": 500})
    assert "quality" in [result.error for result in asker.of(Result) if result.id == bad][0]
    assert asker.applies == []
    good = asker.request("set", settings={"framesize": "svga", "quality": 70})
    (apply,) = asker.applies
    assert apply.settings["framesize"] == "SVGA" and apply.settings["quality"] == 70
    asker.server(server.settings_applied(apply.ticket, apply.settings, None, 5))
    asker.pump()
    other.pump()
    assert other.of(Settings)[-1].settings["framesize"] == "SVGA"
    assert asker.of(Settings)[-1].settings["quality"] == 70
    assert [result.ok for result in asker.of(Result) if result.id == good] == [True]
    assert server.settings["framesize"] == "SVGA"


def test_health_goes_to_every_client_every_interval():
    server = role(health_interval_ms=1000)
    pipe = Pipe(server)
    pipe.tick(0)
    assert pipe.health_asked == 1
    pipe.server(server.report_health({"free_heap": 12345, "uptime_s": 9}, 1))
    pipe.pump()
    assert pipe.client.health["free_heap"] == 12345
    pipe.tick(999)
    assert pipe.health_asked == 1
    pipe.tick(1000)
    assert pipe.health_asked == 2


def test_a_wrong_key_is_told_and_counts_as_a_failed_request():
    server = role(pin_failures=2)
    pipe = Pipe(server, key=bytes(20))
    pipe.pump()
    assert pipe.closed == "close" and pipe.of(Closing)[0].reason == "wrong-key"
    assert isinstance(pipe.client.error, ServerClosed)
    Pipe(server, key=bytes(20))
    refused = Pipe(server)
    assert refused.of(Closing)[0].reason == "throttled" or refused.closed is not None
    assert server.counters["failed_requests"] == 2


def test_a_server_that_does_not_hold_the_key_is_found_out():
    from tcpcam.core.actions import Close
    from tcpcam.core.client_role2 import Client2Role

    client = Client2Role(KEY, Randomness())
    client.connected(0)
    hello = {"protocol": 2, "capabilities": [], "device": {}, "challenge": "00" * 16}
    client.receive_data(messages.encode_json(messages.HELLO, hello), 1)
    assert client.next_item(1).head[4:5] == b"a"
    client.receive_data(messages.encode(messages.AUTH_OK, bytes(32)), 2)
    items = [client.next_item(2) for _ in range(2)]
    assert isinstance(items[-1], Close) and isinstance(client.error, WrongKey)
    assert "does not hold the device key" in str(client.error)


def test_an_injected_or_replayed_request_closes_the_connection():
    server = role()
    pipe = Pipe(server)
    counter, write = pipe.client.request("pause", 0)
    forged = bytearray(write.head)
    forged[-2] ^= 1
    pipe.server(server.receive(pipe.conn, bytes(forged), 1))
    assert pipe.closed == "close"
    assert server.counters["rejected"] == 1
    pipe2 = Pipe(server, name="replay")
    counter, write = pipe2.client.request("pause", 0)
    pipe2.client_writes([write])
    pipe2.client_writes([write])
    assert pipe2.closed == "close"


def test_a_refused_protocol_2_client_is_told_why_and_a_legacy_one_is_not():
    server = role(max_clients=1)
    streaming = Pipe(server, name="first")
    streaming.request("stream", frames=0)
    late = Pipe(server, name="late")
    assert [closing.reason for closing in late.of(Closing)] == ["full"]


def test_legacy_requests_still_work_beside_protocol_2_and_can_be_refused():
    from tcpcam.core.actions import Close, Log

    server = role()
    legacy = object()
    server.connect(legacy, "10.0.0.2", 0)
    actions = server.receive(legacy, b"1235\n1\n", 0)
    assert any("streams 1 frame" in action.text for action in actions if isinstance(action, Log))
    strict = role(legacy=False)
    conn = object()
    strict.connect(conn, "10.0.0.2", 0)
    actions = strict.receive(conn, b"1235\n1\n", 0)
    assert [action for action in actions if isinstance(action, Close)]
    assert strict.counters["failed_requests"] == 1


def test_a_pin_that_opens_protocol_2_is_refused():
    for pin in ("TCPCAM/2", "TCP", "T"):
        with raises(ValueError, match="opens protocol 2"):
            ServerRole(pin)
    ServerRole("TCPCAM/3")


def test_requests_beyond_the_budget_are_refused_then_the_client_is_closed():
    server = role()
    pipe = Pipe(server)
    for _ in range(25):
        pipe.request("get")
    assert [result.ok for result in pipe.of(Result)].count(False) == 5
    for _ in range(40):
        if pipe.closed:
            break
        pipe.request("get")
    assert pipe.closed == "close" and pipe.of(Closing)[-1].reason == "too-many-requests"


def test_unknown_requests_are_answered_not_fatal():
    server = role()
    pipe = Pipe(server)
    counter = pipe.request("teleport")
    (result,) = [result for result in pipe.of(Result) if result.id == counter]
    assert not result.ok and "unknown request" in result.error and not pipe.closed


def test_a_legacy_server_is_recognised_and_remembered():
    legacy = ServerRole("1235")
    pipe = Pipe(legacy)
    pipe.pump()
    assert pipe.closed == "close" and isinstance(pipe.client.error, LegacyServer)
    memory = ProtocolMemory(recheck_ms=1000)
    assert memory.protocol("cam", 0) == 2
    memory.found_legacy("cam", 0)
    assert memory.protocol("cam", 999) == 1 and memory.protocol("cam", 1000) == 2
    memory.found_protocol2("cam")
    assert memory.protocol("cam", 1) == 2


def test_the_client_times_out_a_silent_server_as_legacy():
    from tcpcam.core.client_role2 import Client2Role

    client = Client2Role(KEY, Randomness(), hello_timeout_ms=500)
    client.connected(0)
    assert client.tick(499) == []
    client.tick(500)
    assert isinstance(client.error, LegacyServer)


def test_messages_over_the_limit_and_garbage_are_refused_without_buffering():
    server = role()
    pipe = Pipe(server)
    pipe.server(server.receive(pipe.conn, (10 ** 6).to_bytes(4, "big") + b"c", 1))
    assert pipe.closed == "close"
    assert server.counters["rejected"] == 1
