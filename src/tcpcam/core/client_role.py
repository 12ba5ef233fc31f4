"""The client role: one legacy request and the frames it brings, with no I/O.

The driver (the Twisted client protocol) calls, with ``now`` in milliseconds:

- :meth:`ClientRole.connected` once the connection is up, and writes what it returns;
- :meth:`ClientRole.receive_data` with every chunk, then :meth:`ClientRole.next_frame`
  until it returns None, handing each frame to the consumer;
- :meth:`ClientRole.hold` / :meth:`ClientRole.release` while the consumer keeps the
  stream paused (that time is not silence);
- :meth:`ClientRole.tick` when its timer, set to :meth:`ClientRole.next_deadline`, fires;
- :meth:`ClientRole.connection_lost` when the connection is gone.

Once :attr:`ClientRole.done` is true the request has its outcome:
:attr:`ClientRole.error` is None for success (all N frames, or a stream the
server ended between frames after at least one frame) or the
:class:`~tcpcam.core.errors.RemoteProtocolError` that says how it ended.
"""

from tcpcam.core.actions import Close, Write
from tcpcam.core.errors import (
    ClosedBeforeFirstFrame,
    FrameTimeout,
    FrameTooLarge,
    LocalProtocolError,
    RemoteProtocolError,
    TooFewFrames,
    TruncatedFrame,
)
from tcpcam.core.framing import FrameDecoder
from tcpcam.core.limits import MAX_FRAME_BYTES, PIN_PAUSE_MS
from tcpcam.core.request import encode_request

#: Not connected yet.
IDLE = "idle"
#: The PIN is written; the command waits for the pause.
SENDING = "sending"
#: The request is written; frames come in.
RECEIVING = "receiving"
#: The server closed the connection; frames already received may still be taken.
CLOSED = "closed"
#: The outcome is known (see :attr:`ClientRole.error`).
DONE = "done"

#: Which state may follow which.
TRANSITIONS = {
    IDLE: (SENDING, RECEIVING, CLOSED, DONE),
    SENDING: (RECEIVING, CLOSED, DONE),
    RECEIVING: (CLOSED, DONE),
    CLOSED: (DONE,),
    DONE: (),
}


class ClientRole:
    """Sans-IO client for one request of ``frames`` frames (N <= 0: a stream).

    ``timeout_ms`` (None: no limit) bounds both the silence between reads and
    the time one frame may take from its first byte to its last, so a server
    that trickles a byte at a time cannot hold the client for ever.
    """

    def __init__(self, pin: str | bytes, frames: int, max_frame_bytes: int = MAX_FRAME_BYTES,
                 pause_ms: int = PIN_PAUSE_MS, timeout_ms: int | None = None) -> None:
        self._pin_line, self._command_line = encode_request(pin, frames)
        if pause_ms < 0:
            raise ValueError("pause_ms must be 0 or more, not %r" % (pause_ms,))
        if timeout_ms is not None and timeout_ms <= 0:
            raise ValueError("timeout_ms must be None or above 0, not %r" % (timeout_ms,))
        self.frames = frames
        self.pause_ms = pause_ms
        self.timeout_ms = timeout_ms
        self.state = IDLE
        #: None on success once done, else the error that ended the request.
        self.error: BaseException | None = None
        #: True once the connection is gone.
        self.peer_closed = False
        #: Frames and payload bytes taken through :meth:`next_frame`.
        self.frames_received = 0
        self.bytes_received = 0
        self._decoder = FrameDecoder(max_frame_bytes)
        self._command_at: int | None = None
        self._last_activity = 0
        self._frame_started: int | None = None
        self._held = False

    @property
    def done(self) -> bool:
        """True once the outcome is known."""
        return self.state == DONE

    @property
    def in_frame(self) -> bool:
        """True while part of a frame has arrived and the rest has not."""
        return self._decoder.in_frame

    @property
    def complete(self) -> bool:
        """True when every one of N frames has been taken."""
        return 0 < self.frames <= self.frames_received

    def connected(self, now: int) -> list:
        """The connection is up: returns the PIN write (and the command, with no pause)."""
        self._require(IDLE, "connected")
        self._last_activity = now
        if self.pause_ms:
            self._move(SENDING)
            self._command_at = now + self.pause_ms
            return [Write(None, self._pin_line)]
        self._move(RECEIVING)
        return [Write(None, self._pin_line + self._command_line)]

    def receive_data(self, data: bytes, now: int) -> None:
        """Queue bytes from the server (decoded by :meth:`next_frame`)."""
        if self.state not in (SENDING, RECEIVING) or not len(data):
            return
        self._last_activity = now
        self._decoder.receive_data(data)

    def next_frame(self, now: int) -> memoryview | None:
        """The next whole frame (a view valid until the next call), or None for now.

        Taking the N-th frame ends the request with success. A frame larger
        than allowed ends it with :class:`~tcpcam.core.errors.FrameTooLarge`;
        after :meth:`connection_lost`, the end of the buffered frames decides
        the outcome.
        """
        if self.state == DONE or self._held:
            return None
        try:
            frame = self._decoder.next_frame()
        except FrameTooLarge as error:
            self._finish(error)
            return None
        if frame is None:
            if self._decoder.in_frame:
                if self._frame_started is None:
                    self._frame_started = now
            else:
                self._frame_started = None
            if self.state == CLOSED:
                self._finish(self._end_of_stream())
            return None
        self._frame_started = now if self._decoder.in_frame else None
        self.frames_received += 1
        self.bytes_received += len(frame)
        if self.complete:
            self._finish(None)
        return frame

    def hold(self, now: int) -> None:
        """The consumer keeps the stream paused from now on (not counted as silence)."""
        self._held = True

    def release(self, now: int) -> None:
        """The consumer is ready for more: timers start again from now."""
        self._held = False
        self._last_activity = now
        if self._frame_started is not None:
            self._frame_started = now

    def connection_lost(self, now: int) -> None:
        """The connection is gone; frames already received can still be taken."""
        self.peer_closed = True
        if self.state in (IDLE, SENDING, RECEIVING):
            self._move(CLOSED)

    def cancel(self, error: BaseException) -> None:
        """End the request now with ``error`` (the caller gave up, or the consumer failed)."""
        if self.state != DONE:
            self._finish(error)

    def next_deadline(self) -> int | None:
        """When :meth:`tick` should be called next, or None."""
        if self.state == DONE:
            return None
        due = self._command_at
        if self.timeout_ms is not None and not self._held and self.state != CLOSED:
            silence = self._last_activity + self.timeout_ms
            if due is None or silence < due:
                due = silence
            if self._frame_started is not None:
                trickle = self._frame_started + self.timeout_ms
                if trickle < due:
                    due = trickle
        return due

    def tick(self, now: int) -> list:
        """Act on the deadlines that have passed: the command, or a time-out."""
        actions: list = []
        if self._command_at is not None and self._command_at <= now:
            self._command_at = None
            if self.state == SENDING:
                self._move(RECEIVING)
                actions.append(Write(None, self._command_line))
        if self.timeout_ms is None or self._held or self.state not in (SENDING, RECEIVING):
            return actions
        seconds = self.timeout_ms / 1000
        if self._frame_started is not None and self._frame_started + self.timeout_ms <= now:
            self._finish(FrameTimeout(seconds, self.frames_received, trickling=True))
            actions.append(Close(None, abort=True))
        elif self._last_activity + self.timeout_ms <= now:
            self._finish(FrameTimeout(seconds, self.frames_received))
            actions.append(Close(None, abort=True))
        return actions

    def _end_of_stream(self) -> RemoteProtocolError | None:
        decoder = self._decoder
        if decoder.in_frame:
            return TruncatedFrame(self.frames_received, decoder.payload_received, decoder.declared_length)
        if self.frames_received == 0:
            return ClosedBeforeFirstFrame()
        if self.frames > 0:
            return TooFewFrames(self.frames_received, self.frames)
        return None

    def _finish(self, error: BaseException | None) -> None:
        self.error = error
        self._command_at = None
        self._move(DONE)

    def _require(self, state: str, name: str) -> None:
        if self.state != state:
            raise LocalProtocolError("%s() called on a client that is %s" % (name, self.state))

    def _move(self, state: str) -> None:
        if state not in TRANSITIONS[self.state]:
            raise LocalProtocolError("client cannot go from %s to %s" % (self.state, state))
        self.state = state
