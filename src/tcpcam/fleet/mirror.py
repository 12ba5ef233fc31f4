"""A local copy of a key-value bucket, kept up to date by a watch.

A key expired by the bucket's TTL gives watchers no event, so each entry
keeps the moment (on this process's monotonic clock) it was last written:
the lease and presence tables count an entry unheard-of for longer than the
TTL as gone.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from twisted.logger import Logger

from tcpcam.fleet.natslink import describe

log = Logger(namespace="tcpcam.fleet")


@dataclass
class MirrorEntry:
    """One key's newest value."""

    value: bytes
    revision: int
    #: When this process saw that value, on its own monotonic clock.
    seenAt: float


class KvMirror:
    """Watch bucket ``kv`` and keep :attr:`entries` (key -> :class:`MirrorEntry`).

    ``onChange(key)`` is called after each change. :meth:`restart` makes a
    new watch (after a reconnection); a new watch first replays every live
    key, and the copy is swapped in whole once it has, so keys deleted while
    nobody watched disappear too.
    """

    #: Seconds one wait for an update lasts before looking at the restart flag again.
    pollSeconds = 1.0
    #: Seconds after which a watch is made anew anyway (a safety net for a watch that went quiet).
    refreshSeconds = 60.0
    #: Seconds between attempts to make a watch while NATS is unreachable.
    retrySeconds = 0.5
    #: Keys kept at most (a bucket with more is misused; the rest are ignored and counted).
    maxKeys = 100_000

    def __init__(self, kv: Any, clock: Callable[[], float] = time.monotonic,
                 onChange: Callable[[str], object] | None = None) -> None:
        self.kv = kv
        self.clock = clock
        self.onChange = onChange
        self.entries: dict[str, MirrorEntry] = {}
        #: True once a watch has replayed every key.
        self.synced = False
        self.restarts = 0
        #: Keys ignored because the copy held :attr:`maxKeys`.
        self.ignored = 0
        self._restart = False
        self._stopped = False

    def restart(self) -> None:
        """Make a new watch at the next chance."""
        self._restart = True

    def stop(self) -> None:
        """Stop watching (the loop ends within :attr:`pollSeconds`)."""
        self._stopped = True

    def note(self, key: str, value: bytes | None, revision: int) -> None:
        """Record a change this process made itself (before the watch shows it)."""
        if value is None:
            self.entries.pop(key, None)
        else:
            current = self.entries.get(key)
            if current is None or current.revision <= revision:
                self.entries[key] = MirrorEntry(value, revision, self.clock())
        if self.onChange is not None:
            self.onChange(key)

    async def run(self) -> None:
        """Watch until :meth:`stop`."""
        while not self._stopped:
            try:
                watcher = await self.kv.watchall()
            except Exception as error:
                log.debug("fleet: cannot watch a bucket yet: {error}", error=describe(error))
                await asyncio.sleep(self.retrySeconds)
                continue
            self._restart = False
            self.restarts += 1
            replay: dict[str, MirrorEntry] | None = {}
            started = self.clock()
            try:
                while not self._stopped and not self._restart and self.clock() - started < self.refreshSeconds:
                    try:
                        entry = await watcher.updates(timeout=self.pollSeconds)
                    except asyncio.TimeoutError:  # nats.errors.TimeoutError, or the bare one nats-py also raises
                        continue
                    if entry is None:  # every live key replayed
                        if replay is not None:
                            self._swap(replay)
                            replay = None
                        continue
                    target = replay if replay is not None else self.entries
                    if entry.operation in ("DEL", "PURGE"):
                        target.pop(entry.key, None)
                    elif entry.key not in target and len(target) >= self.maxKeys:
                        self.ignored += 1
                        continue
                    else:
                        target[entry.key] = MirrorEntry(entry.value or b"", entry.revision, self.clock())
                    if replay is None and self.onChange is not None:
                        self.onChange(entry.key)
            except Exception as error:
                log.debug("fleet: a watch ended: {error}", error=describe(error))
                await asyncio.sleep(self.retrySeconds)
            finally:
                try:
                    await watcher.stop()
                except Exception:
                    pass

    def _swap(self, replay: dict[str, MirrorEntry]) -> None:
        changed = set(replay) ^ set(self.entries)
        changed |= {key for key in replay if key in self.entries and replay[key].revision != self.entries[key].revision}
        for key, entry in replay.items():
            old = self.entries.get(key)
            if old is not None and old.revision == entry.revision:
                entry.seenAt = old.seenAt  # the same write: keep when it was first seen
        self.entries = replay
        self.synced = True
        if self.onChange is not None:
            for key in changed:
                self.onChange(key)

    def fresh(self, maxAge: float) -> dict[str, MirrorEntry]:
        """The entries written less than ``maxAge`` seconds ago (as this process saw them)."""
        now = self.clock()
        return {key: entry for key, entry in self.entries.items() if now - entry.seenAt <= maxAge}
