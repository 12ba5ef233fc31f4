"""Frames lost on the way from a protocol 2 camera, counted from its sequence numbers.

A protocol 2 camera numbers every frame it captures (``seq``, 32 bits, one
counter for all its clients) and tells each client how many frames it had to
skip for it since its last one (``missed``: the client or the network was too
slow to take them). So between two frames of one connection,
``seq - previous seq - 1`` frames were captured and never reached this
recorder: true losses, not guessed from times. The first frame of a
connection has no previous one; its ``missed`` says the same thing.

Losses come in runs. :class:`FrameLosses` keeps the total and the run going
on; a run ends when :attr:`FrameLosses.quietSeconds` pass without a loss, or
with the connection. The caller logs the start and the end of each run (two
lines, whatever its length) and writes one ``frames_lost`` event per run,
and one a minute while a run goes on, so ``events.jsonl`` stays bounded.
"""

from __future__ import annotations

from dataclasses import dataclass

#: Seconds without a lost frame that end a run of losses.
QUIET_SECONDS = 10.0
#: Seconds between ``frames_lost`` events while one run of losses goes on.
REPORT_SECONDS = 60.0
#: Sequence numbers wrap at 2**32.
SEQ_MASK = 0xFFFFFFFF
#: A step of more than this (half the sequence space) is taken for a step backwards, and counts no loss.
MAX_FORWARD_STEP = 1 << 31


@dataclass
class LossRun:
    """One run of losses: when it began and last lost, frames lost, and the sequence numbers around it."""

    start: float
    last: float
    frames: int = 0
    #: Frames lost since the last report (the ``frames`` of the next ``frames_lost`` event).
    unreported: int = 0
    reportedAt: float = 0.0
    #: The sequence number of the first frame received after the first loss, and after the last one.
    firstSeq: int = 0
    lastSeq: int = 0
    #: Frames received that followed a loss.
    gaps: int = 0


class FrameLosses:
    """The frames lost from one camera: the total, and the run of losses going on (see the module)."""

    #: Seconds without a lost frame that end a run.
    quietSeconds = QUIET_SECONDS
    #: Seconds between reports while a run goes on.
    reportSeconds = REPORT_SECONDS

    def __init__(self) -> None:
        self.total = 0
        #: Steps backwards in the sequence numbers within a connection (a camera that misbehaves).
        self.backwards = 0
        self.run: LossRun | None = None
        self._lastSeq: int | None = None

    def connected(self) -> None:
        """A new connection: its first frame has no previous one."""
        self._lastSeq = None

    def frame(self, seq: int, missed: int, now: float) -> tuple[int, LossRun | None, LossRun | None, LossRun | None]:
        """A frame came: ``(frames lost before it, run ended, run started, run to report)``.

        The runs are None when nothing of that kind happened: a run that ended
        by quiet time is returned before the one this frame may start.
        """
        previous, self._lastSeq = self._lastSeq, seq
        if previous is None:
            lost = max(0, missed)
        else:
            step = (seq - previous) & SEQ_MASK
            if step == 0 or step > MAX_FORWARD_STEP:
                self.backwards += step != 0
                lost = 0
            else:
                lost = step - 1
        ended = None
        run = self.run
        if run is not None and now - run.last >= self.quietSeconds:
            ended, run, self.run = run, None, None
        if not lost:
            return 0, ended, None, None
        self.total += lost
        started = None
        if run is None:
            run = started = self.run = LossRun(start=now, last=now, reportedAt=now, firstSeq=seq)
        run.frames += lost
        run.unreported += lost
        run.last = now
        run.lastSeq = seq
        run.gaps += 1
        report = None
        if started is None and now - run.reportedAt >= self.reportSeconds:
            report = run
        return lost, ended, started, report

    def reported(self, run: LossRun, now: float) -> None:
        """The caller reported ``run.unreported`` frames."""
        run.unreported = 0
        run.reportedAt = now

    def close(self) -> LossRun | None:
        """The connection ended: the run going on, if any, ends with it."""
        run, self.run = self.run, None
        self._lastSeq = None
        return run
