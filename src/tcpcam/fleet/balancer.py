"""Which cameras this recorder takes and which it lets go: the same plan computed alike by every recorder (pure).

Every recorder sees the registry, the live leases and the live recorders,
and computes one deterministic assignment of the free cameras: each, in
name order, goes to the live recorder with the fewest cameras (ties broken
by a hash of camera and recorder, so no name is favoured). A recorder takes
the free cameras that fall to it, so recorders with the same view never
race for one camera (and when views differ, the lease decides). A recorder
holding more than its share (``ceil(cameras / recorders)``) lets the extra
go; when every camera is held and two recorders differ by two or more, the
most loaded lets one go. A camera pinned to a live recorder
(``tcpcam fleet move``) goes to that recorder, whatever the loads.
"""

from __future__ import annotations

import hashlib
from collections import Counter
from collections.abc import Collection, Mapping
from dataclasses import dataclass, field


@dataclass
class Plan:
    """What to do now: cameras to take, cameras to let go."""

    take: list[str] = field(default_factory=list)
    release: list[str] = field(default_factory=list)


def rank(camera: str, recorder: str) -> int:
    """A stable pseudo-random number of a camera and a recorder (rendezvous hashing)."""
    return int.from_bytes(hashlib.blake2b(("%s\0%s" % (camera, recorder)).encode(), digest_size=8).digest(), "big")


def share(cameras: int, recorders: int) -> int:
    """The most cameras one recorder should hold."""
    return -(-cameras // max(1, recorders))


def plan(me: str, cameras: Mapping[str, str | None], holders: Mapping[str, str], live: Collection[str]) -> Plan:
    """The plan of recorder ``me``.

    ``cameras`` maps each registered camera to the recorder it is pinned to
    (or None); ``holders`` maps each camera with a live lease to its holder;
    ``live`` names the live recorders.
    """
    recorders = sorted(set(live) | {me})
    alive = set(recorders)
    result = Plan()
    mine = sorted(camera for camera, holder in holders.items() if holder == me)
    for camera in mine:
        pinned = cameras.get(camera, "")
        if camera not in cameras or (pinned and pinned != me and pinned in alive):
            result.release.append(camera)
    kept = [camera for camera in mine if camera not in result.release]
    loads: Counter[str] = Counter({recorder: 0 for recorder in recorders})
    for camera, holder in holders.items():
        if camera in cameras and holder in alive and camera not in result.release:
            loads[holder] += 1
    ceiling = share(len(cameras), len(recorders))
    free = sorted(camera for camera in cameras if camera not in holders)
    projected = Counter(loads)
    for camera in free:
        pinned = cameras[camera]
        if pinned and pinned in alive:
            winner = pinned
        else:
            winner = min(recorders, key=lambda recorder: (projected[recorder], rank(camera, recorder)))
        projected[winner] += 1
        if winner == me:
            result.take.append(camera)
    movable = sorted((camera for camera in kept if cameras.get(camera) != me),
                     key=lambda camera: rank(camera, me), reverse=True)
    extra = loads[me] - ceiling
    if extra > 0:
        result.release.extend(movable[:extra])
    elif not free and movable:
        most = max(recorders, key=lambda recorder: (loads[recorder], recorder))
        least = min(loads[recorder] for recorder in recorders)
        if most == me and loads[me] - least >= 2:
            result.release.append(movable[0])
    return result
