"""The fleet scheduler's fault handling in process: a real Redis, a real state database, and a
``send`` that fails on cue (the broker being away, as the scheduler sees it).

The real-process tests (tests/test_faults.py) show the outcome; these pin the mechanism that
gives it: runs held while the broker is away are each sent once it is back, including those
whose slot keys were already set, and a scheduler without Redis stands by with one log line.
"""

from __future__ import annotations

import logging
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import redis
import yaml

from sentinel.outages import Dependency, outages
from sentinel.scheduling.due import DueRun
from tests.fleet import RedisServer

SLOT = datetime(2026, 3, 1, 12, 0)
NEXT = datetime(2026, 3, 1, 12, 1)


@pytest.fixture
def config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    monkeypatch.setenv("STATE_DB_URL", f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("SENTINEL_METRICS", "off")
    alerts = [
        {"name": f"a{i}", "query": "SELECT 'OK' AS status", "schedule": "* * * * *"}
        for i in range(3)
    ]
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump({"database": {"url": "sqlite://"}, "alerts": alerts}))
    return str(path)


class FlakyBroker:
    """Records what is sent; the first ``failures`` sends raise as an unreachable Redis does."""

    def __init__(self, failures: int) -> None:
        self.failures = failures
        self.sent: list[tuple[str, str | None]] = []

    def __call__(self, alert: str, slot: str | None, by: str, options: dict[str, Any]) -> str:
        if self.failures:
            self.failures -= 1
            raise redis.exceptions.ConnectionError("Error 111 connecting: Connection refused")
        self.sent.append((alert, slot))
        return f"m{len(self.sent)}"


def test_runs_held_while_the_broker_is_away_are_each_sent_once_it_is_back(
    config: str, redis_server: RedisServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", redis_server.url)
    from workers.scheduler import FleetScheduler

    broker = FlakyBroker(failures=2)
    client = redis.Redis.from_url(redis_server.url)
    scheduler = FleetScheduler(config, client, broker, "tsched")
    assert scheduler.shards.take(0)
    runs = [DueRun(alert, SLOT) for alert in scheduler.loop.alerts]

    scheduler.enqueue_runs(runs)  # keys set, the first send fails: all three are held
    assert broker.sent == [] and len(scheduler.unsent) == 3 and scheduler.unclaimed == []
    later = [DueRun(alert, NEXT) for alert in scheduler.loop.alerts]
    scheduler.enqueue_runs(later)  # still away: the next slot's runs are held behind them
    assert broker.sent == [] and len(scheduler.unsent) == 3 and len(scheduler.unclaimed) == 3
    scheduler.enqueue_runs([])  # back
    expected = [(f"a{i}", slot.isoformat()) for slot in (SLOT, NEXT) for i in range(3)]
    assert sorted(broker.sent) == sorted(expected)
    assert scheduler.unsent == [] and scheduler.unclaimed == []
    scheduler.enqueue_runs(runs)  # the same slot again: the keys say it was enqueued
    assert len(broker.sent) == 6
    assert scheduler.recovery.awaiting == 6  # and the state database will be asked about each
    scheduler.deployment.close()
    client.close()


def test_without_redis_the_scheduler_stands_by_and_logs_the_outage_once(
    config: str, caplog: pytest.LogCaptureFixture, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("REDIS_URL", "redis://127.0.0.1:1/0")
    from workers.scheduler import FleetScheduler

    outages.ok(Dependency.REDIS)  # the registry is per process: start from a clean slate
    caplog.set_level(logging.INFO, logger="sentinel.outages")
    client = redis.Redis.from_url("redis://127.0.0.1:1/0", socket_connect_timeout=1)
    scheduler = FleetScheduler(config, client, FlakyBroker(0), "tsched")
    for _ in range(5):
        assert scheduler.tick() == (False, 1.0)
    lines = [r.getMessage() for r in caplog.records if r.name == "sentinel.outages"]
    assert len(lines) == 1 and lines[0].startswith("redis unavailable: ")
    assert outages.current()[Dependency.REDIS].failures == 5
    outages.ok(Dependency.REDIS)
    scheduler.deployment.close()
    client.close()
