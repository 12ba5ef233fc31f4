"""The server role: every rule of serving one frame source to many clients, with no I/O.

One :class:`ServerRole` stands for one listening server. Its driver (the
Twisted reference server, the firmware's asyncio tasks) owns the sockets,
the frame source and one timer, and calls in with ``now`` (integer
milliseconds from a monotonic clock) whenever something happens:

================================  ==========================================
the driver calls                  when
================================  ==========================================
``connect(conn, address, now)``   a connection was accepted
``receive(conn, data, now)``      bytes arrived
``written(conn, now)``            everything written to ``conn`` left
``disconnected(conn, now)``       the connection is gone
``captured(ticket, frame, now)``  the source answered a :class:`Capture`
``capture_failed(...)``           the source failed one
``tick(now)``                     its timer fired (set it to :meth:`next_deadline`)
``stop(now)``                     the server stops
================================  ==========================================

Each call returns the actions to carry out, in order (see
:mod:`tcpcam.core.actions`). The rules, in one place:

- **Admission.** An address refused by the throttle is closed at once with
  nothing sent. Connections that have not given the right PIN yet are
  *pending*: one address may hold at most ``pending_per_address`` of them,
  and one more from it takes the place of its oldest; when ``max_clients``
  are taken, a new connection takes the place of the oldest pending one of
  any address, and is refused only when every place streams. So connections
  that never send a PIN cannot lock anyone out.
- **The request** of each connection is a :class:`~tcpcam.core.session.Session`.
  Its first byte must come within ``first_byte_timeout_ms`` and the whole
  request within ``handshake_timeout_ms`` of the connection; an unterminated
  token ends after ``idle_ms`` of quiet. Every request that sent anything and
  ended before the right PIN (a wrong PIN, a token too long, too slow, the
  peer leaving, its place taken) is a failed request and counts against its
  address (:class:`~tcpcam.core.throttle.PinThrottle`); the right PIN clears
  the count. A silent connection is no guess: it only uses its address's
  pending places.
- **Logs.** Repeated refusals are summarised per address and reason
  (:class:`~tcpcam.core.logsummary.LogSummary`).
- **Protocol 2** (when a device ``key`` is given): a connection whose first
  line is ``TCPCAM/2`` gets a hello with a fresh challenge
  (:class:`~tcpcam.core.session2.Session2`); once it has proved it holds the
  key it sends signed requests: stream N frames, pause and resume, its own
  rate (frames a second, or every k-th frame), snapshots (also while
  paused), read and change the camera settings (the driver applies them:
  :class:`~tcpcam.core.actions.ApplySettings`), health. Its frames carry
  the sequence number, the capture time, the wall time and the frames it
  missed since its last one. Before the server closes it, it says why; a
  refused protocol 2 connection is kept ``REFUSAL_LINGER_MS`` to be told.
  ``legacy=False`` refuses legacy requests.
- **Updates** (protocol 2): one new application bundle at a time, by the
  rules of :mod:`tcpcam.core.update`; every step (make room, store pieces,
  verify and switch, forget) is an :class:`~tcpcam.core.actions.UpdateStep`
  for the driver, answered with :meth:`ServerRole.update_done`
  (:class:`~tcpcam.core.update.UpdateDesk`, imported at the first update).
  A bad chunk, a failed step, the client leaving or ``update_idle_ms``
  without a request abandon it; a commit under way is never undone.
- **Frames.** The source is asked for a frame only while a streaming
  connection can take one, paced and backed off by
  :class:`~tcpcam.core.pacing.CapturePacer`. Each frame is offered to every
  streaming connection, newest first; a connection still busy with an
  earlier frame skips it (a skip does not count towards its N). A connection
  must take a frame within ``send_timeout_ms`` of the offer, or it is
  dropped. After its N-th frame it is closed once flushed, and aborted if
  that takes longer than ``close_timeout_ms``.
"""

import binascii

from tcpcam.core.actions import ERROR, INFO, WARN, ApplySettings, AskHealth, CancelCapture, Capture, Close, Log, Write
from tcpcam.core.camera_settings import FRAMESIZE_NAMES, SETTINGS
from tcpcam.core.errors import BadMessage, HandshakeTimeout, WrongKey
from tcpcam.core.events import Accepted, Authenticated, Finished, Rejected, Request, Upgrade
from tcpcam.core.framing import encode_header
from tcpcam.core.limits import (
    CAPTURE_RETRY_MAX_MS,
    CAPTURE_RETRY_MS,
    CLOSE_TIMEOUT_MS,
    FIRST_BYTE_TIMEOUT_MS,
    HANDSHAKE_TIMEOUT_MS,
    HEALTH_INTERVAL_MS,
    IDLE_MS,
    MAX_CLIENT_FPS,
    MAX_CLIENTS,
    MAX_REFUSALS_LINGERING,
    MAX_SNAPSHOTS,
    MAX_TOKEN_BYTES,
    PENDING_PER_ADDRESS,
    PIN_BLOCK_MS,
    PIN_FAILURES,
    PIN_WINDOW_MS,
    REFUSAL_LINGER_MS,
    REFUSED_REQUESTS,
    REQUEST_BURST,
    REQUEST_RATE,
    SEND_TIMEOUT_MS,
    SOURCE_TIMEOUT_MS,
    UPDATE_IDLE_MS,
)
from tcpcam.core.logsummary import LogSummary
from tcpcam.core.messages import (
    CHALLENGE_BYTES,
    HEALTH,
    HELLO,
    OPENING,
    REASON,
    RESULT,
    SNAPSHOT,
    STREAM,
    VERSION,
    encode_json,
    fill_tail,
    frame_head,
    opening_line,
)
from tcpcam.core.messages import (
    SETTINGS as SETTINGS_MESSAGE,
)
from tcpcam.core.pacing import CapturePacer
from tcpcam.core.request import COMMAND_MAX, COMMAND_MIN, check_pin
from tcpcam.core.session import Session
from tcpcam.core.session2 import Session2
from tcpcam.core.text import plural
from tcpcam.core.throttle import PinThrottle

#: What a protocol 2 hello says the server can do.
CAPABILITIES = ("frames", "settings", "snapshot", "pause", "rate", "health", "update")
#: Every request a protocol 2 client may make.
OPS = ("stream", "pause", "resume", "rate", "snapshot", "get", "set", "health", "update-begin", "update-chunk",
       "update-commit", "update-abort")
#: Why the server closes a protocol 2 connection, by the error of its rejection.
_REASONS: dict = {WrongKey: "wrong-key", HandshakeTimeout: "too-slow", BadMessage: "bad-message"}

#: Names of the counters in :attr:`ServerRole.counters`.
COUNTERS = (
    "connections", "refused_full", "refused_blocked", "evicted", "silent", "rejected", "failed_requests",
    "accepted", "finished", "left", "dropped_stalled", "aborted_closing", "frames_captured", "capture_failures",
    "frames_offered", "frames_skipped", "bytes_offered", "log_lines_summarised", "authenticated", "requests",
    "requests_refused", "settings_changes", "snapshots", "updates_begun", "updates_stored", "updates_abandoned",
)


class _Link:
    """What the server knows of one connection."""

    def __init__(self, conn: object, address: str, peer: str, session: Session, now: int, deadline: int) -> None:
        self.conn = conn
        self.address = address
        self.peer = peer
        self.session: Session | Session2 = session
        self.connected_at = now
        #: Bytes received from the peer.
        self.received = 0
        #: When the first byte or the whole request must have come (None once it has).
        self.request_deadline: int | None = deadline
        #: When an unterminated token counts as complete (None: no token waits).
        self.idle_deadline: int | None = None
        #: When the frame offered last must have been taken (None: not busy).
        self.send_deadline: int | None = None
        #: When a closing connection is aborted (None: not closing).
        self.close_deadline: int | None = None
        self.closing = False
        #: Why a refused connection lingers (to tell a protocol 2 client), or None.
        self.refusal: str | None = None
        self.refusal_text = ""
        self.refusal_seen = bytearray()
        # Protocol 2: this client's part of each frame header, frames it missed,
        # when its own rate lets the next frame go, frames seen for every-k-th,
        # and its request budget (milli-requests).
        self.tail = bytearray(5)
        self.missed = 0
        self.next_frame_at = 0
        self.frames_seen = 0
        self.budget = REQUEST_BURST * 1000
        self.budget_at = now
        self.refused_in_a_row = 0

    @property
    def protocol(self) -> int:
        """1 (legacy) or 2."""
        return 2 if isinstance(self.session, Session2) else 1

    @property
    def pending(self) -> bool:
        """True while this connection holds a place without having given the right PIN."""
        return (not self.closing and self.refusal is None and not self.session.pin_accepted
                and self.session.awaiting_request)

    @property
    def places(self) -> bool:
        """True when this connection counts towards ``max_clients``."""
        return not self.closing and self.refusal is None

    def wants_frame_at(self) -> int | None:
        """When this connection can take a frame (0: now), or None if it wants none."""
        if self.send_deadline is not None or not self.places:
            return None
        session = self.session
        if isinstance(session, Session2):
            if not session.authenticated:
                return None
            if session.snapshots:
                return 0
            if not session.streaming or session.paused:
                return None
            return self.next_frame_at
        return 0 if session.streaming else None


def _earliest(current: int | None, candidate: int | None) -> int | None:
    if candidate is None:
        return current
    if current is None or candidate < current:
        return candidate
    return current


class ServerRole:
    """Sans-IO server for one frame source and many connections (see the module)."""

    def __init__(self, pin: str | bytes, max_clients: int = MAX_CLIENTS, interval_ms: int = 0,
                 handshake_timeout_ms: int = HANDSHAKE_TIMEOUT_MS, idle_ms: int = IDLE_MS,
                 send_timeout_ms: int = SEND_TIMEOUT_MS, close_timeout_ms: int = CLOSE_TIMEOUT_MS,
                 source_timeout_ms: int | None = SOURCE_TIMEOUT_MS, capture_retry_ms: int = CAPTURE_RETRY_MS,
                 capture_retry_max_ms: int = CAPTURE_RETRY_MAX_MS, pin_failures: int = PIN_FAILURES,
                 pin_window_ms: int = PIN_WINDOW_MS, pin_block_ms: int = PIN_BLOCK_MS,
                 max_token_bytes: int = MAX_TOKEN_BYTES, pending_per_address: int = PENDING_PER_ADDRESS,
                 first_byte_timeout_ms: int = FIRST_BYTE_TIMEOUT_MS, throttle: PinThrottle | None = None,
                 log_summary: LogSummary | None = None, key: bytes | None = None, legacy: bool = True,
                 random: object = None, device: dict | None = None, settings: dict | None = None,
                 health_interval_ms: int = HEALTH_INTERVAL_MS) -> None:
        self._pin = check_pin(pin, max_token_bytes)
        if max_clients < 1:
            raise ValueError("max_clients must be at least 1, not %r" % (max_clients,))
        for name, value in (("handshake_timeout_ms", handshake_timeout_ms), ("idle_ms", idle_ms),
                            ("send_timeout_ms", send_timeout_ms), ("close_timeout_ms", close_timeout_ms),
                            ("pending_per_address", pending_per_address),
                            ("first_byte_timeout_ms", first_byte_timeout_ms)):
            if value <= 0:
                raise ValueError("%s must be above 0, not %r" % (name, value))
        if pin_failures < 0:
            raise ValueError("pin_failures must be 0 (no throttling) or more, not %r" % (pin_failures,))
        if key is not None and (len(key) < 16 or random is None):
            raise ValueError("protocol 2 needs a key of at least 16 bytes and a source of random bytes")
        if key is None and not legacy:
            raise ValueError("without a key only the legacy protocol is left: it cannot be refused")
        self.max_clients = max_clients
        self.handshake_timeout_ms = handshake_timeout_ms
        self.idle_ms = idle_ms
        self.send_timeout_ms = send_timeout_ms
        self.close_timeout_ms = close_timeout_ms
        self.max_token_bytes = max_token_bytes
        self.pending_per_address = pending_per_address
        self.first_byte_timeout_ms = min(first_byte_timeout_ms, handshake_timeout_ms)
        self._pacer_settings = (interval_ms, source_timeout_ms, capture_retry_ms, capture_retry_max_ms)
        self.pacer = CapturePacer(*self._pacer_settings)
        #: Failed requests per address, or None when throttling is off.
        self.throttle = throttle
        if throttle is None and pin_failures:
            self.throttle = PinThrottle(pin_failures, pin_window_ms, pin_block_ms)
        #: Repeated refusals, logged once per address and reason per interval.
        self.log_summary = log_summary or LogSummary()
        #: Event counts for a status page; the keys are :data:`COUNTERS`.
        self.counters = {name: 0 for name in COUNTERS}
        self._links: list = []
        self._by_conn: dict = {}
        self._due: int | None = None
        #: The device key (None: protocol 2 is off), and whether legacy requests are served.
        self.key = key
        self.legacy = legacy
        self._random = random
        #: What a protocol 2 hello tells about the device.
        self.device = dict(device or {"name": "tcpcam", "sensor": "unknown"})
        self.device.setdefault("framesizes", list(FRAMESIZE_NAMES))
        #: The camera's settings as the driver last applied them.
        self.settings = dict(settings) if settings is not None else SETTINGS.defaults()
        #: The device's last health figures (protocol 2 clients get them every ``health_interval_ms``).
        self.health: dict = {}
        self.health_interval_ms = health_interval_ms
        self._health_at: int | None = None
        self._seq = 0
        self._settings_ticket = 0
        self._settings_request: tuple | None = None
        #: The updates' part of the role (an UpdateDesk, once a client asked), and how long an update
        #: may wait for its next request.
        self._updates: object = None
        self.update_idle_ms = UPDATE_IDLE_MS

    # What the driver asks.

    def __len__(self) -> int:
        """Connections that hold a place (not those being closed)."""
        return self.clients

    @property
    def clients(self) -> int:
        """Connections that hold a place: streaming or still sending their request."""
        count = 0
        for link in self._links:
            if link.places:
                count += 1
        return count

    @property
    def streaming(self) -> int:
        """Connections receiving frames now."""
        count = 0
        for link in self._links:
            if link.session.streaming and not link.closing:
                count += 1
        return count

    @property
    def full(self) -> bool:
        """True when one more connection would exceed ``max_clients``."""
        return self.clients >= self.max_clients

    def connections(self) -> list:
        """The driver handles of every connection the role knows, newest first."""
        return [link.conn for link in reversed(self._links)]

    def session(self, conn: object) -> Session | None:
        """The request state of ``conn``, or None for a connection the role does not know."""
        link = self._by_conn.get(id(conn))
        return None if link is None else link.session

    def next_deadline(self) -> int | None:
        """When :meth:`tick` should be called next (it may be early, never late), or None."""
        return self._due

    def status(self) -> dict:
        """Counters and current figures, JSON-ready."""
        status = dict(self.counters)
        status["clients"] = self.clients
        status["streaming"] = self.streaming
        status["failures_in_a_row"] = self.pacer.failures_in_a_row
        return status

    # What happens to connections.

    def connect(self, conn: object, address: str, now: int, peer: str | None = None) -> list:
        """A connection from ``address`` (a host) was accepted; ``peer`` names it in logs."""
        peer = peer or address
        self.counters["connections"] += 1
        if id(conn) in self._by_conn:
            raise ValueError("connection %r was added twice" % (conn,))
        throttle = self.throttle
        if throttle is not None:
            wait = throttle.blocked_for(address, now)
            if wait > 0:
                self.counters["refused_blocked"] += 1
                why = throttle.why(address, now)
                text = "refused %s: %s; refused for %d s more" % (peer, why, (wait + 999) // 1000)
                return self._summarised(address, "blocked", Log(WARN, text, "refused"), now) + self._refuse(
                    conn, address, peer, now, "throttled", "%s; try again in %d s" % (why, (wait + 999) // 1000))
        actions: list = []
        pending = [link for link in self._links if link.pending and link.address == address]
        if len(pending) >= self.pending_per_address:
            actions += self._evict(pending[0], now, "%s from %s wait for their PIN"
                                   % (plural(len(pending), "connection"), address))
        elif self.full:
            waiting = [link for link in self._links if link.pending]
            if not waiting:
                self.counters["refused_full"] += 1
                reason = "server full (%s)" % plural(self.max_clients, "client")
                text = "refused %s: %s" % (peer, reason)
                return self._summarised(address, "full", Log(WARN, text, "refused"), now) + self._refuse(
                    conn, address, peer, now, "full", reason)
            actions += self._evict(waiting[0], now, "the server is full and %s came" % peer)
        session = Session(self._pin, self.max_token_bytes, OPENING if self.key is not None else None, self.legacy)
        link = _Link(conn, address, peer, session, now, now + self.first_byte_timeout_ms)
        self._links.append(link)
        self._by_conn[id(conn)] = link
        self._want(link.request_deadline)
        return actions

    def receive(self, conn: object, data: bytes, now: int) -> list:
        """Bytes from ``conn``: its request; bytes after the request are ignored."""
        link = self._by_conn.get(id(conn))
        if link is None or link.closing or not len(data):
            return []
        if link.refusal is not None:
            return self._refusal_told(link, data, now)
        if link.protocol == 2 and not link.session.awaiting_request:
            return self._on_session(link, link.session.receive_data(data), now)
        if not link.session.awaiting_request:
            return []
        if not link.received:
            link.request_deadline = link.connected_at + self.handshake_timeout_ms
            self._want(link.request_deadline)
        link.received += len(data)
        actions = self._on_session(link, link.session.receive_data(data), now)
        self._arm_idle(link, now)
        return actions

    def written(self, conn: object, now: int) -> list:
        """Everything written to ``conn`` so far has left: it can take the next frame."""
        link = self._by_conn.get(id(conn))
        if link is None or link.send_deadline is None:
            return []
        link.send_deadline = None
        self._want(self._capture_at())
        return []

    def disconnected(self, conn: object, now: int) -> list:
        """``conn`` is gone (closed by either side); forget it."""
        link = self._by_conn.pop(id(conn), None)
        if link is None:
            return []
        self._links.remove(link)
        actions: list = []
        session = link.session
        if link.pending and link.received:
            self.counters["rejected"] += 1
            blocked = self._count_failure(link.address, now)
            line = Log(WARN, "rejected %s: it left before its request was complete%s" % (link.peer, blocked),
                       "rejected")
            actions += [line] if blocked else self._summarised(link.address, "left early", line, now)
        if session.streaming and not link.closing:
            self.counters["left"] += 1
            actions.append(Log(INFO, "%s left after %s" % (link.peer, plural(session.frames_sent, "frame")), "client"))
        session.connection_lost()
        if self._updates is not None:
            actions += self._updates.disconnected(link)  # type: ignore[attr-defined]
        if self._settings_request is not None and self._settings_request[1] is link:
            self._settings_request = (self._settings_request[0], None, 0)
        return actions

    # What happens to the source.

    def captured(self, ticket: int, frame: bytes, now: int, wall_ms: int = 0) -> list:
        """The source answered request ``ticket`` with ``frame`` (bytes-like): offer it to everyone.

        ``wall_ms`` is the wall time of the capture (Unix milliseconds), or 0
        when the device's clock is not set. A stale answer (after a time-out)
        returns nothing: drop it.
        """
        ended = self.pacer.succeeded(ticket)
        if ended < 0:
            return []
        self.counters["frames_captured"] += 1
        actions: list = []
        if ended:
            actions.append(Log(INFO, "frame source recovered after %s" % plural(ended, "failed frame"), "source"))
        self._seq = (self._seq + 1) & 0xFFFFFFFF
        header = encode_header(len(frame))
        head2 = b""
        deadline = now + self.send_timeout_ms
        for link in reversed(self._links):
            session = link.session
            if not link.places:
                continue
            if isinstance(session, Session2):
                if not head2:
                    head2 = frame_head(self._seq, now, wall_ms, len(frame))
                actions += self._offer2(link, session, head2, frame, now, deadline)
                continue
            if not session.streaming:
                continue
            if link.send_deadline is not None:
                session.frame_skipped()
                self.counters["frames_skipped"] += 1
                continue
            self._offered(link, frame, deadline)
            actions.append(Write(link.conn, header, frame))
            for event in session.frame_sent():
                if isinstance(event, Finished):
                    actions += self._finished(link, event, now)
        self._want_capture()
        return actions

    def _offered(self, link: _Link, frame: bytes, deadline: int) -> None:
        link.send_deadline = deadline
        self.counters["frames_offered"] += 1
        self.counters["bytes_offered"] += len(frame)
        self._want(deadline)

    def _finished(self, link: _Link, event: Finished, now: int) -> list:
        said = self._stream_finished(link, event)
        return [said] + self._close(link, now, reason="finished", why=said.text)

    def _stream_finished(self, link: _Link, event: Finished) -> Log:
        self.counters["finished"] += 1
        return Log(INFO, "%s got its %s" % (link.peer, plural(event.frames_sent, "frame")), "client")

    def _offer2(self, link: _Link, session: Session2, head: bytes, frame: bytes, now: int, deadline: int) -> list:
        """Offer one frame to a protocol 2 client: a snapshot it asked for, a stream frame its rate allows."""
        if not session.authenticated:
            return []
        stream = session.streaming and not session.paused
        if stream:
            link.frames_seen += 1
            stream = link.frames_seen % session.every == 0 and now >= link.next_frame_at
        snapshot = session.snapshots > 0
        if not (stream or snapshot):
            return []
        if link.send_deadline is not None:
            if stream:
                session.frame_skipped()
                link.missed += 1
                self.counters["frames_skipped"] += 1
            return []
        self._offered(link, frame, deadline)
        actions: list = [Write(link.conn, head, fill_tail(link.tail, (STREAM if stream else 0)
                                                          | (SNAPSHOT if snapshot else 0), link.missed), frame)]
        link.missed = 0
        if snapshot:
            session.snapshots -= 1
            self.counters["snapshots"] += 1
        if stream:
            if session.max_fps:
                link.next_frame_at = now + int(1000 / session.max_fps)
            for event in session.frame_sent():
                if isinstance(event, Finished):
                    actions.append(self._stream_finished(link, event))
        return actions

    def capture_failed(self, ticket: int, reason: str, now: int, unexpected: bool = False) -> list:
        """Request ``ticket`` failed with ``reason``; ``unexpected`` for a bug rather than a missing frame."""
        return self._capture_failed(ticket, reason, now, unexpected)

    # Time.

    def tick(self, now: int) -> list:
        """The driver's timer fired: act on every deadline that has passed."""
        actions: list = []
        due: int | None = None
        for link in self._links[:]:
            if link.refusal is not None and not link.closing:
                if link.request_deadline is not None and link.request_deadline <= now:
                    actions += self._close(link, now, abort=True)
                else:
                    due = _earliest(due, link.request_deadline)
                continue
            if link.close_deadline is not None:
                if link.close_deadline <= now:
                    link.close_deadline = None
                    self.counters["aborted_closing"] += 1
                    actions.append(Close(link.conn, abort=True))
                else:
                    due = _earliest(due, link.close_deadline)
                continue
            if link.idle_deadline is not None and link.idle_deadline <= now:
                link.idle_deadline = None
                actions.extend(self._on_session(link, link.session.peer_idle(), now))
                self._arm_idle(link, now)
            if link.request_deadline is not None and link.request_deadline <= now and not link.closing:
                link.request_deadline = None
                if link.received:
                    actions.extend(self._on_session(link, link.session.handshake_timed_out(), now))
                else:
                    self.counters["silent"] += 1
                    text = "closed %s: it sent nothing for %g s" % (link.peer, self.first_byte_timeout_ms / 1000)
                    actions += self._summarised(link.address, "silent", Log(INFO, text, "refused"), now)
                    actions += self._close(link, now, abort=True)
            if link.send_deadline is not None and link.send_deadline <= now and not link.closing:
                self.counters["dropped_stalled"] += 1
                text = "dropping %s: it took no frame for %g s after %s" % (
                    link.peer, self.send_timeout_ms / 1000, plural(link.session.frames_sent, "frame"))
                actions.append(Log(WARN, text, "client"))
                link.send_deadline = None
                actions += self._close(link, now, abort=True)
            if not link.closing:
                due = _earliest(due, link.idle_deadline)
                due = _earliest(due, link.request_deadline)
                due = _earliest(due, link.send_deadline)
            else:
                due = _earliest(due, link.close_deadline)
        timeout_at = self.pacer.timeout_at()
        if timeout_at is not None and timeout_at <= now:
            reason = "no answer in %g s" % ((self.pacer.timeout_ms or 0) / 1000)
            actions.extend(self._capture_failed(self.pacer.ticket, reason, now, False, cancel=True))
        capture_at = self._capture_at()
        if capture_at is not None:
            if capture_at <= now:
                actions.append(Capture(self.pacer.start(now)))
            else:
                due = _earliest(due, capture_at)
        due = _earliest(due, self.pacer.timeout_at())
        if self._updates is not None:
            actions += self._updates.tick(now)  # type: ignore[attr-defined]
            due = _earliest(due, self._updates.next_deadline())  # type: ignore[attr-defined]
        if self._health_at is not None:
            if not self._authenticated_links():
                self._health_at = None
            elif self._health_at <= now:
                self._health_at = now + self.health_interval_ms
                actions.append(AskHealth())
            due = _earliest(due, self._health_at)
        actions.extend(self._summaries(now))
        self._due = _earliest(due, self.log_summary.due())
        return actions

    def stop(self, now: int) -> list:
        """The server stops: no more frames; every connection is closed once flushed."""
        actions: list = []
        ticket = self.pacer.stop()
        if ticket:
            actions.append(CancelCapture(ticket))
        for link in reversed(self._links):
            if not link.closing:
                actions.append(Log(INFO, "closing %s: the server is stopping" % link.peer, "client"))
                actions += self._close(link, now, reason="stopping", why="the server is stopping")
        return actions

    def restart(self) -> None:
        """Serve again after :meth:`stop` (a port listens again)."""
        if self.pacer.stopped:
            self.pacer = CapturePacer(*self._pacer_settings)

    # The rules.

    def _on_session(self, link: _Link, events: list, now: int) -> list:
        actions: list = []
        for event in events:
            if isinstance(event, Accepted):
                link.request_deadline = None
                link.idle_deadline = None
                self.counters["accepted"] += 1
                if self.throttle is not None:
                    self.throttle.succeeded(link.address, now)
                what = "without end" if event.endless else plural(event.frames, "frame")
                actions.append(Log(INFO, "%s streams %s" % (link.peer, what), "client"))
                self._want_capture()
            elif isinstance(event, Rejected):
                self.counters["rejected"] += 1
                blocked = "" if link.session.pin_accepted else self._count_failure(link.address, now)
                line = Log(WARN, "rejected %s: %s%s" % (link.peer, event.reason, blocked), "rejected")
                # The line that blocks an address is always logged (once per block).
                actions += [line] if blocked else self._summarised(link.address, type(event.error).__name__, line, now)
                actions += self._close(link, now, reason=_REASONS.get(type(event.error), "rejected"),
                                       why=event.reason)
            elif isinstance(event, Upgrade):
                actions += self._upgrade(link, event, now)
            elif isinstance(event, Authenticated):
                actions += self._authenticated(link, now)
            elif isinstance(event, Request):
                actions += self._request(link, event, now)
        return actions

    # Protocol 2.

    def _upgrade(self, link: _Link, event: Upgrade, now: int) -> list:
        challenge = self._random(CHALLENGE_BYTES)  # type: ignore[operator]
        session = Session2(self.key, challenge)  # type: ignore[arg-type]
        link.session = session
        hello = {"protocol": VERSION, "capabilities": list(CAPABILITIES), "device": self.device,
                 "challenge": binascii.hexlify(challenge).decode()}
        actions: list = [Write(link.conn, encode_json(HELLO, hello))]
        if event.rest:
            actions += self._on_session(link, session.receive_data(event.rest), now)
        return actions

    def _authenticated(self, link: _Link, now: int) -> list:
        session = link.session
        assert isinstance(session, Session2)
        link.request_deadline = link.idle_deadline = None
        self.counters["authenticated"] += 1
        if self.throttle is not None:
            self.throttle.succeeded(link.address, now)
        if self._health_at is None:
            self._health_at = now
            self._want(now)
        return [Log(INFO, "%s speaks protocol 2 and holds the key" % link.peer, "client"),
                Write(link.conn, session.auth_ok_message()),
                Write(link.conn, session.sign(SETTINGS_MESSAGE, self.settings))]

    def _request(self, link: _Link, event: Request, now: int) -> list:
        """One signed request: within the client's budget, do it and answer."""
        self.counters["requests"] += 1
        if event.op.startswith("update-"):
            # Not charged to the budget: one step at a time, each answered only once the driver did it.
            return self._update_desk().request(link, event, now)  # type: ignore[attr-defined]
        link.budget = min(REQUEST_BURST * 1000, link.budget + (now - link.budget_at) * REQUEST_RATE)
        link.budget_at = now
        if link.budget < 1000:
            return self._answer(link, event, "too many requests: at most %d a second" % REQUEST_RATE, now)
        link.budget -= 1000
        session = link.session
        assert isinstance(session, Session2)
        body = event.body
        op = event.op
        if op == "stream":
            frames = body.get("frames", 0)
            if type(frames) is not int or not COMMAND_MIN <= frames <= COMMAND_MAX:
                return self._answer(link, event, "frames must be a whole number (0 or less: without end)", now)
            session.start_stream(frames)
            what = "without end" if frames <= 0 else plural(frames, "frame")
            self._want_capture()
            return [Log(INFO, "%s streams %s (protocol 2)" % (link.peer, what), "client")] + self._answer(
                link, event, None, now)
        if op in ("pause", "resume"):
            session.paused = op == "pause"
            self._want_capture()
            return self._answer(link, event, None, now)
        if op == "rate":
            return self._answer(link, event, self._set_rate(link, session, body), now)
        if op == "snapshot":
            if session.snapshots >= MAX_SNAPSHOTS:
                return self._answer(link, event, "%d snapshots are already on their way" % MAX_SNAPSHOTS, now)
            session.snapshots += 1
            self._want_capture()
            return self._answer(link, event, None, now)
        if op == "get":
            return [Write(link.conn, session.sign(SETTINGS_MESSAGE, self.settings))] + self._answer(
                link, event, None, now)
        if op == "health":
            return [Write(link.conn, session.sign(HEALTH, self.health))] + self._answer(link, event, None, now)
        if op == "set":
            return self._change_settings(link, event, now)
        return self._answer(link, event, "unknown request %r" % op[:32], now)

    def _set_rate(self, link: _Link, session: Session2, body: dict) -> str | None:
        fps = body.get("fps")
        every = body.get("every")
        if fps is not None and (isinstance(fps, bool) or not isinstance(fps, (int, float))
                                or not 0 < fps <= MAX_CLIENT_FPS):
            return "fps must be a number above 0 and at most %d" % MAX_CLIENT_FPS
        if every is not None and (type(every) is not int or not 1 <= every <= 1000000):
            return "every must be a whole number from 1 to 1000000"
        session.max_fps = float(fps or 0)
        session.every = every or 1
        link.next_frame_at = 0
        link.frames_seen = 0
        self._want_capture()
        return None

    def _change_settings(self, link: _Link, event: Request, now: int) -> list:
        changes = event.body.get("settings")
        if not isinstance(changes, dict) or not changes:
            return self._answer(link, event, "set needs settings, such as {\"framesize\": \"SVGA\"}", now)
        settings, problems = SETTINGS.merge(changes, self.settings)
        if problems:
            return self._answer(link, event, problems[0], now)
        if self._settings_request is not None:
            return self._answer(link, event, "another change of the settings is under way; try again", now)
        self._settings_ticket += 1
        self._settings_request = (self._settings_ticket, link, event.counter)
        return [ApplySettings(self._settings_ticket, settings)]

    def settings_applied(self, ticket: int, settings: dict | None, error: str | None, now: int) -> list:
        """The driver applied (or failed to apply) the settings of :class:`ApplySettings` ``ticket``.

        ``settings`` are the camera's settings now (all of them). Every
        protocol 2 client gets them; the one that asked gets the answer.
        """
        request = self._settings_request
        if request is None or request[0] != ticket:
            return []
        self._settings_request = None
        _, link, counter = request
        actions: list = []
        if settings is not None:
            self.settings = dict(settings)
            self.counters["settings_changes"] += 1
            for other in self._authenticated_links():
                actions.append(Write(other.conn, other.session.sign(SETTINGS_MESSAGE, self.settings)))
            actions.append(Log(INFO, "camera settings changed by %s" % (link.peer if link else "a client"), "camera"))
        if link is not None and link in self._authenticated_links():
            actions += self._answer(link, Request(counter, {}), error, now)
        return actions

    def _update_desk(self) -> object:
        """The updates' part of the role, made at the first update request."""
        if self._updates is None:
            # Imported on the first update only: a board that never takes one keeps the heap.
            from tcpcam.core.update import UpdateDesk

            self._updates = UpdateDesk(self._answer, self._authenticated_links, self.counters, self._want,
                                       self.update_idle_ms)
        return self._updates

    def update_done(self, ticket: int, error: str | None, now: int) -> list:
        """The driver carried out (``error`` None) or failed the :class:`UpdateStep` ``ticket``.

        A failed step abandons the update (the driver is told to forget the
        bundle); a commit done ends it. The client that sent it gets the answer.
        """
        if self._updates is None:
            return []
        return self._updates.done(ticket, error, now)  # type: ignore[attr-defined]

    def report_health(self, facts: dict, now: int) -> list:
        """The driver's answer to :class:`AskHealth`: every protocol 2 client gets ``facts``."""
        self.health = dict(facts)
        return [Write(link.conn, link.session.sign(HEALTH, self.health)) for link in self._authenticated_links()]

    def _authenticated_links(self) -> list:
        """The protocol 2 connections that proved the key and hold a place."""
        return [link for link in self._links
                if isinstance(link.session, Session2) and link.session.authenticated and link.places]

    def _answer(self, link: _Link, event: Request, error: str | None, now: int) -> list:
        result: dict = {"id": event.counter, "ok": error is None}
        if error is not None:
            result["error"] = error
            self.counters["requests_refused"] += 1
            link.refused_in_a_row += 1
            if link.refused_in_a_row >= REFUSED_REQUESTS:
                return self._close(link, now, reason="too-many-requests",
                                   why="%d refused requests in a row" % link.refused_in_a_row)
        else:
            link.refused_in_a_row = 0
        session = link.session
        assert isinstance(session, Session2)
        return [Write(link.conn, session.sign(RESULT, result))]

    def _refuse(self, conn: object, address: str, peer: str, now: int, reason: str, why: str) -> list:
        """Close a refused connection; with protocol 2 on, keep it a moment to tell a protocol 2 client why."""
        lingering = 0
        for link in self._links:
            if link.refusal is not None and not link.closing:
                lingering += 1
        if self.key is None or lingering >= MAX_REFUSALS_LINGERING:
            return [Close(conn, abort=True)]
        link = _Link(conn, address, peer, Session(self._pin, self.max_token_bytes), now, now + REFUSAL_LINGER_MS)
        link.refusal = reason
        link.refusal_text = why
        self._links.append(link)
        self._by_conn[id(conn)] = link
        self._want(link.request_deadline)
        return []

    def _refusal_told(self, link: _Link, data: bytes, now: int) -> list:
        """A refused connection sent something: a protocol 2 opening is told why, anything else is not."""
        opening = opening_line()
        link.refusal_seen += bytes(data[:len(opening) - len(link.refusal_seen)])
        seen = bytes(link.refusal_seen)
        if len(seen) < len(opening) and opening.startswith(seen):
            return []
        if seen == opening:
            reason = {"reason": link.refusal, "text": link.refusal_text}
            return [Write(link.conn, encode_json(REASON, reason))] + self._close(link, now)
        return self._close(link, now, abort=True)

    def _evict(self, link: _Link, now: int, why: str) -> list:
        """Take ``link``'s place: close it at once; a request it had begun is a failed one."""
        self.counters["evicted"] += 1
        blocked = self._count_failure(link.address, now) if link.received else ""
        line = Log(INFO, "closed %s to make room: %s%s" % (link.peer, why, blocked), "refused")
        actions = [line] if blocked else self._summarised(link.address, "evicted", line, now)
        return actions + self._close(link, now, abort=True)

    def _summarised(self, address: str, kind: str, line: Log, now: int) -> list:
        actions = self.log_summary.line(address, kind, line, now)
        if not actions:
            self.counters["log_lines_summarised"] += 1
        self._want(self.log_summary.due())
        return actions

    def _summaries(self, now: int) -> list:
        return self.log_summary.tick(now)

    def _count_failure(self, address: str, now: int) -> str:
        self.counters["failed_requests"] += 1
        throttle = self.throttle
        if throttle is None or not throttle.failed(address, now):
            return ""
        return "; %d failed requests: %s is refused for %g s" % (throttle.max_failures, address, throttle.block / 1000)

    def _close(self, link: _Link, now: int, abort: bool = False, reason: str = "", why: str = "") -> list:
        """Close ``link``; a protocol 2 client is told ``reason`` first (unless the close is an abort)."""
        actions: list = []
        session = link.session
        if reason and not abort and isinstance(session, Session2) and not link.closing:
            actions.append(Write(link.conn, session.reason_message(reason, why)))
        link.closing = True
        link.request_deadline = link.idle_deadline = link.send_deadline = None
        if not abort:
            link.close_deadline = now + self.close_timeout_ms
            self._want(link.close_deadline)
        actions.append(Close(link.conn, abort))
        return actions

    def _arm_idle(self, link: _Link, now: int) -> None:
        if link.closing or not link.session.wants_idle_timer:
            link.idle_deadline = None
            return
        link.idle_deadline = now + self.idle_ms
        self._want(link.idle_deadline)

    def _capture_at(self) -> int | None:
        """When the source should be asked for the next frame, or None while nobody wants one."""
        due = self.pacer.due()
        if due is None:
            return None
        wanted = None
        for link in self._links:
            wanted = _earliest(wanted, link.wants_frame_at())
        if wanted is None:
            return None
        return due if wanted < due else wanted

    def _want_capture(self) -> None:
        self._want(self._capture_at())

    def _want(self, when: int | None) -> None:
        self._due = _earliest(self._due, when)

    def _capture_failed(self, ticket: int, reason: str, now: int, unexpected: bool, cancel: bool = False) -> list:
        place = self.pacer.failed(ticket, now)
        if not place:
            return []
        self.counters["capture_failures"] += 1
        actions: list = [CancelCapture(ticket)] if cancel else []
        if place == 1:
            actions.append(Log(ERROR if unexpected else WARN,
                               "no frame from the source (%s); skipping it (further failures in a row are"
                               " counted, not logged)" % reason, "source"))
        self._want_capture()
        return actions
