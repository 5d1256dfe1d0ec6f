"""The sharded scheduler in process: real Redis, a real state database, an injected clock.

Replicas "started at the same instant" tick together; a killed one simply stops ticking (its
leases expire in Redis's own time, shortened here). The real-process test is in
tests/test_fleet.py; these pin the mechanism: each shard has one owner, shares even out, a dead
replica's shards move, and every alert's slot is sent once whoever owns it.
"""

from __future__ import annotations

import threading
import time
from collections import Counter
from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from sentinel.scheduling.shards import shard_of
from tests.fleet import RedisServer
from workers import keys
from workers.leases import ShardLeases

NS = "tshard"
TTL_MS = 400
SHARDS = 4
ALERTS = 40
S0 = datetime(2026, 3, 1, 12, 0)


@pytest.fixture
def client(redis_server: RedisServer) -> Iterator[redis.Redis]:
    connection = redis.Redis.from_url(redis_server.url)
    yield connection
    connection.close()


def hold_together(replicas: list[ShardLeases]) -> None:
    """Each replica's ``hold`` at the same instant, as a process manager starts them."""
    barrier = threading.Barrier(len(replicas))

    def hold(replica: ShardLeases) -> None:
        barrier.wait()
        replica.hold()

    threads = [threading.Thread(target=hold, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()


def owners(client: redis.Redis, replicas: list[ShardLeases]) -> dict[int, str]:
    """Who Redis says holds each shard; each must agree with what the replica believes."""
    found: dict[int, str] = {}
    for shard in range(SHARDS):
        raw = client.get(keys.lease(NS, shard))
        if raw is None:
            continue
        owner = (raw.decode() if isinstance(raw, bytes) else str(raw)).split(":", 1)[1]
        found[shard] = owner
        holders = [r.owner for r in replicas if r.owns(shard)]
        assert holders == [owner], f"shard {shard}: Redis says {owner}, replicas {holders}"
    return found


def test_replicas_started_together_split_the_shards_and_a_dead_ones_move(
    client: redis.Redis,
) -> None:
    replicas = [ShardLeases(client, NS, SHARDS, ttl_ms=TTL_MS) for _ in range(3)]
    hold_together(replicas)
    hold_together(replicas)  # whoever took too many in the race gives some back
    hold_together(replicas)
    held = owners(client, replicas)
    assert sorted(held) == list(range(SHARDS))  # every shard has exactly one owner
    assert max(len(r.held) for r in replicas) == 2  # ceil(4 / 3)
    assert len({owner for owner in held.values()}) >= 2

    dead = max(replicas, key=lambda r: len(r.held))  # SIGKILLed: it never ticks again
    orphans = set(dead.held)
    alive = [r for r in replicas if r is not dead]
    for _ in range(8):  # the others tick on while its leases and heartbeat expire
        hold_together(alive)
        time.sleep(TTL_MS / 4000)
    dead.held.clear()  # what it believed dies with it
    held = owners(client, alive)
    assert sorted(held) == list(range(SHARDS))
    assert all(len(r.held) == 2 for r in alive)  # ceil(4 / 2)
    assert orphans <= set().union(*(r.held for r in alive))

    newcomer = ShardLeases(client, NS, SHARDS, ttl_ms=TTL_MS)  # a replica restarted
    for _ in range(3):
        hold_together([*alive, newcomer])
    held = owners(client, [*alive, newcomer])
    assert sorted(held) == list(range(SHARDS))
    assert max(len(r.held) for r in [*alive, newcomer]) == 2


def test_one_shard_keeps_the_unsharded_lease_key(client: redis.Redis) -> None:
    replica = ShardLeases(client, NS, 1, ttl_ms=TTL_MS)
    change = replica.hold()
    assert change.gained == [0] and change.dropped == []
    assert client.get(f"{NS}:scheduler:lease") is not None
    assert client.get(f"{NS}:scheduler:lease:0") is None
    replica.release()
    assert client.get(f"{NS}:scheduler:lease") is None
    assert client.zcard(keys.replicas(NS)) == 0  # a clean stop leaves the count at once


def test_shards_are_stable_and_spread() -> None:
    names = [f"alert_{i}" for i in range(4_000)]
    counts = Counter(shard_of(name, SHARDS) for name in names)
    assert sorted(counts) == list(range(SHARDS))
    assert min(counts.values()) > 900  # about 1,000 each
    assert shard_of("alert_7", SHARDS) == shard_of("alert_7", SHARDS)
    assert {shard_of(name, 1) for name in names} == {0}


# -- the scheduler on shards ---------------------------------------------------------------


class Sent:
    """What every replica sent, and who sent it (a thread-safe ``send``)."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.runs: list[tuple[str, str | None, int]] = []

    def by(self, replica: int) -> Any:
        def send(alert: str, slot: str | None, by: str, options: dict[str, Any]) -> str:
            with self.lock:
                self.runs.append((alert, slot, replica))
                return f"m{len(self.runs)}"

        return send

    def at(self, slot: datetime) -> Counter[str]:
        return Counter(alert for alert, s, _ in self.runs if s == slot.isoformat())


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STATE_DB_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("SENTINEL_METRICS", "off")
    alerts = [
        {"name": f"a{i:02d}", "query": "SELECT 'OK' AS status", "schedule": "* * * * *"}
        for i in range(ALERTS)
    ]
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump({"database": {"url": "sqlite://"}, "alerts": alerts}))
    return str(path)


def test_three_replicas_on_four_shards_send_each_slot_once_and_a_dead_ones_alerts_move(
    config: str, client: redis.Redis
) -> None:
    from workers.scheduler import FleetScheduler

    now = [S0 + timedelta(seconds=10)]
    sent = Sent()
    replicas = [
        FleetScheduler(
            config, client, sent.by(i), NS, clock=lambda: now[0], shards=SHARDS, lease_ttl_ms=TTL_MS
        )
        for i in range(3)
    ]
    everyone = {f"a{i:02d}" for i in range(ALERTS)}
    try:
        for _ in range(3):  # started together; the shares settle (and S0 is caught up once)
            tick_together(replicas)
        assert sent.at(S0) == Counter(everyone)

        now[0] = S0 + timedelta(minutes=1)
        tick_together(replicas)
        s1 = S0 + timedelta(minutes=1)
        assert sent.at(s1) == Counter(everyone)
        for alert, slot, replica in sent.runs:
            if slot == s1.isoformat():  # each sent by the replica that owns its shard
                assert replicas[replica].owns(alert), (alert, replica)

        dead = max(range(3), key=lambda i: len(replicas[i].shards.held))
        moved = {a for a in everyone if replicas[dead].owns(a)}
        assert moved
        alive = [r for i, r in enumerate(replicas) if i != dead]
        now[0] = s1 + timedelta(seconds=30)
        for _ in range(8):  # the others tick on while its leases and heartbeat expire
            tick_together(alive)
            time.sleep(TTL_MS / 4000)
        assert set().union(*(r.shards.held for r in alive)) == set(range(SHARDS))
        assert sent.at(s1) == Counter(everyone)  # taking over sent nothing twice

        s2 = s1 + timedelta(minutes=1)
        now[0] = s2
        tick_together(alive)
        assert sent.at(s2) == Counter(everyone)  # its alerts too, by their new owners
        assert {replica for alert, slot, replica in sent.runs if slot == s2.isoformat()} == {
            i for i in range(3) if i != dead
        }
        assert moved <= {a for a, slot, _ in sent.runs if slot == s2.isoformat()}
    finally:
        for scheduler in replicas:
            scheduler.deployment.close()


def tick_together(replicas: list[Any]) -> None:
    barrier = threading.Barrier(len(replicas))
    failures: list[BaseException] = []

    def tick(replica: Any) -> None:
        barrier.wait()
        try:
            replica.tick()
        except BaseException as exc:  # reported by the test thread
            failures.append(exc)

    threads = [threading.Thread(target=tick, args=(r,)) for r in replicas]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not failures, failures
