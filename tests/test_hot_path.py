"""The cost of one run on PostgreSQL, counted on the wire, and what keeps it safe without pings.

Round trips and commits are read from libpq's own protocol trace of every pooled connection
(``ReadyForQuery`` ends each exchange with the server), so a pipeline or an autocommit statement
is counted as what it is, not as what SQLAlchemy's events see.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from psycopg.pq import Trace
from sqlalchemy.engine import Engine

from sentinel.database import DatabaseAdapter, create_data_engine
from sentinel.enums import ExecutionStatus
from sentinel.errors import DatabaseUnavailableError, QueryTimeoutError
from sentinel.executor import AlertExecutor
from sentinel.models import utcnow
from sentinel.notifications import NotificationFactory
from sentinel.store import create_state_engine
from sentinel.store import engine as store_engine
from sentinel.store.schema import ensure_schema
from sentinel.store.silences import add_silence
from sentinel.store.state import lock_state_with_silences
from tests.alerting import make_alert
from tests.databases import DatabaseFactory

OK_QUERY = "SELECT 'OK' AS status"


class WireCounts:
    """Round trips, commits and rollbacks of the connections an engine checks out."""

    def __init__(self, engines: list[Engine], directory: Path):
        self.directory = directory
        self.traced: list[tuple[Any, Path]] = []
        for engine in engines:
            sa.event.listen(engine.pool, "checkout", self._trace)

    def _trace(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        if record.info.get("test_traced"):
            return
        record.info["test_traced"] = True
        path = self.directory / f"trace-{len(self.traced)}.txt"
        dbapi_connection.pgconn.trace(os.open(path, os.O_WRONLY | os.O_CREAT))
        dbapi_connection.pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        self.traced.append((dbapi_connection.pgconn, path))

    def counts(self) -> dict[str, int]:
        counts = {"round trips": 0, "commits": 0, "rollbacks": 0}
        for pgconn, path in self.traced:
            pgconn.untrace()
            in_block = False
            for line in path.read_text().splitlines():
                parts = line.split("\t")
                if len(parts) < 4 or parts[0] != "B":
                    continue
                message, rest = parts[2], parts[3].strip().strip('"')
                if message == "ReadyForQuery":
                    counts["round trips"] += 1
                    in_block = rest in ("T", "E")
                elif message == "CommandComplete":
                    if rest == "BEGIN":
                        in_block = True
                    elif rest == "COMMIT":
                        counts["commits"] += 1
                    elif rest == "ROLLBACK":
                        counts["rollbacks"] += 1
                    elif rest.startswith(("INSERT", "UPDATE", "DELETE")) and not in_block:
                        counts["commits"] += 1
        return counts


@pytest.fixture
def pg(postgres_url: str) -> Iterator[tuple[DatabaseAdapter, Engine]]:
    adapter = DatabaseAdapter(create_data_engine(postgres_url, threads=2))
    engine = create_state_engine(postgres_url, threads=2)
    ensure_schema(engine)
    yield adapter, engine
    engine.dispose()
    adapter.dispose()


def terminate_backends(postgres_databases: DatabaseFactory, url: str) -> None:
    """Drop every open connection to the database (as a server restart or an idle timeout does)."""
    name = sa.engine.make_url(url).database
    with postgres_databases.admin.connect() as conn:
        conn.exec_driver_sql(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
        )


def test_a_run_takes_at_most_eight_round_trips_and_two_commits(
    pg: tuple[DatabaseAdapter, Engine], tmp_path: Path
) -> None:
    adapter, engine = pg
    executor = AlertExecutor(engine, NotificationFactory(smtp_host=""))
    alerts = [make_alert([], name=f"hot_{i}", query=OK_QUERY) for i in range(3)]
    for alert in alerts:  # first runs create the state rows
        executor.execute_alert(alert, adapter, triggered_by="CLI")
    wire = WireCounts([engine, adapter.engine], tmp_path)
    runs = 12
    results = [
        executor.execute_alert(alerts[i % 3], adapter, triggered_by="CLI") for i in range(runs)
    ]
    counts = wire.counts()
    assert [r.status for r in results] == [ExecutionStatus.SUCCESS] * runs
    assert counts["round trips"] <= 8 * runs, counts
    assert counts["commits"] == 2 * runs, counts  # the claim, then the outcome with its state
    assert counts["rollbacks"] == runs, counts  # the read-only query's transaction, never kept
    with engine.connect() as conn:
        running = conn.execute(
            sa.text("SELECT count(*) FROM sqlsentinel_executions WHERE status = 'running'")
        ).scalar_one()
    assert running == 0


def test_the_query_survives_its_pooled_connection_being_dropped(
    pg: tuple[DatabaseAdapter, Engine], postgres_databases: DatabaseFactory, postgres_url: str
) -> None:
    """No ping before each query: a connection that died in the pool fails the first
    statement, and the query runs once more on a new connection."""
    adapter, _ = pg
    assert adapter.execute_query(OK_QUERY) == {"status": "OK"}
    terminate_backends(postgres_databases, postgres_url)
    assert adapter.execute_query(OK_QUERY) == {"status": "OK"}


def test_a_dead_data_database_is_still_unavailable(
    pg: tuple[DatabaseAdapter, Engine], postgres_databases: DatabaseFactory, postgres_url: str
) -> None:
    adapter, _ = pg
    assert adapter.execute_query(OK_QUERY) == {"status": "OK"}
    postgres_databases.refuse_connections(postgres_url)
    try:
        with pytest.raises(DatabaseUnavailableError):
            adapter.execute_query(OK_QUERY)
    finally:
        postgres_databases.allow_connections(postgres_url)
    assert adapter.execute_query(OK_QUERY) == {"status": "OK"}


def test_an_idle_state_connection_is_pinged_and_replaced(
    pg: tuple[DatabaseAdapter, Engine],
    postgres_databases: DatabaseFactory,
    postgres_url: str,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    _, engine = pg
    monkeypatch.setattr(store_engine, "PING_AFTER_IDLE_SECONDS", 0.0)
    with store_engine.read_transaction(engine) as conn:
        conn.exec_driver_sql("SELECT 1")
    terminate_backends(postgres_databases, postgres_url)
    with store_engine.read_transaction(engine) as conn:
        assert conn.exec_driver_sql("SELECT 1").scalar() == 1


def test_pipelined_query_keeps_its_limits(
    pg: tuple[DatabaseAdapter, Engine], caplog: pytest.LogCaptureFixture
) -> None:
    adapter, _ = pg
    with pytest.raises(QueryTimeoutError):
        adapter.execute_query("SELECT pg_sleep(5)", timeout=0.3)
    first = adapter.fetch_first_row("SELECT g AS status FROM generate_series(1, 10000000) g")
    assert first.row == {"status": 1} and first.more_rows
    assert adapter.fetch_rows("SELECT g FROM generate_series(1, 10) g", 3) == [
        {"g": 1},
        {"g": 2},
        {"g": 3},
    ]
    with pytest.raises(Exception, match="multiple commands"):
        adapter.execute_query("SELECT 1; SELECT 2", guard=False)
    with pytest.raises(Exception, match="read-only"):
        adapter.execute_query("SELECT * FROM sqlsentinel_state FOR UPDATE", guard=False)
    # A failing query is the run's outcome, not a driver warning about an aborted pipeline.
    assert not [r for r in caplog.records if r.name.startswith("psycopg")]
    # After errors the pooled connections are clean: idle, not in autocommit.
    assert adapter.execute_query("SELECT '100%' AS status") == {"status": "100%"}


def test_the_locking_read_brings_the_alerts_silences_only(
    pg: tuple[DatabaseAdapter, Engine],
) -> None:
    _, engine = pg
    now = utcnow()
    later, latest = now + timedelta(hours=1), now + timedelta(hours=2)
    add_silence(engine, until=later, now=now, alert_name="a")
    add_silence(engine, until=latest, now=now, matchers={"team": "db"})
    add_silence(engine, until=latest, now=now, alert_name="b")
    add_silence(
        engine, until=now - timedelta(minutes=1), now=now - timedelta(hours=1), alert_name="a"
    )
    with store_engine.write_transaction(engine) as conn:
        state, found = lock_state_with_silences(conn, "a", now)
    assert state.alert_name == "a"
    assert sorted((s.alert_name, s.ends_at) for s in found if s.alert_name) == [("a", later)]
    assert [s.matchers for s in found if s.alert_name is None] == [{"team": "db"}]
