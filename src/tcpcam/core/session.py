"""The server side of one connection: request parsing and the frame count.

States: awaiting PIN, awaiting command, streaming, done, rejected. Every
transition is checked against :data:`TRANSITIONS`, the one table of rules.
The session never writes to the peer: the protocol has no replies.
"""

from tcpcam.core.errors import (
    HandshakeTimeout,
    LegacyRefused,
    LocalProtocolError,
    RemoteProtocolError,
    TokenTooLong,
    WrongPin,
)
from tcpcam.core.events import Accepted, Finished, Rejected, Upgrade
from tcpcam.core.limits import MAX_TOKEN_BYTES
from tcpcam.core.request import check_pin, constant_time_equal, find_terminator, parse_command
from tcpcam.core.text import plural

AWAITING_PIN = "awaiting-pin"
AWAITING_COMMAND = "awaiting-command"
STREAMING = "streaming"
DONE = "done"
REJECTED = "rejected"
UPGRADED = "upgraded"

#: Which state may follow which; nothing else is allowed.
TRANSITIONS = {
    AWAITING_PIN: (AWAITING_COMMAND, REJECTED, DONE, UPGRADED),
    AWAITING_COMMAND: (STREAMING, REJECTED, DONE),
    STREAMING: (DONE,),
    DONE: (),
    REJECTED: (),
    UPGRADED: (),
}

_AWAITING = (AWAITING_PIN, AWAITING_COMMAND)


class Session:
    """Sans-IO state machine for one client connection on the server side.

    The I/O layer feeds received bytes to :meth:`receive_data`, tells the
    session when the peer has been quiet (:meth:`peer_idle`) or too slow
    (:meth:`handshake_timed_out`), reports each frame it sent or skipped, and
    acts on the returned events: :class:`~tcpcam.core.events.Accepted` (start
    streaming), :class:`~tcpcam.core.events.Rejected` (log the reason, close) and
    :class:`~tcpcam.core.events.Finished` (N frames sent, close).

    Two rules serve the original client, which sends ``"1235"`` then ``"5"``
    with no terminator: an unterminated token is complete when the peer goes
    quiet, and while the PIN is pending, buffered bytes that begin with the
    PIN and go on past it are taken as the PIN followed by the command.
    """

    def __init__(self, pin: str | bytes, max_token_bytes: int = MAX_TOKEN_BYTES, opening: bytes | None = None,
                 legacy: bool = True) -> None:
        self.max_token_bytes = max_token_bytes
        self._pin = check_pin(pin, max_token_bytes)
        #: The first line that asks for a newer protocol (None: not offered).
        self.opening = opening
        #: False when a legacy request is refused (the server speaks only the newer protocol).
        self.legacy = legacy
        self._partial = bytearray()
        self.state = AWAITING_PIN
        #: The N of the request once accepted (N <= 0: endless).
        self.frames_requested: int | None = None
        #: Frames still owed, or ``None`` for an endless stream.
        self.frames_remaining: int | None = None
        self.frames_sent = 0
        self.frames_skipped = 0
        #: Why the session was rejected, or ``None``.
        self.reason: str | None = None
        #: The :class:`~tcpcam.core.errors.RemoteProtocolError` behind a rejection.
        self.error: RemoteProtocolError | None = None

    @property
    def wants_idle_timer(self) -> bool:
        """True while an unterminated token waits: (re)arm the idle timer."""
        return self.state in _AWAITING and len(self._partial) > 0

    @property
    def awaiting_request(self) -> bool:
        """True until the PIN and command are in (or the session ended)."""
        return self.state in _AWAITING

    @property
    def pin_accepted(self) -> bool:
        """True once the peer sent the right PIN (its command may still be to come)."""
        return self.state in (AWAITING_COMMAND, STREAMING) or (self.state == DONE and self.frames_requested is not None)

    @property
    def streaming(self) -> bool:
        """True while frames should be sent to this session."""
        return self.state == STREAMING

    def receive_data(self, data: bytes) -> list:
        """Take bytes from the peer; return a list of events."""
        events: list = []
        if self.state not in _AWAITING:
            return events
        data = bytes(data)
        position = 0
        while position < len(data) and self.state in _AWAITING:
            if self.state == UPGRADED:
                break
            end = find_terminator(data, position)
            piece_end = len(data) if end < 0 else end
            if len(self._partial) + piece_end - position > self.max_token_bytes:
                return events + self._reject(TokenTooLong(
                    "request token longer than %s: not a tcpcam client?"
                    % plural(self.max_token_bytes, "byte")))
            self._partial.extend(data[position:piece_end])
            if end < 0:
                position = len(data)
                events.extend(self._take_pin_prefix())
            else:
                position = end + 1
                events.extend(self._take_token())
        if self.state == UPGRADED:
            for event in events:
                if isinstance(event, Upgrade):
                    event.rest = data[position:]
        return events

    def peer_idle(self) -> list:
        """The peer has been quiet for the idle time: end any pending token."""
        if self.wants_idle_timer:
            return self._take_token()
        return []

    def handshake_timed_out(self) -> list:
        """The handshake time ran out; rejects a session still in its request."""
        if self.state in _AWAITING:
            return self._reject(HandshakeTimeout("request not finished in time"))
        return []

    def frame_sent(self) -> list:
        """One frame went to this peer; may return :class:`Finished`."""
        self._require_streaming("frame_sent")
        self.frames_sent += 1
        if self.frames_remaining is None:
            return []
        self.frames_remaining -= 1
        if self.frames_remaining > 0:
            return []
        self._move(DONE)
        return [Finished(self.frames_sent)]

    def frame_skipped(self) -> None:
        """A frame went past this peer because its connection was busy."""
        self._require_streaming("frame_skipped")
        self.frames_skipped += 1

    def connection_lost(self) -> None:
        """The connection closed; the session ends unless it already has."""
        if DONE in TRANSITIONS[self.state]:
            self._move(DONE)

    def _take_token(self) -> list:
        token = bytes(self._partial)
        self._partial = bytearray()
        if not token:
            return []
        if self.state == AWAITING_PIN:
            return self._take_pin(token)
        return self._take_command(token)

    def _take_pin_prefix(self) -> list:
        pin_length = len(self._pin)
        if self.opening is not None and self.opening.startswith(bytes(self._partial)):
            return []
        if (
            self.state == AWAITING_PIN
            and len(self._partial) > pin_length
            and constant_time_equal(bytes(self._partial[:pin_length]), self._pin)
        ):
            rest = self._partial[pin_length:]
            self._partial = bytearray()
            self._move(AWAITING_COMMAND)
            self._partial.extend(rest)
        return []

    def _take_pin(self, token: bytes) -> list:
        if self.opening is not None and token == self.opening:
            self._move(UPGRADED)
            return [Upgrade()]
        if not self.legacy:
            return self._reject(LegacyRefused("a legacy request: this server speaks protocol 2 only"))
        if not constant_time_equal(token, self._pin):
            return self._reject(WrongPin("wrong PIN (%s)" % plural(len(token), "byte")))
        self._move(AWAITING_COMMAND)
        return []

    def _take_command(self, token: bytes) -> list:
        # A negotiated extension would be recognised here and named in
        # Accepted.framing; today only the legacy decimal command exists.
        try:
            frames = parse_command(token)
        except RemoteProtocolError as error:
            return self._reject(error)
        self._move(STREAMING)
        self.frames_requested = frames
        self.frames_remaining = frames if frames > 0 else None
        return [Accepted(frames)]

    def _reject(self, error: RemoteProtocolError) -> list:
        self._move(REJECTED)
        self._partial = bytearray()
        self.error = error
        self.reason = str(error)
        return [Rejected(error)]

    def _require_streaming(self, name: str) -> None:
        if self.state != STREAMING:
            raise LocalProtocolError("%s() called on a session that is %s" % (name, self.state))

    def _move(self, state: str) -> None:
        if state not in TRANSITIONS[self.state]:
            raise LocalProtocolError("session cannot go from %s to %s" % (self.state, state))
        self.state = state
