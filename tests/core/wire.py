"""A ServerRole and a Client2Role joined in memory, for the core tests (pytest and MicroPython)."""

from tcpcam.core.actions import ApplySettings, AskHealth, Capture, Close, UpdateStep, Write
from tcpcam.core.client_role2 import Client2Role, Frame

KEY = bytes(range(1, 21))


class Randomness:
    """Counting bytes instead of random ones, so every run is the same."""

    def __init__(self, start=0):
        self.next = start

    def __call__(self, count):
        out = bytes((self.next + index) & 255 for index in range(count))
        self.next += count
        return out


class Conn:
    def __init__(self, name):
        self.name = name


class Pipe:
    """One client connection to ``role``: what each side writes reaches the other.

    Frames are copied as they arrive (their views are valid only until the
    next call). With ``flushing`` false the client reads nothing: the
    server's writes never count as written.
    """

    def __init__(self, role, key=KEY, address="10.0.0.1", name="client", now=0):
        self.role = role
        self.conn = Conn(name)
        self.client = Client2Role(key, Randomness(100))
        self.now = now
        self.events = []
        self.frames = []
        self.closed = None
        self.applies = []
        self.captures = []
        self.health_asked = 0
        #: The update steps the role asked its driver for.
        self.steps = []
        self.flushing = True
        #: Every byte the server sent this client, in order.
        self.transcript = []
        if not hasattr(role, "pipes"):
            role.pipes = {}
        role.pipes[id(self.conn)] = self
        self.server(role.connect(self.conn, address, now, name))
        if self.closed is None:
            self.client_writes(self.client.connected(now))
            self.pump()

    def server(self, actions):
        """Carry out the role's actions: each Write and Close reaches the pipe of its connection."""
        for action in actions:
            pipe = self.role.pipes.get(id(getattr(action, "conn", None)))
            if pipe is not None and pipe is not self:
                pipe.server([action])
                pipe.pump()
            elif isinstance(action, Write) and action.conn is self.conn:
                data = b"".join(bytes(part) for part in action.parts)
                self.transcript.append(data)
                self.client.receive_data(data, self.now)
                if self.flushing:
                    self.server(self.role.written(self.conn, self.now))
            elif isinstance(action, Close) and action.conn is self.conn:
                self.closed = "abort" if action.abort else "close"
                self.client.connection_lost(self.now)
            elif isinstance(action, ApplySettings):
                self.applies.append(action)
            elif isinstance(action, Capture):
                self.captures.append(action.ticket)
            elif isinstance(action, AskHealth):
                self.health_asked += 1
            elif isinstance(action, UpdateStep):
                self.steps.append(action)

    def client_writes(self, actions):
        for action in actions:
            if isinstance(action, Write):
                self.server(self.role.receive(self.conn, action.head, self.now))

    def pump(self):
        """Let the client take everything that arrived."""
        for _ in range(1000):
            item = self.client.next_item(self.now)
            if item is None:
                return
            if isinstance(item, Write):
                self.client_writes([item])
            elif isinstance(item, Frame):
                self.frames.append((bytes(item.payload), item.seq, item.capture_ms, item.wall_ms, item.flags,
                                    item.missed))
            else:
                self.events.append(item)

    def request(self, op, **arguments):
        counter, write = self.client.request(op, self.now, **arguments)
        self.client_writes([write])
        self.pump()
        return counter

    def tick(self, now, frame=b"\xff\xd8jpeg\xff\xd9"):
        """Move time to ``now``, tick the role, and answer any capture it asks for."""
        self.now = now
        self.server(self.role.tick(now))
        while self.captures:
            ticket = self.captures.pop(0)
            self.server(self.role.captured(ticket, frame, now, wall_ms=1700000000000 + now))
        self.pump()

    def of(self, kind):
        return [event for event in self.events if isinstance(event, kind)]
