"""The state store on every backend: migrations, claims, fencing, outbox leases, configs."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic.config import Config
from alembic.script import ScriptDirectory
from sqlalchemy.engine import Connection, Engine

from sentinel.enums import Outcome
from sentinel.models import QueryResult
from sentinel.rules import AlertRules
from sentinel.store import SchemaManager, StateManager, create_state_engine, ensure_schema
from sentinel.store import outbox as outbox_store
from sentinel.store.configs import remember_config
from sentinel.store.runs import Claim, RunOutcome, apply_outcome, claim_run
from sentinel.store.schema import HEAD_REVISION, MIGRATIONS

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456)


def test_head_revision_matches_the_migrations() -> None:
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS))
    assert ScriptDirectory.from_config(cfg).get_current_head() == HEAD_REVISION


def test_schema_created_upgraded_and_dropped(db_url: str) -> None:
    engine = create_state_engine(db_url)
    manager = SchemaManager(engine)
    assert not manager.schema_exists()
    manager.initialize_schema()
    manager.initialize_schema()  # idempotent
    tables = set(sa.inspect(engine).get_table_names())
    assert {"sqlsentinel_state", "sqlsentinel_executions", "sqlsentinel_configs"} <= tables
    assert "sqlsentinel_outbox" in tables and "sqlsentinel_alembic_version" in tables
    manager.drop_schema()
    assert not manager.schema_exists()
    engine.dispose()


def claim(
    engine: sa.Engine, slot: datetime | None, now: datetime, worker: str = "w1"
) -> Claim | None:
    return claim_run(
        engine,
        alert_name="a",
        query="SELECT 'ALERT' AS status",
        triggered_by="CRON",
        scheduled_for=slot,
        worker_id=worker,
        now=now,
        stale_after=60,
    )


def outcome(status: str, at: datetime) -> RunOutcome:
    return RunOutcome(Outcome(status), QueryResult(status=status, actual_value=1.5), None, 3.0, at)


def test_a_slot_is_claimed_once_and_a_dead_claim_is_taken_over(db_url: str) -> None:
    engine = create_state_engine(db_url)
    ensure_schema(engine)
    slot = datetime(2026, 3, 1, 12, 0)
    first = claim(engine, slot, T0)
    assert first is not None
    assert claim(engine, slot, T0 + timedelta(seconds=5), "w2") is None  # still running, alive
    taken = claim(engine, slot, T0 + timedelta(seconds=120), "w2")  # presumed dead
    assert taken is not None and taken.took_over
    # The first worker comes back: its outcome is fenced out, the new holder's is recorded.
    late = apply_outcome(
        engine, first, outcome("ALERT", T0), AlertRules(), ["webhook"], lambda _: {}
    )
    assert late is None
    applied = apply_outcome(
        engine, taken, outcome("ALERT", T0), AlertRules(), ["webhook"], lambda _: {}
    )
    assert applied is not None and applied.transition.notify and len(applied.outbox) == 1
    assert claim(engine, slot, T0 + timedelta(hours=1), "w3") is None  # finished: never again
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT status, actual_value FROM sqlsentinel_executions")
        ).all()
    assert [tuple(r) for r in rows] == [("failure", 1.5)]
    engine.dispose()


def test_outbox_lease_is_exclusive_and_expires(db_url: str) -> None:
    engine = create_state_engine(db_url)
    ensure_schema(engine)
    run = claim(engine, None, T0)
    assert run is not None
    applied = apply_outcome(
        engine, run, outcome("ALERT", T0), AlertRules(), ["webhook"], lambda _: {"k": 1}
    )
    assert applied is not None
    [(outbox_id, _)] = applied.outbox
    row = outbox_store.lease(engine, outbox_id, T0, seconds=30)
    assert row is not None and row.payload == {"k": 1}
    assert outbox_store.lease(engine, outbox_id, T0 + timedelta(seconds=10)) is None
    assert outbox_store.due(engine, T0 + timedelta(seconds=10)) == []
    # the notifier died: after the lease it is due again and can be re-leased
    assert outbox_store.due(engine, T0 + timedelta(seconds=31)) == [outbox_id]
    again = outbox_store.lease(engine, outbox_id, T0 + timedelta(seconds=31))
    assert again is not None
    result = outbox_store.complete(engine, again, T0 + timedelta(seconds=32), attempts=1)
    assert result.status == "sent"
    assert outbox_store.lease(engine, outbox_id, T0 + timedelta(days=1)) is None
    engine.dispose()


def test_microseconds_survive_every_backend(db_url: str) -> None:
    engine = create_state_engine(db_url)
    manager = StateManager(engine, clock=lambda: T0)
    manager.silence_alert("a", until=T0 + timedelta(microseconds=1))
    assert manager.get_state("a").silence_until == T0 + timedelta(microseconds=1)
    manager.unsilence_alert("a")
    assert manager.get_state("a").silence_until is None
    engine.dispose()


def test_config_versions_are_kept_once(db_url: str) -> None:
    engine = create_state_engine(db_url)
    ensure_schema(engine)
    text = "database:\n  url: ${DATABASE_URL}\n"
    assert remember_config(engine, "/etc/alerts.yaml", text, T0)
    assert not remember_config(engine, "/etc/alerts.yaml", text, T0)
    assert remember_config(engine, "/etc/alerts.yaml", text + "# changed\n", T0)
    with engine.connect() as conn:
        stored = conn.execute(sa.text("SELECT content FROM sqlsentinel_configs")).scalars().all()
    assert stored[0] == text  # as written, ${VAR} unexpanded
    engine.dispose()


@contextmanager
def at_revision(engine: Engine, revision: str) -> Iterator[Connection]:
    """A transaction on a database migrated only up to ``revision``, to write old-style rows."""
    from alembic import command

    from sentinel.store.engine import write_transaction

    with write_transaction(engine) as conn:
        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
        yield conn


def test_upgrade_moves_old_silences_into_the_audit_trail(db_url: str) -> None:
    """A database at revision 0002 with a silenced alert upgrades in place: nothing is lost."""
    engine = create_state_engine(db_url)
    with at_revision(engine, "0002") as conn:
        conn.execute(
            sa.text(
                "INSERT INTO sqlsentinel_state (alert_name, current_status, silence_until, "
                "consecutive_alerts, consecutive_successes, consecutive_errors, created_at, "
                "updated_at) VALUES ('quiet', 'ALERT', :until, 3, 0, 0, :now, :now)"
            ),
            {"until": datetime(2099, 1, 1), "now": T0},
        )
    ensure_schema(engine)  # upgrades 0002 -> head
    state = StateManager(engine).get_state("quiet")
    assert state.current_status == "ALERT" and state.consecutive_alerts == 3
    assert state.silence_until == datetime(2099, 1, 1)
    engine.dispose()


def test_upgrade_keeps_one_execution_per_message(db_url: str) -> None:
    """Older versions inserted a row per retry of a manual message; 0004 makes the message id a
    unique key, keeping it on the first row and every row itself."""
    engine = create_state_engine(db_url)
    with at_revision(engine, "0003") as conn:
        for status in ("error", "success", "success"):
            conn.execute(
                sa.text(
                    "INSERT INTO sqlsentinel_executions (alert_name, triggered_by, status, "
                    "claimed_at, executed_at, message_id, notification_sent) "
                    "VALUES ('a', 'CLI', :status, :now, :now, 'm-1', false)"
                ),
                {"status": status, "now": T0},
            )
    ensure_schema(engine)  # upgrades 0003 -> head
    with engine.connect() as conn:
        rows = conn.execute(
            sa.text("SELECT status, message_id FROM sqlsentinel_executions ORDER BY id")
        ).all()
        assert [tuple(r) for r in rows] == [("error", "m-1"), ("success", None), ("success", None)]
        with pytest.raises(sa.exc.IntegrityError):
            conn.execute(
                sa.text(
                    "INSERT INTO sqlsentinel_executions (alert_name, triggered_by, status, "
                    "claimed_at, executed_at, message_id, notification_sent) "
                    "VALUES ('a', 'CLI', 'running', :now, :now, 'm-1', false)"
                ),
                {"now": T0},
            )
        conn.rollback()
    engine.dispose()
