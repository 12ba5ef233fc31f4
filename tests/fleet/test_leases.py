"""Leases on a real nats-server: one holder at a time, under a network partition and under clock skew.

Recorder A reaches NATS through a TCP proxy the test can cut (both ways
paused, as a partition that drops nothing but delivers nothing: A's renewals
arrive, late, when it heals). A's clock is an hour behind and runs 3 % slow;
B's is a day ahead and runs 2 % fast. Neither clock is compared with the
server's, so neither matters beyond the margin.
"""

import asyncio
import time
import uuid

import pytest
import pytest_twisted
from fleet_support import FLEET_ONLY, asDeferred
from twisted.internet import protocol
from twisted.internet.endpoints import TCP4ClientEndpoint, connectProtocol, serverFromString

pytestmark = FLEET_ONLY


class _Half(protocol.Protocol):
    def __init__(self, proxy, peer=None):
        self.proxy = proxy
        self.peer = peer

    def connectionMade(self):
        self.proxy.halves.add(self)
        if self.proxy.isCut:
            self.transport.pauseProducing()

    def dataReceived(self, data):
        self.peer.transport.write(data)

    def connectionLost(self, reason):
        self.proxy.halves.discard(self)
        if self.peer is not None and self.peer.transport is not None:
            self.peer.transport.loseConnection()


class _Outer(_Half):
    def connectionMade(self):
        self.transport.pauseProducing()
        inner = _Half(self.proxy, self)

        def connected(_):
            self.peer = inner
            _Half.connectionMade(self)
            if not self.proxy.isCut:
                self.transport.resumeProducing()

        from twisted.internet import reactor

        endpoint = TCP4ClientEndpoint(reactor, "127.0.0.1", self.proxy.targetPort)
        connectProtocol(endpoint, inner).addCallbacks(connected, lambda _: self.transport.loseConnection())


class PartitionProxy(protocol.Factory):
    """Forward loopback TCP to ``targetPort``; :meth:`cut` pauses every byte both ways, :meth:`heal` resumes."""

    def __init__(self, targetPort):
        self.targetPort = targetPort
        self.isCut = False
        self.halves = set()

    def buildProtocol(self, addr):
        return _Outer(self)

    def cut(self):
        self.isCut = True
        for half in self.halves:
            half.transport.pauseProducing()

    def heal(self):
        self.isCut = False
        for half in self.halves:
            half.transport.resumeProducing()


def skewed(offset, rate):
    """A clock ``offset`` seconds off that runs at ``rate`` times the real pace."""
    base = time.monotonic()
    return lambda: offset + base + (time.monotonic() - base) * rate


async def keeperOn(url, bucket, recorder, ttl, clock):
    import nats

    from tcpcam.fleet.leases import LeaseKeeper, LeaseTerms

    nc = await nats.connect(url, connect_timeout=2, reconnect_time_wait=0.2, max_reconnect_attempts=-1,
                            ping_interval=1, max_outstanding_pings=2)
    js = nc.jetstream(timeout=2)
    try:
        kv = await js.key_value(bucket)
    except Exception:
        kv = await js.create_key_value(bucket=bucket, ttl=ttl, history=1)
    return nc, LeaseKeeper(kv, recorder, LeaseTerms(ttl), clock)


@pytest_twisted.inlineCallbacks
def test_partitioned_holder_stops_before_anyone_else_can_start(natsServer):
    yield asDeferred(partitioned(natsServer))


async def partitioned(natsServer):
    ttl = 3
    proxy = PartitionProxy(natsServer.port)
    from twisted.internet import reactor

    listening = await serverFromString(reactor, "tcp:0:interface=127.0.0.1").listen(proxy).asFuture(
        asyncio.get_event_loop())
    bucket = "leases-%s" % uuid.uuid4().hex[:8]
    clockA = skewed(-3600.0, 0.97)
    clockB = skewed(86400.0, 1.02)
    ncB, keeperB = await keeperOn(natsServer.url, bucket, "b", ttl, clockB)
    ncA, keeperA = await keeperOn("nats://127.0.0.1:%d" % listening.getHost().port, bucket, "a", ttl, clockA)
    try:
        leaseA = await keeperA.acquire("cam")
        assert leaseA is not None
        assert await keeperB.acquire("cam") is None  # held: the server refuses B
        aStart, aEnd, bStart, cutAt = time.monotonic(), None, None, None
        leaseB = None
        renewing = None
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and leaseB is None:
            now = time.monotonic()
            if aEnd is None:
                if not leaseA.valid(clockA()):
                    aEnd = now  # A stops recording here, on its own clock's say-so
                elif (renewing is None or renewing.done()) and clockA() - leaseA.sentAt >= keeperA.terms.renewEvery:
                    renewing = asyncio.ensure_future(keeperA.renew(leaseA))
            if cutAt is None and now - aStart > 1.5:
                proxy.cut()
                cutAt = now
            if cutAt is not None:
                leaseB = await keeperB.acquire("cam")
                if leaseB is not None:
                    bStart = time.monotonic()
            await asyncio.sleep(0.02)
        assert leaseB is not None, "B never got the lease after A was cut off"
        assert aEnd is not None and aEnd < bStart, "A still recorded when B started"
        assert aEnd - cutAt < ttl  # A stopped within the lease time of losing contact
        assert keeperA.failedRenewals >= 1
        # Healing delivers A's late renewals: they carry A's old revision and the server refuses them.
        proxy.heal()
        if renewing is not None:
            await asyncio.wait_for(renewing, 10)
        result = await keeperA.renew(leaseA)
        assert result == "lost"
        assert await keeperB.renew(leaseB) == "renewed"
    finally:
        await ncA.close()
        await ncB.close()
        await listening.stopListening().asFuture(asyncio.get_event_loop())


@pytest_twisted.inlineCallbacks
def test_unrenewed_lease_expires_on_the_servers_clock_and_release_frees_at_once(natsServer):
    yield asDeferred(expiring(natsServer))


async def expiring(natsServer):
    ttl = 2
    bucket = "leases-%s" % uuid.uuid4().hex[:8]
    ncA, keeperA = await keeperOn(natsServer.url, bucket, "a", ttl, skewed(-1e6, 1.0))
    ncB, keeperB = await keeperOn(natsServer.url, bucket, "b", ttl, time.monotonic)
    try:
        lease = await keeperA.acquire("cam")
        sent = time.monotonic()
        taken = None
        for _ in range(200):  # bounded: 200 x 50 ms
            taken = await keeperB.acquire("cam")
            if taken is not None:
                break
            await asyncio.sleep(0.05)
        waited = time.monotonic() - sent
        assert taken is not None and waited >= ttl - 0.1  # not before the server's TTL ran out
        assert await keeperA.renew(lease) == "lost"
        await keeperB.release(taken)
        assert await keeperA.acquire("cam") is not None  # a released lease is free at once
    finally:
        await ncA.close()
        await ncB.close()


def test_terms_are_what_the_partition_test_relies_on():
    from tcpcam.fleet.leases import LeaseTerms

    terms = LeaseTerms(3)
    assert terms.ttl - terms.margin == pytest.approx(2.4) and terms.requestSeconds <= 0.6 + 1e-9
