"""The client role of protocol 2: the handshake, signed requests, and what the server sends.

The driver calls :meth:`Client2Role.connected`, then after every chunk
:meth:`Client2Role.receive_data` and :meth:`Client2Role.next_item` until it
returns None. An item is either a :class:`~tcpcam.core.actions.Write` to
send (the proof of the key after the hello) or one of the events below; a
:class:`Frame` holds a view of its payload that is valid until the next
call. Requests are made with :meth:`Client2Role.request`, which returns the
signed Write and the request's id.

If the server closes the opening unanswered, the request ends with
:class:`~tcpcam.core.errors.LegacyServer`: the driver falls back to the
legacy request (:class:`ProtocolMemory` remembers that for the endpoint).
"""

import binascii

from tcpcam.core.actions import Close, Write
from tcpcam.core.errors import (
    BadMessage,
    FrameTimeout,
    LegacyServer,
    LocalProtocolError,
    RemoteProtocolError,
    ServerClosed,
    TooFewFrames,
    TruncatedFrame,
    WrongKey,
)
from tcpcam.core.framing import FrameDecoder
from tcpcam.core.limits import MAX_FRAME_BYTES
from tcpcam.core.mac import client_proof, server_proof, session_key
from tcpcam.core.messages import (
    AUTH,
    AUTH_OK,
    CHALLENGE_BYTES,
    CONTROL,
    FRAME,
    FRAME_BODY_HEAD_BYTES,
    FROM_CLIENT,
    FROM_SERVER,
    HEALTH,
    HELLO,
    MAX_MESSAGE_BYTES,
    REASON,
    RESULT,
    SETTINGS,
    VERSION,
    encode,
    open_signed,
    opening_line,
    parse_json,
    read_frame,
    sign,
)
from tcpcam.core.request import constant_time_equal
from tcpcam.core.text import plural

IDLE = "idle"
OPENING = "opening"
PROVING = "proving"
READY = "ready"
DONE = "done"

TRANSITIONS = {
    IDLE: (OPENING, DONE),
    OPENING: (PROVING, DONE),
    PROVING: (READY, DONE),
    READY: (DONE,),
    DONE: (),
}

#: Time the server has to answer the opening with its hello: the original
#: firmware closes at once, so silence this long also means a legacy server.
HELLO_TIMEOUT_MS = 3000
#: How long a protocol 2 client remembers that an endpoint speaks only the
#: legacy protocol before it tries protocol 2 there again (one failed request
#: on that server per try).
LEGACY_RECHECK_MS = 24 * 3600 * 1000
#: Endpoints remembered.
MEMORY_ENDPOINTS = 256


class Hello:
    """The server speaks protocol 2: ``info`` is its hello (protocol, capabilities, device)."""

    def __init__(self, info: dict) -> None:
        self.info = info

    @property
    def device(self) -> dict:
        """The device facts: name, firmware, sensor, framesizes."""
        device = self.info.get("device")
        return device if isinstance(device, dict) else {}


class Ready:
    """Both sides proved they hold the key: requests may be made."""


class Frame:
    """A frame and its facts; ``payload`` is a view valid until the next call into the role."""

    def __init__(self, payload: memoryview, seq: int, capture_ms: int, wall_ms: int, flags: int,
                 missed: int) -> None:
        self.payload = payload
        self.seq = seq
        self.capture_ms = capture_ms
        self.wall_ms = wall_ms
        self.flags = flags
        self.missed = missed

    @property
    def snapshot(self) -> bool:
        """True when this frame answers a snapshot request."""
        return bool(self.flags & 2)

    @property
    def stream(self) -> bool:
        """True when this frame belongs to the stream."""
        return bool(self.flags & 1)


class Settings:
    """The camera's settings now (after a change, to every client)."""

    def __init__(self, settings: dict) -> None:
        self.settings = settings


class Health:
    """The device's health figures."""

    def __init__(self, facts: dict) -> None:
        self.facts = facts


class Result:
    """The answer to request ``id``: ``ok``, or ``error`` in words."""

    def __init__(self, id: int, ok: bool, error: str | None) -> None:
        self.id = id
        self.ok = ok
        self.error = error


class Closing:
    """The server says why it closes: ``reason`` (a word) and ``text``."""

    def __init__(self, reason: str, text: str) -> None:
        self.reason = reason
        self.text = text


class Client2Role:
    """Sans-IO client of one protocol 2 connection (see the module).

    ``key`` is the device key; ``random(n)`` gives ``n`` random bytes (the
    driver's: the core has none). ``timeout_ms`` (None: no limit) bounds the
    silence between reads once the connection is ready.
    """

    def __init__(self, key: bytes, random: object, max_frame_bytes: int = MAX_FRAME_BYTES,
                 timeout_ms: int | None = None, hello_timeout_ms: int = HELLO_TIMEOUT_MS) -> None:
        if len(key) < 16:
            raise ValueError("a device key has at least 16 bytes")
        if timeout_ms is not None and timeout_ms <= 0:
            raise ValueError("timeout_ms must be None or above 0, not %r" % (timeout_ms,))
        self._key = key
        self._random = random
        self._decoder = FrameDecoder(max_frame_bytes + FRAME_BODY_HEAD_BYTES + 1)
        self.timeout_ms = timeout_ms
        self.hello_timeout_ms = hello_timeout_ms
        self.state = IDLE
        #: None on success once done, else what ended the connection.
        self.error: BaseException | None = None
        self.peer_closed = False
        #: The hello, once it came.
        self.hello: dict | None = None
        #: The camera's settings and health as the server last sent them.
        self.settings: dict = {}
        self.health: dict = {}
        #: Frames taken, their payload bytes, and frames wanted by the last stream request (0: endless).
        self.frames_received = 0
        self.bytes_received = 0
        self.frames_wanted = 0
        self.closing: Closing | None = None
        self._received_any = False
        self._challenge = b""
        self._client_challenge = b""
        self._session_key = b""
        self._client_counter = 0
        self._server_counter = 0
        self._deadline: int | None = None
        self._last_activity = 0
        self._held = False
        self._queue: list = []

    @property
    def done(self) -> bool:
        """True once the outcome is known."""
        return self.state == DONE

    @property
    def ready(self) -> bool:
        """True while requests may be made."""
        return self.state == READY

    def connected(self, now: int) -> list:
        """The connection is up: returns the opening line."""
        if self.state != IDLE:
            raise LocalProtocolError("connected() called on a client that is %s" % self.state)
        self._move(OPENING)
        self._deadline = now + self.hello_timeout_ms
        self._last_activity = now
        return [Write(None, opening_line())]

    def receive_data(self, data: bytes, now: int) -> None:
        """Queue bytes from the server."""
        if self.state == DONE or not len(data):
            return
        self._received_any = True
        self._last_activity = now
        self._decoder.receive_data(data)

    def next_item(self, now: int) -> object:
        """The next Write to send or event (Hello, Ready, Frame, Settings, Health, Result, Closing), or None."""
        if self._queue:
            return self._queue.pop(0)
        if self.state == DONE or self._held:
            return None
        try:
            message = self._decoder.next_frame()
            if message is None:
                if self.peer_closed:
                    self._finish(self._end_of_stream())
                return None
            return self._message(message, now)
        except RemoteProtocolError as error:
            self._finish(error)
            return Close(None, abort=True)

    def request(self, op: str, now: int, **arguments: object) -> tuple:
        """``(id, Write)`` of one signed request, such as ``request("set", now, settings={...})``."""
        if self.state != READY:
            raise LocalProtocolError("request() called on a client that is %s" % self.state)
        body = dict(arguments)
        body["op"] = op
        if op == "stream":
            frames = body.get("frames", 0)
            self.frames_wanted = frames if type(frames) is int and frames > 0 else 0
            self.frames_received = 0
        self._client_counter += 1
        return self._client_counter, Write(None, sign(CONTROL, self._session_key, FROM_CLIENT, self._client_counter,
                                                      body))

    def hold(self, now: int) -> None:
        """The consumer keeps the stream paused from now on (not counted as silence)."""
        self._held = True

    def release(self, now: int) -> None:
        """The consumer is ready for more."""
        self._held = False
        self._last_activity = now

    def connection_lost(self, now: int) -> None:
        """The connection is gone; what was received can still be taken."""
        self.peer_closed = True

    def cancel(self, error: BaseException) -> None:
        """End now with ``error``."""
        if self.state != DONE:
            self._finish(error)

    def next_deadline(self) -> int | None:
        """When :meth:`tick` should be called next, or None."""
        if self.state == DONE or self._held:
            return None
        if self.state in (OPENING, PROVING):
            return self._deadline
        if self.timeout_ms is not None:
            return self._last_activity + self.timeout_ms
        return None

    def tick(self, now: int) -> list:
        """Time-outs: no hello (a legacy server), no proof, or silence."""
        due = self.next_deadline()
        if due is None or due > now:
            return []
        if self.state == OPENING:
            self._finish(LegacyServer())
        elif self.state == PROVING:
            self._finish(WrongKey("the server did not answer the proof of the key in time"))
        else:
            self._finish(FrameTimeout((self.timeout_ms or 0) / 1000, self.frames_received))
        return [Close(None, abort=True)]

    # The messages.

    def _message(self, message: memoryview, now: int) -> object:
        kind = message[0]
        body = message[1:]
        if kind != FRAME and len(message) > MAX_MESSAGE_BYTES:
            raise BadMessage("a message of %s, over the limit of %d"
                             % (plural(len(message), "byte"), MAX_MESSAGE_BYTES))
        if self.state == OPENING:
            if kind == REASON:
                return self._reason(parse_json(bytes(body)))
            if kind != HELLO:
                raise BadMessage("expected the server's hello, not a message of type %r" % chr(kind))
            return self._hello(body, now)
        if self.state == PROVING:
            if kind == REASON:
                return self._reason(parse_json(bytes(body)))
            if kind != AUTH_OK:
                raise BadMessage("expected the server's proof of the key, not a message of type %r" % chr(kind))
            expected = server_proof(self._key, self._challenge, self._client_challenge)
            if not constant_time_equal(bytes(body), expected):
                raise WrongKey("the server does not hold the device key")
            self._move(READY)
            self._deadline = None
            return Ready()
        if kind == FRAME:
            seq, capture_ms, wall_ms, flags, missed, payload = read_frame(body)
            if flags & 1:
                self.frames_received += 1
            self.bytes_received += len(payload)
            frame = Frame(payload, seq, capture_ms, wall_ms, flags, missed)
            if self.frames_wanted and self.frames_received >= self.frames_wanted:
                self.frames_wanted = 0
            return frame
        if kind not in (SETTINGS, HEALTH, RESULT, REASON):
            raise BadMessage("a message of unknown type %r" % chr(kind))
        counter, value = open_signed(kind, body, self._session_key, FROM_SERVER, self._server_counter)
        self._server_counter = counter
        if not isinstance(value, dict):
            raise BadMessage("a message body that is not a JSON object")
        if kind == SETTINGS:
            self.settings = value
            return Settings(value)
        if kind == HEALTH:
            self.health = value
            return Health(value)
        if kind == RESULT:
            return Result(int(value.get("id", 0)), bool(value.get("ok")), value.get("error"))
        return self._reason(value)

    def _hello(self, body: memoryview, now: int) -> object:
        info = parse_json(bytes(body))
        if not isinstance(info, dict) or info.get("protocol") != VERSION:
            raise BadMessage("a hello that is not protocol %d" % VERSION)
        try:
            self._challenge = binascii.unhexlify(str(info.get("challenge", "")))
        except (ValueError, TypeError):
            raise BadMessage("a hello without a proper challenge") from None
        if len(self._challenge) != CHALLENGE_BYTES:
            raise BadMessage("a hello whose challenge is not %s" % plural(CHALLENGE_BYTES, "byte"))
        self.hello = info
        self._client_challenge = self._random(CHALLENGE_BYTES)  # type: ignore[operator]
        self._session_key = session_key(self._key, self._challenge, self._client_challenge)
        self._move(PROVING)
        self._queue.append(Hello(info))
        return Write(None, encode(AUTH, self._client_challenge
                                  + client_proof(self._key, self._challenge, self._client_challenge)))

    def _reason(self, value: object) -> Closing:
        if not isinstance(value, dict):
            raise BadMessage("a reason that is not a JSON object")
        self.closing = Closing(str(value.get("reason", "")), str(value.get("text", "")))
        return self.closing

    def _end_of_stream(self) -> BaseException | None:
        if self.state == OPENING and not self._received_any:
            return LegacyServer()
        if self._decoder.in_frame:
            declared = self._decoder.declared_length
            return TruncatedFrame(self.frames_received, self._decoder.payload_received, declared)
        closing = self.closing
        if closing is not None and closing.reason != "finished":
            return ServerClosed(closing.reason, closing.text)
        if self.frames_wanted and self.frames_received < self.frames_wanted:
            return TooFewFrames(self.frames_received, self.frames_wanted)
        if self.state != READY:
            return ServerClosed("closed", "the connection closed during the handshake")
        return None

    def _finish(self, error: BaseException | None) -> None:
        self.error = error
        self.state = DONE

    def _move(self, state: str) -> None:
        if state not in TRANSITIONS[self.state]:
            raise LocalProtocolError("client cannot go from %s to %s" % (self.state, state))
        self.state = state


class ProtocolMemory:
    """Which protocol to open an endpoint with: 2, unless it answered as a legacy server lately.

    A legacy server costs one failed request per try (it takes the opening
    for a wrong PIN), so an endpoint found legacy is asked with the legacy
    request for ``recheck_ms``, then tried with protocol 2 once more. At
    most ``max_endpoints`` are remembered (the oldest go first).
    """

    def __init__(self, recheck_ms: int = LEGACY_RECHECK_MS, max_endpoints: int = MEMORY_ENDPOINTS) -> None:
        self.recheck_ms = recheck_ms
        self.max_endpoints = max_endpoints
        self._legacy: dict = {}

    def protocol(self, endpoint: str, now: int) -> int:
        """2 or 1 for ``endpoint`` at ``now``."""
        since = self._legacy.get(endpoint)
        if since is None or now - since >= self.recheck_ms:
            return 2
        return 1

    def found_legacy(self, endpoint: str, now: int) -> None:
        """``endpoint`` closed the protocol 2 opening unanswered."""
        if endpoint not in self._legacy and len(self._legacy) >= self.max_endpoints:
            oldest = None
            for known, since in self._legacy.items():
                if oldest is None or since < self._legacy[oldest]:
                    oldest = known
            del self._legacy[oldest]
        self._legacy[endpoint] = now

    def found_protocol2(self, endpoint: str) -> None:
        """``endpoint`` speaks protocol 2."""
        self._legacy.pop(endpoint, None)
