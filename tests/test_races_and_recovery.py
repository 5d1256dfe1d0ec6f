"""Processes racing each other on the state database, and runs recovered from it.

Replicas start at the same instant, twin messages arrive together, and a worker dies holding a
claim: the store must give one answer (one config row, one migration, one run per message) however
the race goes, and recovery must find what the broker lost by asking the state database. Every
race here is real: threads with engines of their own released together by a barrier, on the
backends the store supports.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any, TypeVar

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from sentinel.config import AlertConfig, load_config
from sentinel.database import create_data_engine
from sentinel.errors import StateStoreError
from sentinel.outages import OutageLog
from sentinel.recovery import OwedRun, RunRecovery
from sentinel.scheduling.due import DueRun
from sentinel.store import create_state_engine
from sentinel.store.configs import remember_config
from sentinel.store.engine import insert_ignore, pool_options, state_errors, write_transaction
from sentinel.store.runs import Claim, claim_run
from sentinel.store.schema import HEAD_REVISION, ensure_schema, upgrade
from sentinel.store.tables import executions, state
from tests.alerting import FakeClock
from tests.databases import DatabaseFactory

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456)
SLOT = datetime(2026, 3, 1, 12, 0)
R = TypeVar("R")
Alerts = dict[str, AlertConfig]
CONFIG = """\
database: {url: "sqlite://"}
alerts:
  - {name: a, query: "SELECT 'OK' AS status", schedule: "* * * * *", timeout: 5s}
"""


@pytest.fixture
def engines() -> Iterator[Callable[[str], Engine]]:
    """State engines for the test, all disposed at its end (even when an assertion failed)."""
    made: list[Engine] = []

    def make(url: str) -> Engine:
        engine = create_state_engine(url)
        made.append(engine)
        return engine

    yield make
    for engine in made:
        engine.dispose()


@pytest.fixture
def engine(state_db_url: str, engines: Callable[[str], Engine]) -> Engine:
    """A state database at the head revision: SQLite and PostgreSQL in turn."""
    engine = engines(state_db_url)
    ensure_schema(engine)
    return engine


def race(
    count: int, url: str, work: Callable[[Engine, int], R], rounds: int = 1
) -> dict[int, list[R]]:
    """Run ``work`` in ``count`` threads, each with its own connected engine, all released at
    once in each of ``rounds`` rounds; returns each round's results."""
    barrier = threading.Barrier(count)
    lock = threading.Lock()
    results: dict[int, list[R]] = {n: [] for n in range(rounds)}
    errors: list[BaseException] = []

    def run() -> None:
        engine = create_state_engine(url)
        try:
            with engine.connect():
                pass  # connected before the barrier: the race is between the statements
            for n in range(rounds):
                barrier.wait(timeout=30)
                result = work(engine, n)
                with lock:
                    results[n].append(result)
        except BaseException as exc:
            with lock:
                errors.append(exc)
            barrier.abort()
        finally:
            engine.dispose()

    threads = [threading.Thread(target=run, name=f"w{i}") for i in range(count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=90)
    assert errors == []
    assert all(len(done) == count for done in results.values())
    return results


def at(seconds: float) -> datetime:
    return T0 + timedelta(seconds=seconds)


def scalar(engine: Engine, sql: str, **params: Any) -> Any:
    with engine.connect() as conn:
        return conn.execute(sa.text(sql), params).scalar()


def execution(engine: Engine, execution_id: int) -> sa.Row[Any]:
    with engine.connect() as conn:
        row = conn.execute(sa.select(executions).where(executions.c.id == execution_id)).first()
    assert row is not None
    return row


def finish(engine: Engine, execution_id: int) -> None:
    with write_transaction(engine) as conn:
        conn.execute(
            executions.update()
            .where(executions.c.id == execution_id)
            .values(status="success", finished_at=T0)
        )


def claim(
    engine: Engine,
    now: datetime,
    message_id: str | None,
    slot: datetime | None = SLOT,
    worker: str = "w1",
    alert: str = "a",
) -> Claim | None:
    return claim_run(
        engine,
        alert_name=alert,
        query="SELECT 'OK' AS status",
        triggered_by="CRON" if slot else "MANUAL",
        scheduled_for=slot,
        worker_id=worker,
        now=now,
        stale_after=60,
        message_id=message_id,
    )


# -- races on every backend ------------------------------------------------------------------


def test_replicas_remember_the_same_config_once(
    db_url: str, engines: Callable[[str], Engine]
) -> None:
    engine = engines(db_url)
    ensure_schema(engine)
    text = "alerts: []\n"
    results = race(8, db_url, lambda e, _: remember_config(e, "/etc/sentinel.yaml", text, T0))
    assert sorted(results[0]) == [False] * 7 + [True]
    assert scalar(engine, "SELECT count(*) FROM sqlsentinel_configs") == 1


def test_migrators_racing_on_an_empty_database_all_reach_head(
    db_url: str, engines: Callable[[str], Engine]
) -> None:
    assert race(6, db_url, lambda e, _: upgrade(e)) == {0: [HEAD_REVISION] * 6}
    engine = engines(db_url)
    assert scalar(engine, "SELECT count(*) FROM sqlsentinel_executions") == 0
    assert scalar(engine, "SELECT version_num FROM sqlsentinel_alembic_version") == HEAD_REVISION
    assert scalar(engine, "SELECT count(*) FROM sqlsentinel_alembic_version") == 1


def test_connections_opened_at_once_on_a_new_sqlite_file_all_succeed(tmp_path: Path) -> None:
    """Each one switches the new file to WAL; all but one used to be told "database is locked"
    (about one round in ten, with six)."""
    for n in range(40):
        url = f"sqlite:///{tmp_path / f'new{n}.db'}"
        assert race(6, url, lambda engine, _: engine.connect().close()) == {0: [None] * 6}


def test_insert_ignore_inserts_once(db_url: str, engines: Callable[[str], Engine]) -> None:
    engine = engines(db_url)
    ensure_schema(engine)
    values = {"alert_name": "a", "created_at": T0, "updated_at": T0}
    with write_transaction(engine) as conn:
        assert insert_ignore(conn, state, values) is True
        assert insert_ignore(conn, state, {**values, "updated_at": T0 + timedelta(1)}) is False
    with engine.connect() as conn:
        rows = conn.execute(sa.select(state.c.alert_name, state.c.updated_at)).all()
    assert [tuple(r) for r in rows] == [("a", T0)]


# -- claims: by slot, by message, and twins ---------------------------------------------------


def test_a_scheduled_claim_is_retaken_by_its_own_message_or_when_stale(engine: Engine) -> None:
    first = claim(engine, T0, "m1")
    assert first is not None and not first.took_over
    assert claim(engine, at(5), "m2", worker="w2") is None  # alive, not ours
    retry = claim(engine, at(6), "m1", worker="w2")  # m1 redelivered
    assert retry is not None and retry.took_over and retry.execution_id == first.execution_id
    row = execution(engine, first.execution_id)
    assert (row.claimed_at, row.message_id, row.worker_id) == (at(6), "m1", "w2")
    assert claim(engine, at(65.9), "m2") is None  # not stale yet
    late = at(67)
    stale = claim(engine, late, "m3", worker="w3")
    assert stale is not None and stale.took_over and stale.execution_id == first.execution_id
    row = execution(engine, first.execution_id)
    assert (row.claimed_at, row.message_id, row.worker_id) == (late, "m3", "w3")
    finish(engine, first.execution_id)
    assert claim(engine, late, "m3") is None
    assert claim(engine, late + timedelta(hours=1), "m4") is None
    assert scalar(engine, "SELECT count(*) FROM sqlsentinel_executions") == 1


def test_a_manual_claim_is_keyed_by_its_message(engine: Engine) -> None:
    count_m1 = "SELECT count(*) FROM sqlsentinel_executions WHERE message_id = :m"
    first = claim(engine, T0, "m1", slot=None)
    assert first is not None and not first.took_over and first.scheduled_for is None
    again = claim(engine, at(1), "m1", slot=None, worker="w2")
    assert again is not None and again.took_over and again.execution_id == first.execution_id
    assert scalar(engine, count_m1, m="m1") == 1
    assert execution(engine, first.execution_id).worker_id == "w2"
    finish(engine, first.execution_id)
    assert claim(engine, at(2), "m1", slot=None) is None
    assert scalar(engine, "SELECT count(*) FROM sqlsentinel_executions") == 1  # none left behind
    anonymous = [claim(engine, T0, None, slot=None) for _ in range(2)]
    ids = {c.execution_id for c in anonymous if c is not None and not c.took_over}
    assert len(ids) == 2 and first.execution_id not in ids
    assert scalar(engine, "SELECT count(*) FROM sqlsentinel_executions") == 3


def test_twin_messages_claim_one_run(postgres_url: str, engines: Callable[[str], Engine]) -> None:
    """Twins of one message, delivered at the same instant, many times over: one run each."""
    engine = engines(postgres_url)
    ensure_schema(engine)
    worker = threading.current_thread

    def work(e: Engine, n: int) -> Claim | None:
        return claim(e, T0, f"twin-{n}", slot=None, worker=worker().name)

    by_round = race(6, postgres_url, work, rounds=100)
    with engine.connect() as conn:
        rows = conn.execute(sa.select(executions.c.message_id, executions.c.id)).all()
    for n, claims in by_round.items():
        ids = sorted(row.id for row in rows if row.message_id == f"twin-{n}")
        claimed = sorted({c.execution_id for c in claims if c is not None})
        assert (n, ids, claimed) == (n, ids[:1], ids[:1])


# -- recovery ---------------------------------------------------------------------------------


@pytest.fixture
def alerts(tmp_path: Path) -> Alerts:
    path = tmp_path / "sentinel.yaml"
    path.write_text(CONFIG)
    return {alert.name: alert for alert in load_config(path).alerts}


def recovery(
    engine: Engine, alerts: Mapping[str, AlertConfig], resend_messages: bool = True
) -> RunRecovery:
    """Deadline = the alert's 5 s timeout + 10 s of grace."""
    return RunRecovery(
        engine,
        lambda: alerts,
        lambda: 30.0,
        resend_messages=resend_messages,
        grace_seconds=10,
        catch_up_seconds=600,
    )


def owed_keys(owed: list[OwedRun]) -> list[tuple[str, datetime | None, str, str | None]]:
    return [(o.alert.name, o.scheduled_for, o.triggered_by, o.message_id) for o in owed]


def test_a_lost_submission_is_owed_after_each_deadline(engine: Engine, alerts: Alerts) -> None:
    runs = recovery(engine, alerts)
    runs.submitted([DueRun(alerts["a"], SLOT)], T0)
    assert runs.owed(at(14.9)) == [] and runs.awaiting == 1
    assert owed_keys(runs.owed(at(15))) == [("a", SLOT, "CRON", None)]
    assert runs.owed(at(16)) == []  # sent again: the next check is a deadline later
    assert owed_keys(runs.owed(at(30))) == [("a", SLOT, "CRON", None)]
    assert runs.awaiting == 1


def test_a_claimed_submission_is_not_owed(engine: Engine, alerts: Alerts) -> None:
    runs = recovery(engine, alerts)
    runs.submitted([DueRun(alerts["a"], SLOT)], T0)
    assert claim(engine, at(5), None) is not None
    assert runs.owed(at(15)) == []
    assert runs.awaiting == 0
    assert runs.owed(at(16)) == []  # the claim itself is not stale yet


def test_a_dead_scheduled_claim_is_owed_once_per_deadline(engine: Engine, alerts: Alerts) -> None:
    runs = recovery(engine, alerts)
    taken = claim(engine, T0, "m-sched")
    assert taken is not None
    assert runs.owed(at(14.9)) == []
    assert owed_keys(runs.owed(at(15))) == [("a", SLOT, "CRON", None)]
    assert runs.owed(at(16)) == []
    assert owed_keys(runs.owed(at(30))) == [("a", SLOT, "CRON", None)]
    assert execution(engine, taken.execution_id).status == "running"


def test_a_dead_manual_claim_is_resent_or_abandoned(engine: Engine, alerts: Alerts) -> None:
    taken = claim(engine, T0, "m1", slot=None)
    assert taken is not None
    assert owed_keys(recovery(engine, alerts).owed(at(15))) == [("a", None, "MANUAL", "m1")]
    assert execution(engine, taken.execution_id).status == "running"
    assert recovery(engine, alerts, resend_messages=False).owed(at(15)) == []
    row = execution(engine, taken.execution_id)
    assert row.status == "error" and row.error_message.startswith("abandoned")
    assert row.finished_at == at(15)


def test_too_late_is_skipped_and_a_removed_alert_an_error(engine: Engine, alerts: Alerts) -> None:
    claimed = SLOT + timedelta(seconds=595)
    late = claim(engine, claimed, None)
    gone = claim(engine, claimed, None, alert="gone")
    assert late is not None and gone is not None
    assert recovery(engine, alerts).owed(claimed + timedelta(seconds=15)) == []
    row = execution(engine, late.execution_id)
    assert row.status == "skipped"
    assert row.error_message == "not finished: its worker stopped, and the slot is past catch-up"
    row = execution(engine, gone.execution_id)
    assert row.status == "error"
    assert row.error_message == "abandoned: the alert left the configuration"


def test_a_sharded_recoverer_leaves_other_shards_claims_to_their_owner(
    engine: Engine, alerts: Alerts
) -> None:
    """A claim of an alert it does not own is neither sent again nor abandoned, even when the
    alert is not in its configuration: that is the owning replica's to decide."""
    mine = claim(engine, T0, "m-mine")
    theirs = claim(engine, T0, None, alert="gone")
    assert mine is not None and theirs is not None
    runs = RunRecovery(
        engine, lambda: alerts, lambda: 30.0, grace_seconds=10, owns=lambda name: name == "a"
    )
    runs.submitted([DueRun(alerts["a"], SLOT + timedelta(minutes=1))], T0)
    runs.forget(keep=lambda name: name == "a")  # another shard lost: this one's is kept
    assert runs.awaiting == 1
    runs.forget(keep=lambda name: name != "a")  # and now this shard too
    assert runs.awaiting == 0
    assert owed_keys(runs.owed(at(15))) == [("a", SLOT, "CRON", None)]
    assert execution(engine, theirs.execution_id).status == "running"


# -- outages, pools and connection faults -----------------------------------------------------


def test_an_outage_is_logged_once_when_it_starts_and_once_when_it_ends(
    caplog: pytest.LogCaptureFixture,
) -> None:
    name = "tests.races.outages"
    caplog.set_level(logging.DEBUG, logger=name)
    clock = FakeClock(T0)
    outages = OutageLog(logging.getLogger(name), clock)
    for _ in range(3):
        outages.failed("state database", ConnectionRefusedError("connection refused"))
        clock.advance(seconds=1)
    records = [r for r in caplog.records if r.name == name]
    assert [r.levelname for r in records] == ["ERROR"]
    assert "state database unavailable: connection refused" in records[0].getMessage()
    current = outages.current()["state database"]
    assert (current.failures, current.since) == (3, T0)
    clock.advance(seconds=39)
    outages.ok("state database")
    outages.ok("state database")
    records = [r for r in caplog.records if r.name == name]
    assert [r.levelname for r in records] == ["ERROR", "WARNING"]
    assert records[1].getMessage() == "state database is back after 42s (3 failed attempts)"
    assert outages.current() == {}


def test_a_success_that_began_before_the_outage_does_not_end_it(
    caplog: pytest.LogCaptureFixture,
) -> None:
    """Thread B's attempt started before thread A saw the failure, and succeeded on a connection
    that was still open: the outage goes on, and is still one pair of lines."""
    name = "tests.races.outages.threads"
    caplog.set_level(logging.DEBUG, logger=name)
    clock = FakeClock(T0)
    outages = OutageLog(logging.getLogger(name), clock)
    started_before = clock()
    clock.advance(seconds=1)
    outages.failed("state database", "connection refused")
    outages.ok("state database", attempt_started=started_before)
    assert "state database" in outages.current()
    clock.advance(seconds=5)
    outages.ok("state database", attempt_started=clock())
    records = [r.levelname for r in caplog.records if r.name == name]
    assert records == ["ERROR", "WARNING"] and outages.current() == {}


def test_pools_are_sized_by_threads(postgres_url: str) -> None:
    assert pool_options(None) == {"pool_size": 5, "max_overflow": 10}
    assert pool_options(2, 5) == {"pool_size": 2, "max_overflow": 0}
    sized = {
        "state, 4 threads": (create_state_engine(postgres_url, threads=4), 5),
        "state, unsaid": (create_state_engine(postgres_url), 15),
        "data, 3 threads": (create_data_engine(postgres_url, threads=3), 3),
    }
    try:
        for label, (engine, most) in sized.items():
            pool = engine.pool
            assert isinstance(pool, sa.pool.QueuePool), label
            assert pool.size() + pool._max_overflow == most, label
    finally:
        for engine, _ in sized.values():
            engine.dispose()


def test_a_refused_connection_is_a_state_store_error(
    postgres_url: str, postgres_databases: DatabaseFactory, engines: Callable[[str], Engine]
) -> None:
    name = make_url(postgres_url).database
    engine = engines(postgres_url)
    ensure_schema(engine)
    engine.dispose()  # no pooled connection survives: the next checkout connects afresh
    with postgres_databases.admin.connect() as admin:
        admin.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
    try:
        with pytest.raises(StateStoreError) as refused, write_transaction(engine) as conn:
            conn.execute(sa.text("SELECT 1"))
        message = str(refused.value)
        assert message.startswith("state database:") and "\n" not in message
        assert "accepting connections" in message
        with pytest.raises(StateStoreError, match=r"^state database:"), state_errors():
            engine.connect().close()
    finally:
        with postgres_databases.admin.connect() as admin:
            admin.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")
    with write_transaction(engine) as conn:  # back: the same engine works again
        assert conn.execute(sa.text("SELECT 1")).scalar() == 1


def test_a_duplicate_key_is_not_a_state_store_error(engine: Engine) -> None:
    values = {"alert_name": "a", "created_at": T0, "updated_at": T0}
    with pytest.raises(sa.exc.IntegrityError), write_transaction(engine) as conn:
        conn.execute(state.insert(), values)
        conn.execute(state.insert(), values)
    assert scalar(engine, "SELECT count(*) FROM sqlsentinel_state") == 0  # all rolled back


def test_only_a_deadlock_victim_is_run_again() -> None:
    from sentinel.store.engine import retry_deadlocks

    calls: list[str] = []

    @retry_deadlocks
    def transaction(kind: str) -> str:
        calls.append(kind)
        if len(calls) < 3:
            error = StateStoreError("state database: (1213, 'Deadlock found')")
            error.deadlock = kind == "deadlock"
            raise error
        return "committed"

    assert transaction("deadlock") == "committed" and calls == ["deadlock"] * 3
    calls.clear()
    with pytest.raises(StateStoreError):
        transaction("refused")  # any other fault is the caller's to retry
    assert calls == ["refused"]
