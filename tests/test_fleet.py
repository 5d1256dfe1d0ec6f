"""The fleet for real: Redis, ``dramatiq workers`` and ``sqlsentinel scheduler`` processes.

Alerts run every minute; each test sees the slot caught up at start and at least one more minute
boundary, so it lasts about a minute or two.
"""

from __future__ import annotations

import json
import random
import subprocess
import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import redis
import sqlalchemy as sa
import yaml

from sentinel.models import utcnow
from tests.commands import sqlsentinel
from tests.databases import DatabaseFactory
from tests.fleet import (
    ALERTING,
    FleetHarness,
    RedisServer,
    assert_each_slot_once,
    assert_notified_once,
    configure,
    minute,
    runs_by_slot,
    wait_for_slots,
    write_config,
)
from tests.servers import HTTPTestServer


@pytest.mark.timeout(300)
def test_two_schedulers_and_two_worker_groups_run_each_slot_once(
    tmp_path: Path, fleet: FleetHarness, postgres_url: str, http_server: HTTPTestServer
) -> None:
    """500 alerts due every minute, 2 scheduler replicas, 4 worker processes."""
    config = write_config(tmp_path, postgres_url, http_server, alerting=250, quiet=250)
    configure(fleet, config, postgres_url)
    # 4 processes x 4 threads: each thread may hold a state and a data connection, and the
    # PostgreSQL here allows 100 in all.
    fleet.worker(processes=2, threads=4)
    fleet.worker(processes=2, threads=4)
    started = utcnow()
    fleet.scheduler(config)
    fleet.scheduler(config)
    first, second = minute(started), minute(started) + timedelta(minutes=1)
    slots = [first, second]
    wait_for_slots(postgres_url, slots, (second - utcnow()).total_seconds() + 60, total=500)
    assert_each_slot_once(postgres_url, slots, alerting=250, quiet=250)
    assert_notified_once(http_server, alerting=250)
    logs = fleet.logs()
    assert logs.count("scheduler lease taken") == 1, logs[-3000:]


@pytest.mark.timeout(400)
def test_sigkilled_workers_and_scheduler_lose_nothing(
    tmp_path: Path, fleet: FleetHarness, postgres_url: str, http_server: HTTPTestServer
) -> None:
    config = write_config(tmp_path, postgres_url, http_server)
    configure(fleet, config, postgres_url)
    rng = random.Random(7)
    workers = [fleet.worker(processes=1, threads=4), fleet.worker(processes=1, threads=4)]
    started = utcnow()
    active = fleet.scheduler(config)
    time.sleep(3)
    standby = fleet.scheduler(config)
    first, second = minute(started), minute(started) + timedelta(minutes=1)
    # Kill the active scheduler once, and worker groups at random moments around the boundary.
    fleet.kill(active)
    while utcnow() < second + timedelta(seconds=8):
        time.sleep(rng.uniform(0.5, 3.0))
        victim = rng.randrange(len(workers))
        fleet.kill(workers[victim])
        workers[victim] = fleet.worker(processes=1, threads=4)
    wait_for_slots(postgres_url, [first, second], timeout=120)
    assert standby.poll() is None
    assert_each_slot_once(postgres_url, [first, second])
    assert_notified_once(http_server)


@pytest.mark.timeout(300)
def test_three_sharded_schedulers_split_the_alerts_and_a_killed_ones_shards_move(
    tmp_path: Path,
    fleet: FleetHarness,
    redis_server: RedisServer,
    postgres_url: str,
    http_server: HTTPTestServer,
) -> None:
    """3 replicas on 4 shards, started together: each shard has one owner, and when the replica
    holding the most is SIGKILLed, its shards move and no slot is missed or run twice."""
    config = write_config(tmp_path, postgres_url, http_server)
    configure(fleet, config, postgres_url)
    fleet.env["SENTINEL_SCHEDULER_SHARDS"] = "4"
    fleet.worker(processes=2, threads=4)
    started = utcnow()
    replicas = [fleet.scheduler(config) for _ in range(3)]
    first, second = minute(started), minute(started) + timedelta(minutes=1)
    wait_for_slots(postgres_url, [first], timeout=60)
    client = redis.Redis.from_url(redis_server.url)
    namespace = fleet.env["SENTINEL_NAMESPACE"]
    holders = settled_shard_holders(client, namespace, lambda pid: True)
    assert sorted(holders) == [0, 1, 2, 3], fleet.logs()[-3000:]
    assert len(set(holders.values())) >= 2  # shared out, not all on one replica
    victim_pid = max(set(holders.values()), key=list(holders.values()).count)
    [victim] = [p for p in replicas if p.pid == victim_pid]
    fleet.kill(victim)
    moved = [shard for shard, pid in holders.items() if pid == victim_pid]
    holders = settled_shard_holders(client, namespace, lambda pid: pid != victim_pid)
    assert sorted(holders) == [0, 1, 2, 3] and victim_pid not in holders.values(), holders
    wait_for_slots(postgres_url, [second], timeout=(second - utcnow()).total_seconds() + 60)
    assert_each_slot_once(postgres_url, [first, second])
    assert_notified_once(http_server)
    logs = fleet.logs()
    for shard in moved:  # taken once at the start, and again by a survivor
        assert logs.count(f"lease taken for shard {shard} of 4") >= 2, logs[-3000:]
    assert all(p.poll() is None for p in replicas if p is not victim)
    client.close()


def settled_shard_holders(
    client: redis.Redis, namespace: str, acceptable: Callable[[int], bool]
) -> dict[int, int]:
    """Which scheduler process (pid) holds each shard's lease, as Redis says, once every shard
    is held by an acceptable one and none holds more than its share, 2 (or 30 s have passed):
    shares move for a tick or two."""
    deadline = time.monotonic() + 30
    while True:
        holders = {}
        for shard in range(4):
            raw = client.get(f"{namespace}:scheduler:lease:{shard}")
            value = raw.decode() if isinstance(raw, bytes) else str(raw or "")
            if value and not value.startswith("pending:"):
                holders[shard] = int(value.split(":")[2])  # {epoch}:{host}:{pid}:{nonce}
        pids = list(holders.values())
        settled = len(holders) == 4 and all(acceptable(p) and pids.count(p) <= 2 for p in pids)
        if settled or time.monotonic() > deadline:
            return holders
        time.sleep(0.5)


@pytest.mark.timeout(300)
def test_redis_restart_is_survived(
    tmp_path: Path,
    fleet: FleetHarness,
    redis_server: RedisServer,
    postgres_url: str,
    http_server: HTTPTestServer,
) -> None:
    config = write_config(tmp_path, postgres_url, http_server)
    configure(fleet, config, postgres_url)
    fleet.worker(processes=1, threads=4)
    started = utcnow()
    fleet.scheduler(config)
    first, second = minute(started), minute(started) + timedelta(minutes=1)
    wait_for_slots(postgres_url, [first], timeout=60)
    redis_server.restart()  # everything queued is gone: Redis keeps nothing on disk here
    wait_for_slots(postgres_url, [second], timeout=(second - utcnow()).total_seconds() + 60)
    assert_each_slot_once(postgres_url, [first, second])
    assert_notified_once(http_server)


@pytest.mark.timeout(300)
def test_run_lost_with_its_worker_is_recovered_within_the_bound(
    tmp_path: Path, fleet: FleetHarness, postgres_url: str
) -> None:
    """A worker SIGKILLed mid-query leaves a claimed run; the sweeper re-enqueues it after
    timeout + grace, and the new claim takes the dead one over."""
    path = tmp_path / "slow.yaml"
    alert = {
        "name": "slow",
        "query": "SELECT 'OK' AS status FROM pg_sleep(4)",
        "schedule": "* * * * *",
        "timeout": "10s",
    }
    path.write_text(yaml.safe_dump({"database": {"url": postgres_url}, "alerts": [alert]}))
    configure(fleet, str(path), postgres_url)
    worker = fleet.worker(processes=1, threads=2)
    started = utcnow()
    fleet.scheduler(str(path))
    slot = minute(started)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not runs_by_slot(postgres_url).get(slot):
        time.sleep(0.2)
    assert runs_by_slot(postgres_url)[slot] == [("slow", "running")]
    fleet.kill(worker)  # mid-query: the claim stays "running", the message unacknowledged
    killed_at = time.monotonic()
    fleet.worker(processes=1, threads=2)
    while time.monotonic() < killed_at + 90 and runs_by_slot(postgres_url)[slot] != [
        ("slow", "success")
    ]:
        time.sleep(1)
    assert runs_by_slot(postgres_url)[slot] == [("slow", "success")]
    # timeout 10s + grace 10s + one sweep interval (10s) + the query itself, with some slack
    assert time.monotonic() - killed_at < 50
    assert "re-enqueueing alert=slow" in fleet.logs()


def one_alert(tmp_path: Path, url: str, status: str = "ALERT") -> str:
    path = tmp_path / "one.yaml"
    alert = {"name": "one", "query": f"SELECT '{status}' AS status, 7 AS actual_value"}
    alert["schedule"] = "0 0 1 1 *"  # never due during the test: only manual runs
    path.write_text(yaml.safe_dump({"database": {"url": url}, "alerts": [alert]}))
    return str(path)


@pytest.mark.timeout(120)
def test_enqueue_sends_manual_runs_and_waits_for_the_outcome(
    tmp_path: Path, fleet: FleetHarness, postgres_url: str
) -> None:
    config = one_alert(tmp_path, postgres_url)
    configure(fleet, config, postgres_url)
    fleet.worker(processes=1, threads=2)
    wait = ["--wait", "--json", "--timeout", "60"]
    proc = sqlsentinel("enqueue", config, *wait, env=fleet.env, timeout=90)
    assert proc.returncode == 1, proc.stderr  # the alert fired
    [record] = json.loads(proc.stdout)
    assert record["triggered_by"] == "CLI" and record["status"] == "failure"
    assert record["actual_value"] == 7 and record["scheduled_for"] is None
    ids = sqlsentinel("enqueue", config, env=fleet.env)
    assert ids.returncode == 0, ids.stderr
    assert ids.stdout.strip().endswith("  one")
    status = sqlsentinel("status", config, env=fleet.env)
    assert status.returncode == 0, status.stderr
    assert f"{fleet.env['SENTINEL_NAMESPACE']}.alerts" in status.stdout


@pytest.mark.timeout(120)
def test_a_due_run_that_waited_too_long_is_recorded_as_skipped(
    tmp_path: Path, fleet: FleetHarness, postgres_url: str
) -> None:
    config = one_alert(tmp_path, postgres_url)
    configure(fleet, config, postgres_url)
    fleet.env["SENTINEL_MAX_LATENESS_SECONDS"] = "1"
    send = (
        "from workers.actors import execute_alert; "
        "execute_alert.send(alert_name='one', scheduled_for='2026-01-01T00:00:00', "
        "triggered_by='CRON')"
    )
    subprocess.run([sys.executable, "-c", send], env=fleet.env, check=True, timeout=60)
    time.sleep(2)  # the message ages in the queue while no worker runs
    fleet.worker(processes=1, threads=2)
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and not runs_by_slot(postgres_url):
        time.sleep(0.5)
    assert runs_by_slot(postgres_url) == {datetime(2026, 1, 1): [("one", "skipped")]}
    # ... and, as Dramatiq's AgeLimit does, the message is failed into the dead-letter queue.
    ns = fleet.env["SENTINEL_NAMESPACE"]
    client = redis.Redis.from_url(fleet.env["REDIS_URL"])
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline and not client.zcard(f"{ns}:{ns}.alerts.XQ"):
        time.sleep(0.2)
    assert client.zcard(f"{ns}:{ns}.alerts.XQ") == 1
    client.close()


@pytest.mark.timeout(240)
def test_endpoint_down_for_a_while_gets_every_notification_once_it_returns(
    tmp_path: Path, fleet: FleetHarness, postgres_url: str, http_server: HTTPTestServer
) -> None:
    config = write_config(tmp_path, postgres_url, http_server)
    configure(fleet, config, postgres_url)
    fleet.env.update(
        SENTINEL_DELIVERY_ROUND_BACKOFF_SECONDS="3",
        SENTINEL_DELIVERY_INITIAL_WAIT_SECONDS="0.2",
    )
    http_server.down_for(25)
    fleet.worker(processes=1, threads=4)
    fleet.scheduler(config)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and http_server.delivered < ALERTING:
        time.sleep(1)
    delivered = [r.headers.get("idempotency-key") for r in http_server.requests if r.status == 200]
    assert len(delivered) == ALERTING and len(set(delivered)) == ALERTING
    assert len(http_server.requests) > ALERTING  # the outage was really retried through


@pytest.mark.timeout(240)
def test_a_permanently_failing_endpoint_ends_as_a_recorded_failure(
    tmp_path: Path, fleet: FleetHarness, postgres_url: str, http_server: HTTPTestServer
) -> None:
    config = one_alert(tmp_path, postgres_url)
    data = yaml.safe_load(Path(config).read_text())
    data["alerts"][0]["notify"] = [{"channel": "webhook", "webhook_url": http_server.url_for("/x")}]
    Path(config).write_text(yaml.safe_dump(data))
    configure(fleet, config, postgres_url)
    fleet.env.update(
        SENTINEL_DELIVERY_ROUND_BACKOFF_SECONDS="2",
        SENTINEL_DELIVERY_INITIAL_WAIT_SECONDS="0.1",
        SENTINEL_DELIVERY_MAX_ROUNDS="2",
    )
    http_server.down_for(3600, status=502)
    fleet.worker(processes=1, threads=2)
    fleet.scheduler(config)  # keeps sweeping pending notifications
    assert sqlsentinel("enqueue", config, env=fleet.env).returncode == 0
    deadline = time.monotonic() + 90
    history = ""
    while time.monotonic() < deadline and "webhook failed" not in history:
        time.sleep(2)
        history = sqlsentinel("history", config, env=fleet.env).stdout
    assert "webhook failed" in history and "HTTP 502" in history
    assert len(http_server.requests) == 8  # 2 rounds of 4 attempts, then given up


@pytest.mark.timeout(240)
def test_a_manual_run_gets_its_alerts_time_limit_not_dramatiqs_default(
    tmp_path: Path, fleet: FleetHarness, postgres_url: str
) -> None:
    """An alert with a 75 s timeout whose query takes 65 s: Dramatiq's default limit (60 s)
    would interrupt it; the alert's own (timeout + 30 s) lets it finish, and it is recorded."""
    path = tmp_path / "slow.yaml"
    alert = {
        "name": "slow",
        "query": "SELECT 'OK' AS status FROM pg_sleep(65)",
        "schedule": "0 0 1 1 *",  # never due during the test: only the manual run
        "timeout": "75s",
    }
    path.write_text(yaml.safe_dump({"database": {"url": postgres_url}, "alerts": [alert]}))
    configure(fleet, str(path), postgres_url)
    fleet.worker(processes=1, threads=1)
    wait = ["--wait", "--json", "--timeout", "150"]
    proc = sqlsentinel("enqueue", str(path), *wait, env=fleet.env, timeout=200)
    assert proc.returncode == 0, proc.stderr + fleet.logs()[-3000:]
    [record] = json.loads(proc.stdout)
    assert record["status"] == "success" and record["execution_duration_ms"] > 60_000
    assert "TimeLimitExceeded" not in fleet.logs()


@pytest.mark.timeout(120)
def test_the_fleet_scheduler_keeps_state_where_state_db_says(
    tmp_path: Path, fleet: FleetHarness, postgres_databases: DatabaseFactory
) -> None:
    """``scheduler --state-db URL`` with a broker: the state lives at URL, not in the config's
    own database."""
    data, state = postgres_databases.create("data"), postgres_databases.create("state")
    config = one_alert(tmp_path, data, status="OK")
    configure(fleet, config, state)
    del fleet.env["STATE_DB_URL"]  # only the flag says where the state lives
    scheduler = fleet.command("scheduler", "scheduler", config, "--state-db", state)
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline and "sqlsentinel_configs" not in tables(state):
        time.sleep(0.5)
    assert scheduler.poll() is None, fleet.logs()[-3000:]
    assert "sqlsentinel_configs" in tables(state)
    assert not any(t.startswith("sqlsentinel_") for t in tables(data))


def tables(url: str) -> set[str]:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        return set(sa.inspect(engine).get_table_names())
    finally:
        engine.dispose()
