"""Scheduled runs pushed through Dramatiq's Redis enqueue script in pipelined round trips.

Against a real ``redis-server`` and Dramatiq's real ``RedisBroker`` and ``Worker``: what
:class:`~workers.pipelined_enqueue.PipelinedEnqueue` writes is what ``RedisBroker.enqueue`` would
(a worker consumes, acks and runs each message once), messages built ahead carry their slot's
time, and the fleet scheduler with it still sets each slot key before pushing, holds what a dead
Redis could not take, and pushes nothing for slots another replica keyed. These pin the use of
Dramatiq internals that the version range in pyproject.toml is checked against.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import dramatiq
import pytest
import yaml
from dramatiq.brokers.redis import RedisBroker
from dramatiq.middleware import Middleware

from sentinel.scheduling.due import DueRun
from tests.fleet import RedisServer
from workers.pipelined_enqueue import PipelinedEnqueue

SLOT = datetime(2026, 3, 1, 12, 0)
NS = "tpipe"
QUEUE = f"{NS}.alerts"


class Hooks(Middleware):
    """Records the enqueue hooks the broker emits."""

    def __init__(self) -> None:
        self.before: list[str] = []
        self.after: list[str] = []

    def before_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        self.before.append(message.message_id)

    def after_enqueue(self, broker: Any, message: Any, delay: Any) -> None:
        self.after.append(message.message_id)


@pytest.fixture
def world(
    tmp_path: Path, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[tuple[RedisBroker, dramatiq.Actor[..., None], list[dict[str, Any]], Hooks, str]]:
    monkeypatch.setenv("STATE_DB_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("SENTINEL_METRICS", "off")
    hooks = Hooks()
    broker = RedisBroker(url=redis_server.url, namespace=NS, middleware=[hooks])  # type: ignore[no-untyped-call]
    calls: list[dict[str, Any]] = []

    def execute(alert_name: str, scheduled_for: str | None = None, triggered_by: str = "") -> None:
        calls.append({"alert": alert_name, "slot": scheduled_for, "by": triggered_by})

    actor: dramatiq.Actor[..., None] = dramatiq.Actor(
        execute, broker=broker, actor_name="execute-alert", queue_name=QUEUE, priority=0, options={}
    )
    alerts = [
        {"name": f"a{i}", "query": "SELECT 'OK' AS status", "schedule": "* * * * *"}
        for i in range(5)
    ]
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump({"database": {"url": "sqlite://"}, "alerts": alerts}))
    yield broker, actor, calls, hooks, str(path)
    broker.close()


def _runs(config: str, slot: datetime) -> list[DueRun]:
    from sentinel.config import load_config

    return [DueRun(alert, slot) for alert in load_config(config).alerts]


def _stored(broker: RedisBroker) -> list[dict[str, Any]]:
    raw_ids: list[bytes] = broker.client.lrange(f"{NS}:{QUEUE}", 0, -1)  # type: ignore[assignment]
    ids = [raw.decode() for raw in raw_ids]
    data = broker.client.hmget(f"{NS}:{QUEUE}.msgs", ids)
    return [dict(json.loads(raw), redis_id=rid) for rid, raw in zip(ids, data, strict=True)]


def test_pushed_messages_are_what_the_broker_writes_and_a_worker_runs_each_once(
    world: tuple[RedisBroker, Any, list[dict[str, Any]], Hooks, str],
) -> None:
    broker, actor, calls, hooks, config = world
    runs = _runs(config, SLOT)
    pipeline = PipelinedEnqueue(broker, actor)
    pipeline.prepare(runs[:3], SLOT - timedelta(seconds=10))  # ahead; the other two at the push
    ids = pipeline.push(runs)
    assert len(pipeline) == 0 and len(set(ids)) == 5
    broker.enqueue(actor.message_with_options(kwargs={"alert_name": "plain"}))  # for comparison

    stored = _stored(broker)
    assert [m["message_id"] for m in stored[:5]] == ids
    plain = stored[5]
    for message in stored:
        assert set(message) == set(plain)
        assert message["queue_name"] == QUEUE and message["actor_name"] == "execute-alert"
        assert message["options"]["redis_message_id"] == message["redis_id"]
    assert [m["kwargs"] for m in stored[:5]] == [
        {"alert_name": f"a{i}", "scheduled_for": SLOT.isoformat(), "triggered_by": "CRON"}
        for i in range(5)
    ]
    assert hooks.before[:5] == ids and hooks.after[:5] == ids

    # Built 10 s ahead: stamped with the slot's wall-clock time, not the time it was built.
    now_ms = time.time() * 1000
    assert stored[0]["message_timestamp"] > now_ms + 8_000
    assert abs(stored[4]["message_timestamp"] - now_ms) < 5_000

    worker = dramatiq.Worker(broker, worker_timeout=100, worker_threads=2)
    worker.start()
    try:
        deadline = time.monotonic() + 20
        while len(calls) < 6 and time.monotonic() < deadline:
            time.sleep(0.05)
        broker.join(QUEUE, timeout=10_000)
        worker.join()
    finally:
        worker.stop()
    assert sorted(c["alert"] for c in calls) == ["a0", "a1", "a2", "a3", "a4", "plain"]
    assert broker.client.hlen(f"{NS}:{QUEUE}.msgs") == 0  # each acked


def test_messages_built_for_a_slot_that_passed_unpushed_are_discarded(
    world: tuple[RedisBroker, Any, list[dict[str, Any]], Hooks, str],
) -> None:
    broker, actor, _, _, config = world
    pipeline = PipelinedEnqueue(broker, actor)
    pipeline.prepare(_runs(config, SLOT), SLOT - timedelta(seconds=5))
    later = SLOT + timedelta(minutes=1)
    pipeline.prepare(_runs(config, later), SLOT)
    assert len(pipeline) == 10
    pipeline.discard_before(later)
    assert len(pipeline) == 5 and all(pipeline.is_prepared(r) for r in _runs(config, later))


def test_the_runs_of_the_next_slot_are_known_ahead_and_popped_as_they_were_built(
    world: tuple[RedisBroker, Any, list[dict[str, Any]], Hooks, str],
) -> None:
    from sentinel.config import load_config
    from sentinel.scheduling.due import DueRuns

    due = DueRuns(load_config(world[4]).alerts, SLOT - timedelta(seconds=30))
    ahead = due.runs_at(SLOT)
    assert [(r.alert.name, r.slot) for r in ahead] == [(f"a{i}", SLOT) for i in range(5)]
    assert due.next_fire() == SLOT and due.pop_due(SLOT - timedelta(seconds=1)) == []
    popped = due.pop_due(SLOT)
    assert popped == ahead and all(p is a for p, a in zip(popped, ahead, strict=True))
    assert due.runs_at(SLOT) == [] and due.next_fire() == SLOT + timedelta(minutes=1)


def _scheduler(config: str, broker: RedisBroker, actor: Any, clock: Any) -> Any:
    from workers.scheduler import FleetScheduler

    def send(alert: str, slot: str | None, by: str, options: dict[str, Any]) -> str:
        raise AssertionError("scheduled runs go through the pipeline")

    pipeline = PipelinedEnqueue(broker, actor)
    return FleetScheduler(config, broker.client, send, NS, clock=clock, pipeline=pipeline)


def test_the_scheduler_builds_the_next_slot_ahead_and_pushes_it_once_at_the_boundary(
    world: tuple[RedisBroker, Any, list[dict[str, Any]], Hooks, str],
) -> None:
    broker, actor, _, _, config = world
    now = [datetime.now(UTC).replace(tzinfo=None, second=0, microsecond=0)]
    boundary = now[0] + timedelta(minutes=1)
    now[0] = boundary - timedelta(seconds=20)
    scheduler = _scheduler(config, broker, actor, lambda: now[0])
    other = _scheduler(config, broker, actor, lambda: now[0])  # a replica overlapping a restart
    try:
        assert scheduler.shards.take(0)
        active, _ = scheduler.tick()
        assert active and len(scheduler.pipeline) == 5  # built 20 s ahead
        assert broker.client.llen(f"{NS}:{QUEUE}") == 0  # nothing sent before the slot

        now[0] = boundary
        scheduler.tick()
        stored = _stored(broker)
        assert sorted(m["kwargs"]["alert_name"] for m in stored) == [f"a{i}" for i in range(5)]
        assert {m["kwargs"]["scheduled_for"] for m in stored} == {boundary.isoformat()}
        assert len(scheduler.pipeline) == 0 and scheduler.recovery.awaiting == 5
        assert all(broker.client.exists(f"{NS}:slot:a{i}:{boundary.isoformat()}") for i in range(5))

        # The same slot again, from the other replica: its keys are taken, nothing is pushed.
        other.pipeline.prepare(_runs(config, boundary), boundary - timedelta(seconds=5))
        other.enqueue_runs(_runs(config, boundary))
        assert broker.client.llen(f"{NS}:{QUEUE}") == 5
        assert other.recovery.awaiting == 5  # and its recovery checks they ran
    finally:
        scheduler.deployment.close()
        other.deployment.close()


def test_runs_the_pipeline_could_not_push_are_held_and_pushed_once_redis_is_back(
    world: tuple[RedisBroker, Any, list[dict[str, Any]], Hooks, str],
    redis_server: RedisServer,
) -> None:
    broker, actor, _, _, config = world
    scheduler = _scheduler(config, broker, actor, lambda: SLOT)
    try:
        assert scheduler.shards.take(0)
        runs = _runs(config, SLOT)
        scheduler.pipeline.prepare(runs, SLOT - timedelta(seconds=5))
        claims = scheduler._claim_slots  # the keys are set; Redis dies before the push

        def claim_then_die(chunk: list[DueRun]) -> list[DueRun]:
            claimed: list[DueRun] = claims(chunk)
            redis_server.stop()
            return claimed

        scheduler._claim_slots = claim_then_die
        scheduler.enqueue_runs(runs)
        assert len(scheduler.unsent) == 5 and scheduler.unclaimed == []
        scheduler._claim_slots = claims

        redis_server.start()  # empty: a restart without persistence
        broker.client.connection_pool.disconnect()
        scheduler.enqueue_runs([])
        stored = _stored(broker)
        assert sorted(m["kwargs"]["alert_name"] for m in stored) == [f"a{i}" for i in range(5)]
        assert scheduler.unsent == [] and scheduler.unclaimed == []
    finally:
        scheduler.deployment.close()


def test_losing_the_lease_drops_what_was_built_ahead(
    world: tuple[RedisBroker, Any, list[dict[str, Any]], Hooks, str],
) -> None:
    broker, actor, _, _, config = world
    scheduler = _scheduler(config, broker, actor, lambda: SLOT)
    try:
        assert scheduler.shards.take(0)
        later = SLOT + timedelta(minutes=1)
        scheduler.pipeline.prepare(_runs(config, later), SLOT)
        broker.client.delete(f"{NS}:scheduler:lease")  # expired; another replica may take it
        assert scheduler._hold_shards() is True  # took it back at once, under a new epoch
        assert not any(scheduler.pipeline.is_prepared(r) for r in _runs(config, later))
    finally:
        scheduler.deployment.close()
