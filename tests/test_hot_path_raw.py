"""The run's statements on psycopg's own connection: the same values, the same errors, the same
guarantees as through SQLAlchemy's execution (what ``sentinel.postgres_query.execute_raw`` is)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta, timezone

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sentinel.enums import AlertStatus, ExecutionStatus, Outcome
from sentinel.errors import StateStoreError
from sentinel.models import QueryResult, utcnow
from sentinel.rules import AlertRules
from sentinel.store import create_state_engine
from sentinel.store.engine import write_transaction
from sentinel.store.runs import RunOutcome, apply_outcome, claim_run
from sentinel.store.schema import ensure_schema
from sentinel.store.silences import add_silence
from sentinel.store.state import lock_state_with_silences
from tests.databases import DatabaseFactory


@pytest.fixture
def engine(postgres_url: str) -> Iterator[Engine]:
    engine = create_state_engine(postgres_url, threads=2)
    ensure_schema(engine)
    yield engine
    engine.dispose()


def _run(engine: Engine, outcome: Outcome, slot: datetime | None, now: datetime) -> Outcome:
    claim = claim_run(
        engine,
        alert_name="a",
        query="q",
        triggered_by="CRON",
        scheduled_for=slot,
        worker_id="w",
        now=now,
        stale_after=60,
        message_id=None if slot else f"m-{now.isoformat()}",
    )
    assert claim is not None
    result = QueryResult(status=outcome, actual_value=3.5, context={"at": now, "n": 1})
    run = RunOutcome(outcome, result, None, 2.0, now)
    applied = apply_outcome(engine, claim, run, AlertRules(), ["slack"], lambda _t: {"k": 1})
    assert applied is not None
    return applied.transition.outcome


def test_values_are_bound_and_read_back_as_the_column_types_say(engine: Engine) -> None:
    now = utcnow()
    aware_slot = datetime(2026, 3, 1, 15, 0, tzinfo=timezone(timedelta(hours=1)))
    _run(engine, Outcome.ALERT, aware_slot, now)  # an aware slot is stored as naive UTC
    with write_transaction(engine) as conn:
        state, silences = lock_state_with_silences(conn, "a", now)
    assert state.current_status is AlertStatus.ALERT  # an enum member, as SQLAlchemy reads it
    assert state.last_outcome is Outcome.ALERT and state.consecutive_alerts == 1
    assert silences == []
    with engine.connect() as conn:
        row = conn.execute(
            sa.text(
                "SELECT scheduled_for, status, actual_value, context_data "
                "FROM sqlsentinel_executions"
            )
        ).one()
    assert row.scheduled_for == datetime(2026, 3, 1, 14, 0)
    assert row.status == ExecutionStatus.FAILURE and row.actual_value == 3.5
    assert row.context_data == {"at": now.isoformat(), "n": 1}


def test_the_locking_read_brings_a_silence_read_on_the_raw_connection(engine: Engine) -> None:
    now = utcnow()
    _run(engine, Outcome.OK, None, now)
    add_silence(engine, until=now + timedelta(hours=1), now=now, matchers={"team": "db"})
    with write_transaction(engine) as conn:
        _, silences = lock_state_with_silences(conn, "a", now + timedelta(seconds=1))
    assert [(s.alert_name, s.matchers) for s in silences] == [(None, {"team": "db"})]


def test_a_connection_lost_mid_run_is_a_state_store_error_and_the_claim_stays(
    engine: Engine, postgres_databases: DatabaseFactory, postgres_url: str
) -> None:
    now = utcnow()
    claim = claim_run(
        engine,
        alert_name="a",
        query="q",
        triggered_by="CLI",
        scheduled_for=None,
        worker_id="w",
        now=now,
        stale_after=60,
        message_id="lost",
    )
    assert claim is not None
    run = RunOutcome(Outcome.OK, QueryResult(status="OK"), None, 1.0, now)
    postgres_databases.refuse_connections(postgres_url)  # drops the pooled connections too
    try:
        with pytest.raises(StateStoreError):
            apply_outcome(engine, claim, run, AlertRules(), [], lambda _t: {})
    finally:
        postgres_databases.allow_connections(postgres_url)
    with engine.connect() as conn:  # the claim committed on its own: a trace of the run
        status = conn.execute(sa.text("SELECT status FROM sqlsentinel_executions")).scalar_one()
    assert status == ExecutionStatus.RUNNING
    applied = apply_outcome(engine, claim, run, AlertRules(), [], lambda _t: {})
    assert applied is not None and applied.status == ExecutionStatus.SUCCESS


def test_a_statement_error_passes_through_as_sqlalchemys_and_leaves_nothing(
    engine: Engine,
) -> None:
    """A duplicate claim of a slot is not an error, but a broken one is, and it is SQLAlchemy's
    statement error (not a connection fault): nothing is committed and the pool stays usable."""
    with pytest.raises(sa.exc.DBAPIError) as raised:
        claim_run(
            engine,
            alert_name="a" * 300,  # longer than the column
            query="q",
            triggered_by="CLI",
            scheduled_for=None,
            worker_id="w",
            now=utcnow(),
            stale_after=60,
            message_id="m",
        )
    assert not raised.value.connection_invalidated
    assert _run(engine, Outcome.OK, None, utcnow()) == Outcome.OK
