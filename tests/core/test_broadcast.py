"""Fan-out of frames to sessions, newest connection first (pytest and MicroPython)."""

from checks import raises

from tcpcam.broadcast import DEFAULT_MAX_CLIENTS, Broadcast
from tcpcam.errors import LocalProtocolError
from tcpcam.session import DONE, Session


def streaming(frames):
    session = Session("1235")
    session.receive_data(b"1235\n%d\n" % frames)
    return session


class Wire:
    """Records what the broadcast sends, and which handles are busy."""

    def __init__(self):
        self.sent = []
        self.busy = set()

    def can_take(self, handle):
        return handle not in self.busy

    def send(self, handle, frame):
        self.sent.append((handle, frame))

    def publish(self, broadcast, frame):
        return broadcast.publish(frame, self.can_take, self.send)


def test_newest_connection_is_served_first():
    broadcast, wire = Broadcast(), Wire()
    for name in ("a", "b", "c"):
        assert broadcast.add(name, streaming(0))
    wire.publish(broadcast, b"f1")
    assert wire.sent == [("c", b"f1"), ("b", b"f1"), ("a", b"f1")]
    assert broadcast.handles() == ["c", "b", "a"]


def test_order_is_by_connection_not_by_request():
    broadcast, wire = Broadcast(), Wire()
    early = Session("1235")
    broadcast.add("early", early)
    broadcast.add("late", streaming(0))
    early.receive_data(b"1235\n0\n")
    wire.publish(broadcast, b"f")
    assert [handle for handle, _ in wire.sent] == ["late", "early"]


def test_only_streaming_sessions_get_frames_and_make_it_active():
    broadcast, wire = Broadcast(), Wire()
    waiting = Session("1235")
    broadcast.add("waiting", waiting)
    assert not broadcast.active
    wire.publish(broadcast, b"f")
    assert wire.sent == []
    waiting.receive_data(b"1235\n0\n")
    assert broadcast.active
    wire.publish(broadcast, b"f")
    assert wire.sent == [("waiting", b"f")]


def test_busy_connection_skips_and_skips_do_not_count():
    broadcast, wire = Broadcast(), Wire()
    slow, fast = streaming(2), streaming(2)
    broadcast.add("slow", slow)
    broadcast.add("fast", fast)
    wire.busy.add("slow")
    assert wire.publish(broadcast, b"1") == []
    assert wire.publish(broadcast, b"2") == ["fast"]
    assert slow.frames_skipped == 2 and slow.frames_remaining == 2
    wire.busy.clear()
    assert wire.publish(broadcast, b"3") == []
    assert wire.publish(broadcast, b"4") == ["slow"]
    assert [frame for handle, frame in wire.sent if handle == "slow"] == [b"3", b"4"]
    assert slow.state == DONE and len(broadcast) == 0 and not broadcast.active


def test_finished_handles_are_removed():
    broadcast, wire = Broadcast(), Wire()
    broadcast.add("one", streaming(1))
    broadcast.add("many", streaming(0))
    assert wire.publish(broadcast, b"f") == ["one"]
    assert broadcast.handles() == ["many"]


def test_max_clients():
    assert DEFAULT_MAX_CLIENTS == 16
    broadcast = Broadcast(max_clients=2)
    assert broadcast.add("a", Session("1"))
    assert broadcast.add("b", Session("1"))
    assert broadcast.full
    assert not broadcast.add("c", Session("1"))
    assert broadcast.handles() == ["b", "a"]
    broadcast.remove("a")
    assert broadcast.add("c", Session("1"))
    broadcast.remove("nobody")
    with raises(LocalProtocolError):
        Broadcast(max_clients=0)


def test_adding_a_handle_twice_is_misuse():
    broadcast = Broadcast()
    broadcast.add("a", Session("1"))
    with raises(LocalProtocolError):
        broadcast.add("a", Session("1"))


def test_a_frame_is_wanted_only_when_a_streaming_connection_can_take_it():
    broadcast, wire = Broadcast(), Wire()
    assert not broadcast.wants_frame(wire.can_take)
    waiting = Session("1235")
    broadcast.add("waiting", waiting)
    assert not broadcast.wants_frame(wire.can_take)
    broadcast.add("busy", streaming(0))
    wire.busy.add("busy")
    assert broadcast.active and not broadcast.wants_frame(wire.can_take)
    waiting.receive_data(b"1235\n0\n")
    assert broadcast.wants_frame(wire.can_take)
    wire.busy.add("waiting")
    assert not broadcast.wants_frame(wire.can_take)
