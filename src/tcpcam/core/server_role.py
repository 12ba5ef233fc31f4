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

- **Admission.** An address refused by the throttle, or a connection beyond
  ``max_clients``, is closed at once with nothing sent.
- **The request** of each connection is a :class:`~tcpcam.core.session.Session`;
  it must be complete ``handshake_timeout_ms`` after the connection, and an
  unterminated token ends after ``idle_ms`` of quiet. Failed requests count
  against the address (:class:`~tcpcam.core.throttle.PinThrottle`); the right
  PIN clears its count.
- **Frames.** The source is asked for a frame only while a streaming
  connection can take one, paced and backed off by
  :class:`~tcpcam.core.pacing.CapturePacer`. Each frame is offered to every
  streaming connection, newest first; a connection still busy with an
  earlier frame skips it (a skip does not count towards its N). A connection
  must take a frame within ``send_timeout_ms`` of the offer, or it is
  dropped. After its N-th frame it is closed once flushed, and aborted if
  that takes longer than ``close_timeout_ms``.
"""

from tcpcam.core.actions import ERROR, INFO, WARN, CancelCapture, Capture, Close, Log, Write
from tcpcam.core.errors import WrongPin
from tcpcam.core.events import Accepted, Finished, Rejected
from tcpcam.core.framing import encode_header
from tcpcam.core.limits import (
    CAPTURE_RETRY_MAX_MS,
    CAPTURE_RETRY_MS,
    CLOSE_TIMEOUT_MS,
    HANDSHAKE_TIMEOUT_MS,
    IDLE_MS,
    MAX_CLIENTS,
    MAX_TOKEN_BYTES,
    PIN_BLOCK_MS,
    PIN_FAILURES,
    PIN_WINDOW_MS,
    SEND_TIMEOUT_MS,
    SOURCE_TIMEOUT_MS,
)
from tcpcam.core.pacing import CapturePacer
from tcpcam.core.request import check_pin
from tcpcam.core.session import Session
from tcpcam.core.text import plural
from tcpcam.core.throttle import PinThrottle

#: Names of the counters in :attr:`ServerRole.counters`.
COUNTERS = (
    "connections", "refused_full", "refused_blocked", "rejected", "failed_requests", "accepted",
    "finished", "left", "dropped_stalled", "aborted_closing", "frames_captured", "capture_failures",
    "frames_offered", "frames_skipped", "bytes_offered",
)


class _Link:
    """What the server knows of one connection."""

    def __init__(self, conn: object, address: str, peer: str, session: Session, deadline: int) -> None:
        self.conn = conn
        self.address = address
        self.peer = peer
        self.session = session
        #: When the request must be complete (None once it is).
        self.request_deadline: int | None = deadline
        #: When an unterminated token counts as complete (None: no token waits).
        self.idle_deadline: int | None = None
        #: When the frame offered last must have been taken (None: not busy).
        self.send_deadline: int | None = None
        #: When a closing connection is aborted (None: not closing).
        self.close_deadline: int | None = None
        self.closing = False

    @property
    def ready(self) -> bool:
        """True when this connection streams and can take a frame now."""
        return self.send_deadline is None and not self.closing and self.session.streaming


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
                 max_token_bytes: int = MAX_TOKEN_BYTES) -> None:
        self._pin = check_pin(pin, max_token_bytes)
        if max_clients < 1:
            raise ValueError("max_clients must be at least 1, not %r" % (max_clients,))
        for name, value in (("handshake_timeout_ms", handshake_timeout_ms), ("idle_ms", idle_ms),
                            ("send_timeout_ms", send_timeout_ms), ("close_timeout_ms", close_timeout_ms)):
            if value <= 0:
                raise ValueError("%s must be above 0, not %r" % (name, value))
        if pin_failures < 0:
            raise ValueError("pin_failures must be 0 (no throttling) or more, not %r" % (pin_failures,))
        self.max_clients = max_clients
        self.handshake_timeout_ms = handshake_timeout_ms
        self.idle_ms = idle_ms
        self.send_timeout_ms = send_timeout_ms
        self.close_timeout_ms = close_timeout_ms
        self.max_token_bytes = max_token_bytes
        self._pacer_settings = (interval_ms, source_timeout_ms, capture_retry_ms, capture_retry_max_ms)
        self.pacer = CapturePacer(*self._pacer_settings)
        #: Failed requests per address, or None when throttling is off.
        self.throttle = PinThrottle(pin_failures, pin_window_ms, pin_block_ms) if pin_failures else None
        #: Event counts for a status page; the keys are :data:`COUNTERS`.
        self.counters = {name: 0 for name in COUNTERS}
        self._links: list = []
        self._by_conn: dict = {}
        self._due: int | None = None

    # What the driver asks.

    def __len__(self) -> int:
        """Connections that hold a place (not those being closed)."""
        return self.clients

    @property
    def clients(self) -> int:
        """Connections that hold a place: streaming or still sending their request."""
        count = 0
        for link in self._links:
            if not link.closing:
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
        throttle = self.throttle
        if throttle is not None:
            wait = throttle.blocked_for(address, now)
            if wait > 0:
                self.counters["refused_blocked"] += 1
                return [Log(WARN, "refused %s: too many failed requests from %s; refused for %d s more"
                            % (peer, address, (wait + 999) // 1000), "refused"), Close(conn, abort=True)]
        if self.full:
            self.counters["refused_full"] += 1
            return [Log(WARN, "refused %s: server full (%s)" % (peer, plural(self.max_clients, "client")), "refused"),
                    Close(conn, abort=True)]
        if id(conn) in self._by_conn:
            raise ValueError("connection %r was added twice" % (conn,))
        link = _Link(conn, address, peer, Session(self._pin, self.max_token_bytes), now + self.handshake_timeout_ms)
        self._links.append(link)
        self._by_conn[id(conn)] = link
        self._want(link.request_deadline)
        return []

    def receive(self, conn: object, data: bytes, now: int) -> list:
        """Bytes from ``conn``: its request; bytes after the request are ignored."""
        link = self._by_conn.get(id(conn))
        if link is None or link.closing or not link.session.awaiting_request:
            return []
        actions = self._on_session(link, link.session.receive_data(data), now)
        self._arm_idle(link, now)
        return actions

    def written(self, conn: object, now: int) -> list:
        """Everything written to ``conn`` so far has left: it can take the next frame."""
        link = self._by_conn.get(id(conn))
        if link is None or link.send_deadline is None:
            return []
        link.send_deadline = None
        if link.ready:
            self._want(self.pacer.due())
        return []

    def disconnected(self, conn: object, now: int) -> list:
        """``conn`` is gone (closed by either side); forget it."""
        link = self._by_conn.pop(id(conn), None)
        if link is None:
            return []
        self._links.remove(link)
        actions: list = []
        session = link.session
        if session.streaming and not link.closing:
            self.counters["left"] += 1
            actions.append(Log(INFO, "%s left after %s" % (link.peer, plural(session.frames_sent, "frame")), "client"))
        session.connection_lost()
        return actions

    # What happens to the source.

    def captured(self, ticket: int, frame: bytes, now: int) -> list:
        """The source answered request ``ticket`` with ``frame`` (bytes-like): offer it to everyone.

        A stale answer (after a time-out) returns nothing: drop it.
        """
        ended = self.pacer.succeeded(ticket)
        if ended < 0:
            return []
        self.counters["frames_captured"] += 1
        actions: list = []
        if ended:
            actions.append(Log(INFO, "frame source recovered after %s" % plural(ended, "failed frame"), "source"))
        header = encode_header(len(frame))
        deadline = now + self.send_timeout_ms
        for link in reversed(self._links):
            session = link.session
            if link.closing or not session.streaming:
                continue
            if link.send_deadline is not None:
                session.frame_skipped()
                self.counters["frames_skipped"] += 1
                continue
            link.send_deadline = deadline
            self.counters["frames_offered"] += 1
            self.counters["bytes_offered"] += len(frame)
            actions.append(Write(link.conn, header, frame))
            self._want(deadline)
            for event in session.frame_sent():
                if isinstance(event, Finished):
                    self.counters["finished"] += 1
                    text = "%s got its %s" % (link.peer, plural(event.frames_sent, "frame"))
                    actions.append(Log(INFO, text, "client"))
                    actions.append(self._close(link, now))
        self._want_capture()
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
                actions.extend(self._on_session(link, link.session.handshake_timed_out(), now))
            if link.send_deadline is not None and link.send_deadline <= now and not link.closing:
                self.counters["dropped_stalled"] += 1
                text = "dropping %s: it took no frame for %g s after %s" % (
                    link.peer, self.send_timeout_ms / 1000, plural(link.session.frames_sent, "frame"))
                actions.append(Log(WARN, text, "client"))
                link.send_deadline = None
                actions.append(self._close(link, now, abort=True))
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
        capture_at = self.pacer.due()
        if capture_at is not None and self._someone_ready():
            if capture_at <= now:
                actions.append(Capture(self.pacer.start(now)))
            else:
                due = _earliest(due, capture_at)
        due = _earliest(due, self.pacer.timeout_at())
        self._due = due
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
                actions.append(self._close(link, now))
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
                text = "rejected %s: %s" % (link.peer, event.reason)
                if isinstance(event.error, WrongPin):
                    text += self._count_failure(link.address, now)
                actions.append(Log(WARN, text, "rejected"))
                actions.append(self._close(link, now))
        return actions

    def _count_failure(self, address: str, now: int) -> str:
        self.counters["failed_requests"] += 1
        throttle = self.throttle
        if throttle is None or not throttle.failed(address, now):
            return ""
        return "; %d failed requests: %s is refused for %g s" % (throttle.max_failures, address, throttle.block / 1000)

    def _close(self, link: _Link, now: int, abort: bool = False) -> Close:
        link.closing = True
        link.request_deadline = link.idle_deadline = link.send_deadline = None
        if not abort:
            link.close_deadline = now + self.close_timeout_ms
            self._want(link.close_deadline)
        return Close(link.conn, abort)

    def _arm_idle(self, link: _Link, now: int) -> None:
        if link.closing or not link.session.wants_idle_timer:
            link.idle_deadline = None
            return
        link.idle_deadline = now + self.idle_ms
        self._want(link.idle_deadline)

    def _someone_ready(self) -> bool:
        for link in self._links:
            if link.ready:
                return True
        return False

    def _want_capture(self) -> None:
        if self._someone_ready():
            self._want(self.pacer.due())

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
