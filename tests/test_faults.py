"""Faults, for real: replicas that start together, Redis killed and restarted empty, the state
database refusing connections, RabbitMQ as the broker, and all of it at once.

Each test asserts the promises, not the mechanism: every ``(alert, slot)`` ran exactly once, every
transition was notified exactly once, nothing is left ``running``, and every process that the test
did not kill is still alive. Outages are logged once per process, not once per attempt.
"""

from __future__ import annotations

import os
import random
import sqlite3
import subprocess
import sys
import time
from datetime import datetime, timedelta
from pathlib import Path

import httpx
import pytest
import redis
import sqlalchemy as sa

from sentinel.models import utcnow
from sentinel.store.schema import HEAD_REVISION
from tests.commands import sqlsentinel
from tests.databases import DatabaseFactory
from tests.fleet import (
    FleetHarness,
    RedisServer,
    assert_each_slot_once,
    assert_nothing_left_running,
    assert_notified_once,
    configure,
    delete_rabbitmq_queues,
    free_port,
    minute,
    runs_by_slot,
    wait_for_slots,
    write_config,
)
from tests.servers import HTTPTestServer

OUTAGE_LINE = "{} unavailable:"


def sleep_until(moment: datetime) -> None:
    time.sleep(max(0.0, (moment - utcnow()).total_seconds()))


def wait_for_a_complete_slot(
    url: str, candidates: list[datetime], timeout: float, total: int
) -> datetime:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = runs_by_slot(url)
        for slot in candidates:
            if len([s for _, s in found.get(slot, []) if s != "running"]) >= total:
                return slot
        time.sleep(1)
    raise AssertionError(f"no slot of {candidates} completed: {sorted(found)}")


def scalar(url: str, sql: str) -> object:
    engine = sa.create_engine(url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return conn.execute(sa.text(sql)).scalar()
    finally:
        engine.dispose()


def assert_all_alive(fleet: FleetHarness, ended: list[subprocess.Popen[bytes]]) -> None:
    """Every process but those the test killed (or that finish by design) is still running."""
    exited = [p.args for p in fleet.processes if p not in ended and p.poll() is not None]
    assert exited == [], f"processes exited by themselves: {exited}\n{fleet.logs()[-4000:]}"


def assert_one_line_per_outage(fleet: FleetHarness, dependency: str, outages: int = 1) -> None:
    """Each process logged the outage once (a line per attempt would be a line per second)."""
    for path in sorted(fleet.directory.glob("*.log")):
        count = path.read_text(errors="replace").count(OUTAGE_LINE.format(dependency))
        assert count <= outages, f"{path.name}: {count} lines for {outages} outage(s)"


def assert_clean_logs(fleet: FleetHarness) -> None:
    logs = fleet.logs()
    assert "Traceback" not in logs, logs[-4000:]
    assert "too many connections" not in logs and "too many clients" not in logs


# -- replicas started at the same instant ------------------------------------------------------


@pytest.mark.timeout(180)
@pytest.mark.parametrize("backend", ["sqlite", "postgresql", "mariadb"])
def test_every_process_started_at_the_same_instant_on_an_empty_state_database(
    backend: str, request: pytest.FixtureRequest, tmp_path: Path, fleet: FleetHarness
) -> None:
    """init, run, api, scheduler and worker replicas, all at once, as a process manager starts
    them: the schema is migrated once, one config version stored, nothing fails or exits."""
    if backend == "sqlite":
        state_url = f"sqlite:///{tmp_path / 'state.db'}"
        data_url = f"sqlite:///{tmp_path / 'data.db'}"
        sqlite3.connect(tmp_path / "data.db").close()
    else:
        factory: DatabaseFactory = request.getfixturevalue(
            "postgres_databases" if backend == "postgresql" else "mariadb_databases"
        )
        state_url = data_url = factory.create("race")
    quiet = 20
    config = write_config(tmp_path, data_url, None, alerting=0, quiet=quiet)
    configure(fleet, config, state_url)
    ports = [free_port(), free_port()]
    one_shot = [fleet.command("init", "init") for _ in range(3)]
    one_shot += [fleet.command("run", "run", config) for _ in range(3)]
    for port in ports:
        fleet.command("api", "api", config, "--port", str(port))
    fleet.scheduler(config)
    fleet.scheduler(config)
    fleet.worker(processes=1, threads=2)
    fleet.worker(processes=1, threads=2)
    started = utcnow()

    for process in one_shot:
        assert process.wait(timeout=90) == 0, fleet.logs()[-4000:]
    # Under load the schedulers may come up after the next boundary: either minute is the one
    # they catch up.
    candidates = [minute(started), minute(started) + timedelta(minutes=1)]
    slot = wait_for_a_complete_slot(state_url, candidates, timeout=90, total=quiet)
    time.sleep(2)  # a duplicate, if there were one, has time to show
    assert_each_slot_once(state_url, [slot], alerting=0, quiet=quiet)
    for runs in runs_by_slot(state_url).values():
        assert len(runs) == len({name for name, _ in runs}), "an alert ran twice in one slot"
    for port in ports:
        ready = httpx.get(f"http://127.0.0.1:{port}/ready", timeout=10)
        assert ready.status_code == 200, ready.text
    assert_all_alive(fleet, ended=one_shot)
    assert scalar(state_url, "SELECT version_num FROM sqlsentinel_alembic_version") == HEAD_REVISION
    assert scalar(state_url, "SELECT count(*) FROM sqlsentinel_configs") == 1
    manual = "SELECT count(*) FROM sqlsentinel_executions WHERE triggered_by = 'CLI'"
    assert scalar(state_url, manual) == 3 * quiet
    assert_nothing_left_running(state_url)
    assert_clean_logs(fleet)
    errors = [
        line
        for line in fleet.logs().splitlines()
        if " ERROR " in line or "[ERROR]" in line or line.startswith("error:")
    ]
    assert errors == []


# -- Redis killed and restarted empty ----------------------------------------------------------


@pytest.mark.timeout(300)
def test_redis_killed_and_restarted_empty_with_a_minute_of_runs_queued(
    tmp_path: Path,
    fleet: FleetHarness,
    redis_server: RedisServer,
    postgres_url: str,
    http_server: HTTPTestServer,
) -> None:
    """The queued runs die with Redis; the state database knows they are owed."""
    # 100 runs of 0.2 s on 2 threads: the minute's runs wait in the queue for about 10 s.
    config = write_config(
        tmp_path,
        postgres_url,
        http_server,
        alerting=25,
        quiet=75,
        query_suffix=" FROM pg_sleep(0.2)",
    )
    configure(fleet, config, postgres_url)
    fleet.worker(processes=1, threads=2)
    fleet.scheduler(config)
    fleet.scheduler(config)
    started = utcnow()
    first, second = minute(started), minute(started) + timedelta(minutes=1)
    wait_for_slots(postgres_url, [first], timeout=60, total=100)
    sleep_until(second + timedelta(seconds=3))
    queue = f"{fleet.env['SENTINEL_NAMESPACE']}:{fleet.env['SENTINEL_NAMESPACE']}.alerts"
    client = redis.Redis.from_url(redis_server.url)
    queued = int(client.llen(queue))
    client.close()
    assert queued > 0, "the test needs runs waiting in the queue when Redis dies"
    redis_server.stop()  # SIGKILL: nothing on disk, so it comes back empty
    time.sleep(5)
    redis_server.start()
    wait_for_slots(postgres_url, [second], timeout=120, total=100)
    assert_each_slot_once(postgres_url, [first, second], alerting=25, quiet=75)
    assert_notified_once(http_server, alerting=25)
    assert_nothing_left_running(postgres_url)
    assert_all_alive(fleet, ended=[])
    assert_one_line_per_outage(fleet, "redis")
    assert_clean_logs(fleet)


# -- the state database refusing connections --------------------------------------------------


@pytest.mark.timeout(360)
def test_state_database_refusing_connections_for_15_seconds_within_a_connection_budget(
    tmp_path: Path,
    fleet: FleetHarness,
    postgres_databases: DatabaseFactory,
    http_server: HTTPTestServer,
) -> None:
    """The state PostgreSQL refuses every login and drops every connection for 15 s in the
    middle of a minute's runs; the fleet connects as a role allowed exactly the README's budget.

    No run becomes an error (the outage is ours, not the warehouse's), none is lost or doubled,
    and no process exits."""
    state_admin, data_admin = postgres_databases.create("state"), postgres_databases.create("data")
    threads, worker_groups, schedulers = 4, 2, 2
    # README: a worker process opens at most threads + 1 state and threads data connections; a
    # scheduler 2 state connections.
    budget = worker_groups * (2 * threads + 1) + schedulers * 2
    state_url, data_url = postgres_databases.role_with_limit([state_admin, data_admin], budget)
    # 50 runs of 0.5 s on 8 threads: some are mid-query when the database goes away.
    config = write_config(tmp_path, data_url, http_server, query_suffix=" FROM pg_sleep(0.5)")
    configure(fleet, config, state_url)
    for _ in range(worker_groups):
        fleet.worker(processes=1, threads=threads)
    for _ in range(schedulers):
        fleet.scheduler(config)
    started = utcnow()
    first, second = minute(started), minute(started) + timedelta(minutes=1)
    wait_for_slots(state_admin, [first], timeout=60)
    sleep_until(second + timedelta(seconds=1))
    postgres_databases.refuse_connections(state_admin)
    time.sleep(15)
    postgres_databases.allow_connections(state_admin)
    wait_for_slots(state_admin, [second], timeout=150)
    assert_each_slot_once(state_admin, [first, second])  # success or failure: never an error
    assert_notified_once(http_server)
    assert_nothing_left_running(state_admin)
    assert_all_alive(fleet, ended=[])
    assert_one_line_per_outage(fleet, "state database")
    assert "state database unavailable" in fleet.logs()  # the outage was really felt
    assert_clean_logs(fleet)


@pytest.mark.timeout(240)
def test_embedded_scheduler_holds_runs_while_the_state_database_refuses_connections(
    tmp_path: Path, postgres_databases: DatabaseFactory
) -> None:
    state = postgres_databases.create("embedded")
    sqlite3.connect(tmp_path / "data.db").close()
    config = write_config(tmp_path, f"sqlite:///{tmp_path / 'data.db'}", None, alerting=0, quiet=5)
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith(("SMTP_", "STATE_DB", "REDIS_URL", "BROKER_URL"))
    }
    log = open(tmp_path / "embedded.log", "wb")  # noqa: SIM115 - the process writes it
    process = subprocess.Popen(
        [sys.executable, "-m", "sentinel", "-v", "scheduler", config, "--state-db", state],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    try:
        started = utcnow()
        first, second = minute(started), minute(started) + timedelta(minutes=1)
        wait_for_slots(state, [first], timeout=60, total=5)
        sleep_until(second - timedelta(seconds=2))
        postgres_databases.refuse_connections(state)
        time.sleep(15)
        postgres_databases.allow_connections(state)
        wait_for_slots(state, [second], timeout=60, total=5)
        assert process.poll() is None, (tmp_path / "embedded.log").read_text()
    finally:
        process.terminate()
        process.wait(timeout=30)
    text = (tmp_path / "embedded.log").read_text()
    assert_each_slot_once(state, [first, second], alerting=0, quiet=5)
    assert text.count("state database unavailable") == 1, text
    assert text.count("state database is back") == 1, text
    assert "Traceback" not in text


# -- RabbitMQ as the broker ----------------------------------------------------------------------


@pytest.mark.timeout(300)
def test_fleet_on_rabbitmq_runs_each_slot_once_through_a_killed_worker(
    tmp_path: Path,
    fleet: FleetHarness,
    rabbitmq_url: str,
    postgres_url: str,
    http_server: HTTPTestServer,
) -> None:
    fleet.env["BROKER_URL"] = rabbitmq_url  # REDIS_URL stays: the lease and the slot keys
    config = write_config(tmp_path, postgres_url, http_server)
    configure(fleet, config, postgres_url)
    try:
        victim = fleet.worker(processes=1, threads=4)
        fleet.worker(processes=1, threads=4)
        fleet.scheduler(config)
        fleet.scheduler(config)
        started = utcnow()
        first, second = minute(started), minute(started) + timedelta(minutes=1)
        wait_for_slots(postgres_url, [first], timeout=90)
        sleep_until(second + timedelta(seconds=1))
        fleet.kill(victim)  # unacknowledged messages go back to the queue
        wait_for_slots(postgres_url, [second], timeout=150)
        enqueue = ["enqueue", config, "--alert", "quiet_000", "--wait", "--timeout", "60"]
        proc = sqlsentinel(*enqueue, env=fleet.env, timeout=90)
        assert proc.returncode == 0, proc.stderr
        assert "quiet_000" in proc.stdout
        assert_each_slot_once(postgres_url, [first, second])
        assert_notified_once(http_server)
        assert_nothing_left_running(postgres_url)
        assert_all_alive(fleet, ended=[victim])
    finally:
        fleet.stop_all()
        delete_rabbitmq_queues(rabbitmq_url, fleet.env["SENTINEL_NAMESPACE"])


# -- every fault at once -----------------------------------------------------------------------


def active_scheduler(
    client: redis.Redis, namespace: str, schedulers: list[subprocess.Popen[bytes]]
) -> subprocess.Popen[bytes]:
    """The replica that holds the lease (its value is ``epoch:host:pid:token``)."""
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline:
        raw = client.get(f"{namespace}:scheduler:lease")
        value = raw.decode() if isinstance(raw, bytes) else str(raw or "")
        if value and not value.startswith("pending"):
            pid = int(value.split(":")[2])
            for process in schedulers:
                if process.pid == pid:
                    return process
        time.sleep(0.5)
    raise AssertionError("no scheduler took the lease")


@pytest.mark.timeout(600)
def test_every_fault_at_once(
    tmp_path: Path,
    fleet: FleetHarness,
    redis_server: RedisServer,
    postgres_databases: DatabaseFactory,
    http_server: HTTPTestServer,
) -> None:
    """The operator's drill, shortened to three slots: two schedulers and three worker groups
    started together; worker groups SIGKILLed every 20 s (and replaced, as the drill does);
    the active scheduler SIGKILLed; the webhook answering 503 for a minute; Redis SIGKILLed and
    restarted empty mid-minute; the state database refusing connections for 15 s. No process
    is restarted when it exits by itself."""
    state = postgres_databases.create("chaos")
    data = postgres_databases.create("chaos_data")
    config = write_config(tmp_path, data, http_server, alerting=50, quiet=50)
    configure(fleet, config, state)
    # Six delivery rounds 15 s apart outlast the minute the webhook is down (with 5 s apart they
    # would not: the notices would end 'failed', as the README says they must).
    fleet.env.update(
        SENTINEL_DELIVERY_ROUND_BACKOFF_SECONDS="15",
        SENTINEL_DELIVERY_INITIAL_WAIT_SECONDS="0.2",
    )
    rng = random.Random(8)
    http_server.down_for(60)
    workers = [fleet.worker(processes=1, threads=4) for _ in range(3)]
    schedulers = [fleet.scheduler(config), fleet.scheduler(config)]
    killed: list[subprocess.Popen[bytes]] = []
    started = utcnow()
    slots = [minute(started) + timedelta(minutes=i) for i in range(3)]
    client = redis.Redis.from_url(redis_server.url)
    faults = {
        slots[1] + timedelta(seconds=2): "kill the active scheduler",
        slots[1] + timedelta(seconds=25): "restart redis empty",
        slots[2] + timedelta(seconds=1): "refuse state connections",
    }
    next_worker_kill = utcnow() + timedelta(seconds=20)
    while utcnow() < slots[2] + timedelta(seconds=40):
        now = utcnow()
        for at, fault in sorted(faults.items()):
            if now < at:
                continue
            del faults[at]
            if fault == "kill the active scheduler":
                victim = active_scheduler(client, fleet.env["SENTINEL_NAMESPACE"], schedulers)
                fleet.kill(victim)
                killed.append(victim)
            elif fault == "restart redis empty":
                redis_server.stop()
                time.sleep(5)
                redis_server.start()
            else:
                postgres_databases.refuse_connections(state)
                time.sleep(15)
                postgres_databases.allow_connections(state)
        if utcnow() >= next_worker_kill:
            index = rng.randrange(len(workers))
            fleet.kill(workers[index])
            killed.append(workers[index])
            workers[index] = fleet.worker(processes=1, threads=4)
            next_worker_kill = utcnow() + timedelta(seconds=20)
        time.sleep(0.5)
    client.close()
    wait_for_slots(state, slots, timeout=180, total=100)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and http_server.delivered < 50:
        time.sleep(1)
    assert_each_slot_once(state, slots, alerting=50, quiet=50)
    assert_notified_once(http_server, alerting=50)
    delivered = [r.headers.get("idempotency-key") for r in http_server.requests if r.status == 200]
    assert len(delivered) == 50 and len(set(delivered)) == 50
    assert_nothing_left_running(state)
    assert_all_alive(fleet, ended=killed)
    assert_clean_logs(fleet)
