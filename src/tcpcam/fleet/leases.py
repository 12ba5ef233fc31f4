"""One lease per camera: who may record it, decided by the NATS server's TTL, never by comparing clocks.

A lease is the key ``NAME`` in the lease bucket, whose TTL is the lease
time. The recorder that records a camera made the key with ``create`` (which
fails if the key exists) and renews it with ``update(last=revision)`` (which
fails if anyone else wrote it since): the server alone decides who holds it,
and a key that nobody renews vanishes one TTL after its last write, on the
server's own clock.

The holder never asks when that is. It measures, on its own monotonic
clock, the moment it *sent* each successful write: the server wrote it
after that moment, so the key lives at least until ``sent + ttl`` on any
clock that runs at the same rate. The holder records only until
:meth:`LeaseTerms.deadline`, ``sent + ttl - margin``, and renews every
:attr:`LeaseTerms.renewEvery`; when renewals fail (NATS down, a partition),
it stops recording at the deadline, before anyone else can have taken the
key. The margin (:data:`MARGIN_SHARE` of the TTL, at least
:data:`MIN_MARGIN` seconds) covers the time to stop a camera and a holder's
clock running slower than the server's by up to a tenth. Wall clocks, time
zones and clock offsets between machines play no part.

A write that timed out may still have reached the server (nats-py sends
buffered publishes after a reconnection); after any failed write the key is
read back, and a value carrying this lease's token is adopted (its new
revision, not a longer deadline: that write's sending time is unknown).
"""

from __future__ import annotations

import json
import secrets
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Share of the lease time kept as margin before the server can let a lease go.
MARGIN_SHARE = 0.2
#: Seconds of margin at least.
MIN_MARGIN = 0.5
#: Share of the lease time between renewals (so three renewals can fail before the deadline).
RENEW_SHARE = 0.2
#: Seconds a lease write waits for its answer at most.
MAX_REQUEST_SECONDS = 2.0


class LeaseTerms:
    """The deadline arithmetic of one lease time (pure: seconds in, seconds out)."""

    def __init__(self, ttl: float) -> None:
        if not ttl > 0:
            raise ValueError("the lease time must be above 0")
        self.ttl = ttl
        #: Seconds before the server's earliest expiry at which the holder stops.
        self.margin = min(max(MIN_MARGIN, ttl * MARGIN_SHARE), ttl * 0.4)
        #: Seconds between renewals.
        self.renewEvery = ttl * RENEW_SHARE
        #: Seconds a lease write may take before it counts as failed.
        self.requestSeconds = min(MAX_REQUEST_SECONDS, self.renewEvery)

    def deadline(self, sentAt: float) -> float:
        """Until when a lease written by a request sent at ``sentAt`` may be used (same clock)."""
        return sentAt + self.ttl - self.margin


@dataclass
class Lease:
    """A lease this recorder holds."""

    camera: str
    token: str
    revision: int
    #: Until when it may record (its own monotonic clock).
    deadline: float
    #: When the last successful write was sent.
    sentAt: float
    acquiredAt: float

    def valid(self, now: float) -> bool:
        """True while the camera may be recorded."""
        return now < self.deadline


def leaseValue(recorder: str, token: str) -> bytes:
    """The value of a lease key."""
    return json.dumps({"recorder": recorder, "token": token}, sort_keys=True).encode()


def parseLease(value: bytes | None) -> tuple[str, str] | None:
    """``(recorder, token)`` of a lease value, or None for anything else."""
    try:
        data = json.loads(value or b"")
        return str(data["recorder"]), str(data["token"])
    except (ValueError, TypeError, KeyError):
        return None


class LeaseKeeper:
    """Take, renew and give back leases in bucket ``kv`` for ``recorder``, timing them on ``clock``."""

    def __init__(self, kv: Any, recorder: str, terms: LeaseTerms, clock: Callable[[], float] = time.monotonic) -> None:
        self.kv = kv
        self.recorder = recorder
        self.terms = terms
        self.clock = clock
        self.acquired = 0
        self.renewals = 0
        self.failedRenewals = 0
        self.lost = 0

    async def acquire(self, camera: str) -> Lease | None:
        """Take the lease of ``camera`` if nobody holds it; None if somebody does or NATS did not answer."""
        import asyncio

        from nats.js.errors import KeyWrongLastSequenceError

        token = secrets.token_hex(8)
        sent = self.clock()
        try:
            revision = await asyncio.wait_for(self.kv.create(camera, leaseValue(self.recorder, token)),
                                              self.terms.requestSeconds)
        except KeyWrongLastSequenceError:
            return None
        except Exception:
            # Perhaps applied all the same: if the key now carries our token, it is ours (from ``sent`` on).
            entry = await self._read(camera)
            if entry is None or parseLease(entry.value) != (self.recorder, token):
                return None
            revision = entry.revision
        self.acquired += 1
        return Lease(camera, token, revision, self.terms.deadline(sent), sent, sent)

    async def renew(self, lease: Lease) -> str:
        """Renew ``lease``: ``"renewed"`` (a later deadline), ``"unsure"`` (try again) or ``"lost"``."""
        import asyncio

        from nats.js.errors import KeyWrongLastSequenceError

        sent = self.clock()
        try:
            revision = await asyncio.wait_for(
                self.kv.update(lease.camera, leaseValue(self.recorder, lease.token), last=lease.revision),
                self.terms.requestSeconds)
        except KeyWrongLastSequenceError:
            return self._adoptOrLose(lease, await self._read(lease.camera), definite=True)
        except Exception:
            self.failedRenewals += 1
            return self._adoptOrLose(lease, await self._read(lease.camera), definite=False)
        lease.revision = revision
        lease.sentAt = sent
        lease.deadline = max(lease.deadline, self.terms.deadline(sent))
        self.renewals += 1
        return "renewed"

    def _adoptOrLose(self, lease: Lease, entry: Any, definite: bool) -> str:
        if entry is _UNREADABLE:
            return "unsure"
        if entry is not None and parseLease(entry.value) == (self.recorder, lease.token):
            lease.revision = max(lease.revision, entry.revision)
            return "unsure"
        if entry is None and not definite:
            return "unsure"  # NATS may be restarting; the deadline decides
        self.lost += 1
        return "lost"

    async def release(self, lease: Lease) -> None:
        """Give ``lease`` back (after the camera stopped); if this fails, the TTL frees it."""
        import asyncio

        try:
            await asyncio.wait_for(self.kv.delete(lease.camera, last=lease.revision), self.terms.requestSeconds)
        except Exception:
            pass

    async def _read(self, camera: str) -> Any:
        import asyncio

        from nats.js.errors import KeyNotFoundError

        try:
            return await asyncio.wait_for(self.kv.get(camera), self.terms.requestSeconds)
        except KeyNotFoundError:
            return None
        except Exception:
            return _UNREADABLE


_UNREADABLE = object()
