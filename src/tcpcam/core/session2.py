"""The server side of one protocol 2 connection: the handshake, signed requests, and the client's wishes.

States: hello sent (waiting for the client's proof), ready (authenticated,
not streaming), streaming, done, rejected; :data:`TRANSITIONS` holds every
rule. The session checks every message (size, type, signature, counter)
and turns the good ones into events; the server role decides what they
mean for the camera and the other clients.
"""

from tcpcam.core.errors import BadMessage, HandshakeTimeout, LocalProtocolError, RemoteProtocolError, WrongKey
from tcpcam.core.events import Authenticated, Finished, Rejected, Request
from tcpcam.core.framing import FrameDecoder
from tcpcam.core.mac import DIGEST_BYTES, server_proof, session_key, verify
from tcpcam.core.messages import (
    AUTH,
    AUTH_OK,
    CHALLENGE_BYTES,
    CONTROL,
    FROM_CLIENT,
    FROM_SERVER,
    MAX_MESSAGE_BYTES,
    REASON,
    encode,
    encode_json,
    open_signed,
    sign,
)
from tcpcam.core.text import plural

HELLO_SENT = "hello-sent"
READY = "ready"
STREAMING = "streaming"
DONE = "done"
REJECTED = "rejected"

#: Which state may follow which; nothing else is allowed.
TRANSITIONS = {
    HELLO_SENT: (READY, REJECTED, DONE),
    READY: (STREAMING, REJECTED, DONE),
    STREAMING: (READY, REJECTED, DONE),
    DONE: (),
    REJECTED: (),
}


class Session2:
    """One protocol 2 connection on the server side (see the module).

    ``key`` is the device key and ``challenge`` this session's fresh random
    server challenge (the driver's randomness: the core has none).
    """

    def __init__(self, key: bytes, challenge: bytes, max_message_bytes: int = MAX_MESSAGE_BYTES) -> None:
        if len(challenge) != CHALLENGE_BYTES:
            raise ValueError("the server challenge has %s, not %d" % (plural(CHALLENGE_BYTES, "byte"), len(challenge)))
        self._key = key
        self.challenge = challenge
        self._decoder = FrameDecoder(max_message_bytes)
        self._session_key = b""
        self._proof = b""
        self._client_counter = 0
        self._server_counter = 0
        self.state = HELLO_SENT
        #: The N of the current stream request (N <= 0: endless), or None.
        self.frames_requested: int | None = None
        #: Frames still owed to the current stream, or None for an endless one.
        self.frames_remaining: int | None = None
        self.frames_sent = 0
        self.frames_skipped = 0
        #: Why the session was rejected, or None.
        self.reason: str | None = None
        self.error: RemoteProtocolError | None = None
        #: True while the client asked for no stream frames (snapshots still come).
        self.paused = False
        #: The client's own rate: at most ``max_fps`` frames a second, or every ``every``-th frame.
        self.max_fps = 0.0
        self.every = 1
        #: Snapshots asked for and not sent yet.
        self.snapshots = 0

    # The same questions the legacy Session answers, for the server role.

    @property
    def protocol(self) -> int:
        """2."""
        return 2

    @property
    def awaiting_request(self) -> bool:
        """True until the client has proved it holds the key."""
        return self.state == HELLO_SENT

    @property
    def pin_accepted(self) -> bool:
        """True once the client proved it holds the key (the protocol 2 PIN)."""
        return self.state in (READY, STREAMING) or (self.state == DONE and self._session_key != b"")

    @property
    def authenticated(self) -> bool:
        """True while signed messages can be exchanged."""
        return self.state in (READY, STREAMING)

    @property
    def streaming(self) -> bool:
        """True while stream frames are owed (even if paused)."""
        return self.state == STREAMING

    @property
    def wants_idle_timer(self) -> bool:
        """Never: protocol 2 messages are framed, no token waits for quiet."""
        return False

    def receive_data(self, data: bytes) -> list:
        """Take bytes from the client; return a list of events (Authenticated, Request, Rejected)."""
        events: list = []
        if self.state in (DONE, REJECTED):
            return events
        try:
            self._decoder.receive_data(bytes(data))
            while self.state not in (DONE, REJECTED):
                message = self._decoder.next_frame()
                if message is None:
                    break
                events.extend(self._message(message))
        except RemoteProtocolError as error:
            events.extend(self._reject(error))
        return events

    def peer_idle(self) -> list:
        """Nothing waits for quiet in protocol 2."""
        return []

    def handshake_timed_out(self) -> list:
        """The client did not prove it holds the key in time."""
        if self.state == HELLO_SENT:
            return self._reject(HandshakeTimeout("no proof of the key in time"))
        return []

    def connection_lost(self) -> None:
        """The connection closed."""
        if DONE in TRANSITIONS[self.state]:
            self._move(DONE)

    # What the server role decides.

    def start_stream(self, frames: int) -> None:
        """Stream ``frames`` frames from now (N <= 0: without end)."""
        self._require_authenticated("start_stream")
        if self.state != STREAMING:
            self._move(STREAMING)
        self.frames_requested = frames
        self.frames_remaining = frames if frames > 0 else None

    def frame_sent(self) -> list:
        """One stream frame went to the client; may return :class:`Finished`.

        Unlike a legacy stream, a finished protocol 2 stream leaves the
        connection open: the client may ask for more (snapshots, settings,
        another stream).
        """
        if self.state != STREAMING:
            raise LocalProtocolError("frame_sent() called on a session that is %s" % self.state)
        self.frames_sent += 1
        if self.frames_remaining is None:
            return []
        self.frames_remaining -= 1
        if self.frames_remaining > 0:
            return []
        self._move(READY)
        return [Finished(self.frames_sent)]

    def frame_skipped(self) -> None:
        """A frame this client wanted went past it because its connection was busy."""
        self.frames_skipped += 1

    def sign(self, kind: int, value: object) -> bytes:
        """One signed message to the client (its counter is the next one)."""
        self._require_authenticated("sign")
        self._server_counter += 1
        return sign(kind, self._session_key, FROM_SERVER, self._server_counter, value)

    def reason_message(self, reason: str, text: str) -> bytes:
        """Why the server closes: signed once authenticated, plain before."""
        value = {"reason": reason, "text": text}
        if self._session_key:
            self._server_counter += 1
            return sign(REASON, self._session_key, FROM_SERVER, self._server_counter, value)
        return encode_json(REASON, value)

    # The messages.

    def _message(self, message: memoryview) -> list:
        kind = message[0]
        body = message[1:]
        if self.state == HELLO_SENT:
            if kind != AUTH:
                raise BadMessage("expected the client's proof of the key, not a message of type %r" % chr(kind))
            return self._authenticate(body)
        if kind != CONTROL:
            raise BadMessage("a client sends requests only, not a message of type %r" % chr(kind))
        counter, value = open_signed(CONTROL, body, self._session_key, FROM_CLIENT, self._client_counter)
        self._client_counter = counter
        if not isinstance(value, dict) or not isinstance(value.get("op"), str):
            raise BadMessage("a request is a JSON object with an op")
        return [Request(counter, value)]

    def _authenticate(self, body: memoryview) -> list:
        if len(body) != CHALLENGE_BYTES + DIGEST_BYTES:
            raise BadMessage("the proof of the key has %s, not %d" % (plural(len(body), "byte"),
                                                                       CHALLENGE_BYTES + DIGEST_BYTES))
        client_challenge = bytes(body[:CHALLENGE_BYTES])
        if not verify(self._key, b"tcpcam2 client" + self.challenge + client_challenge, body[CHALLENGE_BYTES:]):
            return self._reject(WrongKey("wrong key"))
        self._session_key = session_key(self._key, self.challenge, client_challenge)
        self._proof = server_proof(self._key, self.challenge, client_challenge)
        self._move(READY)
        return [Authenticated()]

    def auth_ok_message(self) -> bytes:
        """The server's own proof of the key, sent once the client is authenticated."""
        self._require_authenticated("auth_ok_message")
        return encode(AUTH_OK, self._proof)

    def _reject(self, error: RemoteProtocolError) -> list:
        self._move(REJECTED)
        self.error = error
        self.reason = str(error)
        return [Rejected(error)]

    def _require_authenticated(self, name: str) -> None:
        if not self.authenticated:
            raise LocalProtocolError("%s() called on a session that is %s" % (name, self.state))

    def _move(self, state: str) -> None:
        if state not in TRANSITIONS[self.state]:
            raise LocalProtocolError("session cannot go from %s to %s" % (self.state, state))
        self.state = state

