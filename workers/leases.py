"""Which scheduler replica is active for which shard: one Redis lease per shard.

With one shard (the default) this is the single active replica of before: the others stand by,
and one takes over within a lease period of the active one's death. With ``N`` shards
(``SENTINEL_SCHEDULER_SHARDS``) the alerts split by :func:`~sentinel.scheduling.shards.shard_of`
and up to ``N`` replicas are active at once, each owning some shards.

A replica takes its share, ``ceil(N / live replicas)``: it heartbeats a sorted set scored in
Redis's own clock (so hosts' clocks need not agree), takes free leases while it holds fewer, and
gives back the extra ones at a tick while it holds more. Replicas started at the same instant
race for the leases with ``SET NX``; whoever takes too many hands some back at its next tick, so
the shards settle within a tick or two. A killed replica's leases expire and are taken.

Nothing here is needed for exactly once: the slot keys and the state database's claim are per
run, whoever pushes it. The leases keep the work from being done N times over.
"""

from __future__ import annotations

import math
import os
import socket
import uuid
import zlib
from dataclasses import dataclass, field
from typing import Any

from workers import keys

#: The lease expires this long after the active replica's last renewal: a standby takes over
#: within about this long after the active one dies.
LEASE_TTL_MS = 5_000

_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""
#: Refresh this replica's heartbeat, drop expired ones, and count the live replicas.
_HEARTBEAT = """
local now = redis.call('time')
local ms = tonumber(now[1]) * 1000 + math.floor(tonumber(now[2]) / 1000)
redis.call('zadd', KEYS[1], ms + tonumber(ARGV[2]), ARGV[1])
redis.call('zremrangebyscore', KEYS[1], '-inf', ms)
redis.call('pexpire', KEYS[1], 2 * tonumber(ARGV[2]))
return redis.call('zcard', KEYS[1])
"""


class Lease:
    """One shard's lease. The value carries a fencing epoch, checked on renew and release."""

    def __init__(
        self,
        client: Any,
        namespace: str,
        ttl_ms: int = LEASE_TTL_MS,
        *,
        shard: int | None = None,
        owner: str | None = None,
    ):
        self.client = client
        self.ttl_ms = ttl_ms
        self.key = keys.lease(namespace, shard)
        self.epoch_key = keys.epoch(namespace, shard)
        self.owner = owner or replica_name()
        self.value: str | None = None
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self) -> bool:
        candidate = f"pending:{self.owner}"
        if not self.client.set(self.key, candidate, nx=True, px=self.ttl_ms):
            return False
        epoch = int(self.client.incr(self.epoch_key))
        value = f"{epoch}:{self.owner}"
        self.client.set(self.key, value, xx=True, px=self.ttl_ms)
        self.value = value
        return True

    def renew(self) -> bool:
        if self.value is None:
            return False
        if not self._renew(keys=[self.key], args=[self.value, self.ttl_ms]):
            self.value = None
            return False
        return True

    def release(self) -> None:
        if self.value is not None:
            self._release(keys=[self.key], args=[self.value])
            self.value = None


@dataclass
class ShardChange:
    """What one :meth:`ShardLeases.hold` changed: shards taken, lost (not renewed in time), and
    given back (more than this replica's share)."""

    gained: list[int] = field(default_factory=list)
    lost: list[int] = field(default_factory=list)
    released: list[int] = field(default_factory=list)

    @property
    def dropped(self) -> list[int]:
        return self.lost + self.released

    def __bool__(self) -> bool:
        return bool(self.gained or self.lost or self.released)


class ShardLeases:
    """The shard leases this replica holds, kept at its share of the live replicas."""

    def __init__(self, client: Any, namespace: str, count: int, ttl_ms: int = LEASE_TTL_MS):
        self.client = client
        self.count = count
        self.ttl_ms = ttl_ms
        self.owner = replica_name()
        self.replicas_key = keys.replicas(namespace)
        # One shard keeps the lease key of an unsharded fleet, so upgrading changes nothing.
        self.leases = {
            shard: Lease(
                client, namespace, ttl_ms, shard=shard if count > 1 else None, owner=self.owner
            )
            for shard in range(count)
        }
        #: Shards in the order this replica prefers them: replicas spread over the shards
        #: instead of all racing for shard 0 first.
        self.preference = sorted(
            range(count), key=lambda s: zlib.crc32(f"{self.owner}:{s}".encode())
        )
        self.held: set[int] = set()
        self._lost: list[int] = []
        self._heartbeat = client.register_script(_HEARTBEAT)

    def owns(self, shard: int) -> bool:
        return shard in self.held

    def hold(self) -> ShardChange:
        """One tick: heartbeat, renew what is held, give back or take leases to the share."""
        live = max(
            1, int(self._heartbeat(keys=[self.replicas_key], args=[self.owner, self.ttl_ms]))
        )
        self.renew()
        change = ShardChange(lost=self._lost)
        self._lost = []
        share = math.ceil(self.count / live)
        for shard in reversed(self.preference):
            if len(self.held) <= share:
                break
            if shard in self.held:
                self.leases[shard].release()
                self.held.discard(shard)
                change.released.append(shard)
        for shard in self.preference:
            if len(self.held) >= share:
                break
            if self.take(shard):
                change.gained.append(shard)
        return change

    def take(self, shard: int) -> bool:
        """Take one shard's lease if it is free; whether this replica now holds it."""
        if shard in self.held:
            return True
        if not self.leases[shard].acquire():
            return False
        self.held.add(shard)
        return True

    def renew(self) -> bool:
        """Renew every held lease; ``False`` if one was lost (reported by the next ``hold``)."""
        kept = True
        for shard in sorted(self.held):
            if not self.leases[shard].renew():
                self.held.discard(shard)
                self._lost.append(shard)
                kept = False
        return kept

    def forget(self) -> None:
        """Redis is away: this replica cannot know what it still holds, so it holds nothing."""
        for lease in self.leases.values():
            lease.value = None
        self.held.clear()
        self._lost = []

    def release(self) -> None:
        """Give every lease back, and leave the replicas' count (a clean stop)."""
        for shard in sorted(self.held):
            self.leases[shard].release()
        self.held.clear()
        self.client.zrem(self.replicas_key, self.owner)

    def describe(self, shard: int) -> str:
        """How the logs name a shard's lease."""
        value = self.leases[shard].value
        if self.count == 1:
            return f"scheduler lease taken ({value})"
        return f"scheduler lease taken for shard {shard} of {self.count} ({value})"


def replica_name() -> str:
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
