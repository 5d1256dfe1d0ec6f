"""The ceiling of ``bench/fleet_throughput.py``: a bare Dramatiq actor doing an alert run's
database work in one PostgreSQL transaction, and nothing else.

Per message: insert an execution-like row, run the alert query (``SELECT 'OK' AS status``), lock
the alert's state row (``SELECT … FOR UPDATE``) and update it, then commit: SQLAlchemy Core,
statements compiled once, a plain connection pool (no pre-ping), Dramatiq's default middleware. No
config, no SQL guard, no read-only transaction, no claim in a transaction of its own.

Started by the benchmark as ``dramatiq ceiling_actor --path bench -p 2 -t 8`` with the fleet's
environment (``REDIS_URL``, ``SENTINEL_NAMESPACE``, ``STATE_DB_URL``); not a benchmark by itself.
"""

from __future__ import annotations

import os
import socket
import threading
from datetime import UTC, datetime
from typing import Any

import dramatiq
import sqlalchemy as sa
from dramatiq.brokers.redis import RedisBroker
from sqlalchemy.dialects import postgresql

NAMESPACE = os.environ.get("SENTINEL_NAMESPACE", "sqlsentinel")
QUEUE = f"{NAMESPACE}.ceiling"
QUERY = "SELECT 'OK' AS status"

broker = RedisBroker(url=os.environ.get("REDIS_URL"), namespace=NAMESPACE)  # type: ignore[no-untyped-call]
dramatiq.set_broker(broker)

metadata = sa.MetaData()
executions = sa.Table(
    "bench_ceiling_executions",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=True),
    sa.Column("alert_name", sa.String(200), nullable=False),
    sa.Column("scheduled_for", sa.DateTime),
    sa.Column("triggered_by", sa.String(16), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("claimed_at", sa.DateTime, nullable=False),
    sa.Column("worker_id", sa.String(200)),
    sa.Column("executed_at", sa.DateTime, nullable=False),
    sa.Column("finished_at", sa.DateTime),
    sa.Column("execution_duration_ms", sa.Double),
    sa.Column("result_status", sa.String(16)),
    sa.Column("query", sa.Text),
    sa.Column("message_id", sa.String(64), index=True),
    sa.UniqueConstraint("alert_name", "scheduled_for"),
    sa.Index("ix_bench_ceiling_executions_alert_id", "alert_name", "id"),
    sa.Index("ix_bench_ceiling_executions_status_claimed", "status", "claimed_at"),
)
state = sa.Table(
    "bench_ceiling_state",
    metadata,
    sa.Column("alert_name", sa.String(200), primary_key=True),
    sa.Column("current_status", sa.String(16)),
    sa.Column("last_execution_id", sa.BigInteger),
    sa.Column("last_execution_at", sa.DateTime),
    sa.Column("consecutive_successes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("updated_at", sa.DateTime, nullable=False),
)

_INSERT = executions.insert().returning(executions.c.id)
_QUERY = sa.text(QUERY)
_LOCK = (
    sa.select(state.c.consecutive_successes)
    .where(state.c.alert_name == sa.bindparam("b_name"))
    .with_for_update()
)
_UPDATE = state.update().where(state.c.alert_name == sa.bindparam("b_name"))
_WORKER_ID = f"{socket.gethostname()}:{os.getpid()}"

_engine: sa.Engine | None = None
_engine_lock = threading.Lock()


def engine() -> sa.Engine:
    """One pool per worker process, made after Dramatiq forked it."""
    global _engine  # noqa: PLW0603 - one engine per process
    with _engine_lock:
        if _engine is None:
            _engine = sa.create_engine(os.environ["STATE_DB_URL"], pool_size=8, max_overflow=8)
        return _engine


def create_tables(target: sa.Engine, alert_names: list[str]) -> None:
    """The ceiling's tables, with one state row per alert (as the fleet has after a first run)."""
    metadata.create_all(target)
    now = datetime.now(UTC).replace(tzinfo=None)
    rows: list[dict[str, Any]] = [{"alert_name": n, "updated_at": now} for n in alert_names]
    with target.begin() as conn:
        conn.execute(postgresql.insert(state).on_conflict_do_nothing(), rows)


def finished(target: sa.Engine) -> int:
    with target.connect() as conn:
        return int(conn.execute(sa.select(sa.func.count()).select_from(executions)).scalar_one())


@dramatiq.actor(actor_name="ceiling-execute", queue_name=QUEUE)
def ceiling_execute(alert_name: str, triggered_by: str = "CLI") -> None:
    started = datetime.now(UTC).replace(tzinfo=None)
    with engine().begin() as conn:
        execution_id = conn.execute(
            _INSERT,
            {
                "alert_name": alert_name,
                "triggered_by": triggered_by,
                "status": "success",
                "claimed_at": started,
                "worker_id": _WORKER_ID,
                "executed_at": started,
                "query": QUERY,
            },
        ).scalar_one()
        status = conn.execute(_QUERY).scalar_one()
        now = datetime.now(UTC).replace(tzinfo=None)
        successes = conn.execute(_LOCK, {"b_name": alert_name}).scalar_one()
        conn.execute(
            _UPDATE,
            {
                "b_name": alert_name,
                "current_status": status,
                "last_execution_id": execution_id,
                "last_execution_at": now,
                "consecutive_successes": successes + 1,
                "updated_at": now,
            },
        )
