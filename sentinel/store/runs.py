"""Claiming a run and recording its outcome: the two writes every execution makes.

A run is claimed by inserting its execution row keyed by ``(alert_name, scheduled_for)``, so a
duplicate message for the same cron slot finds the row and stops. Its outcome is applied in one
transaction that locks the alert's state row, decides, updates the state, finishes the execution
row and queues the notifications (the outbox): all of it commits, or none of it does.
"""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from sentinel.enums import ExecutionStatus, Outcome
from sentinel.errors import StateStoreError
from sentinel.models import QueryResult
from sentinel.postgres_query import autocommit_scalar, psycopg_connection
from sentinel.rules import AlertRules, Transition, decide, effective_outcome
from sentinel.serialization import to_jsonable, to_number
from sentinel.store.engine import (
    inserted_id,
    lock_clause,
    read_transaction,
    retry_deadlocks,
    state_errors,
    write_transaction,
)
from sentinel.store.outbox import insert_notifications
from sentinel.store.silences import silenced_until
from sentinel.store.state import finish_and_lock, lock_state_with_silences, save_state
from sentinel.store.tables import executions

# Statements built once and executed with parameters, so SQLAlchemy compiles each only once.
_INSERT_EXECUTION = executions.insert()
# Finishing is fenced: it only matches while the row is still this claim's (same claimed_at).
_FINISH = executions.update().where(
    executions.c.id == sa.bindparam("b_id"),
    executions.c.status == ExecutionStatus.RUNNING,
    executions.c.claimed_at == sa.bindparam("b_claimed_at"),
)


@functools.cache
def _claim_statement() -> Any:
    """PostgreSQL's claim: the execution row, or nothing when its slot or message has one."""
    from sqlalchemy.dialects import postgresql

    return postgresql.insert(executions).on_conflict_do_nothing().returning(executions.c.id)


#: The execution status each outcome is recorded with (the contract's success/failure/error).
EXECUTION_STATUS = {
    Outcome.OK: ExecutionStatus.SUCCESS,
    Outcome.ALERT: ExecutionStatus.FAILURE,
    Outcome.ERROR: ExecutionStatus.ERROR,
    Outcome.NODATA: ExecutionStatus.ERROR,
}


@dataclass(frozen=True)
class Claim:
    """The right to run one ``(alert, slot)``; only its holder may record the outcome."""

    execution_id: int
    alert_name: str
    scheduled_for: datetime | None
    triggered_by: str
    claimed_at: datetime
    worker_id: str | None
    took_over: bool = False


@dataclass(frozen=True)
class RunOutcome:
    """What running the query produced: ALERT, OK or ERROR, with the result or the reason."""

    outcome: Outcome
    query_result: QueryResult | None
    error: str | None
    duration_ms: float
    finished_at: datetime


@dataclass(frozen=True)
class AppliedRun:
    transition: Transition
    status: ExecutionStatus
    outbox: list[tuple[int, str]]  # (outbox id, channel) queued by this run


@retry_deadlocks
def claim_run(
    engine: Engine,
    *,
    alert_name: str,
    query: str,
    triggered_by: str,
    scheduled_for: datetime | None,
    worker_id: str | None,
    now: datetime,
    stale_after: float,
    message_id: str | None = None,
) -> Claim | None:
    """Claim a run; ``None`` when it was already run, or is running on a live worker.

    A scheduled run is keyed by ``(alert, slot)``, a manual one by its broker message (a unique
    key too, since revision 0004), so a message delivered twice runs once, even as twins claiming
    at the same instant. A running claim is taken over when it is stale (its worker
    died) or when it is this message's own (an earlier attempt claimed, then failed to record the
    outcome because the state database went away, and the broker is retrying it).
    """
    values = {
        "alert_name": alert_name,
        "scheduled_for": scheduled_for,
        "triggered_by": triggered_by,
        "status": ExecutionStatus.RUNNING,
        "claimed_at": now,
        "worker_id": worker_id,
        "executed_at": now,
        "query": query,
        "message_id": message_id,
    }
    if engine.dialect.name == "postgresql":
        # One statement, one round trip, committed on its own: the claim outlives a crash.
        with state_errors(), engine.connect() as conn:
            if psycopg_connection(conn) is None:
                auto = conn.execution_options(isolation_level="AUTOCOMMIT")
                claimed = auto.execute(_claim_statement(), values).scalar()
            else:
                claimed = autocommit_scalar(conn, _claim_statement(), values)
        if claimed is not None:
            return Claim(int(claimed), alert_name, scheduled_for, triggered_by, now, worker_id)
        if scheduled_for is None and message_id is None:
            raise StateStoreError("state database: the claim inserted no row and has no key")
    else:
        try:
            with write_transaction(engine) as conn:
                execution_id = inserted_id(conn.execute(_INSERT_EXECUTION, values))
            return Claim(execution_id, alert_name, scheduled_for, triggered_by, now, worker_id)
        except sa.exc.IntegrityError:
            if scheduled_for is None and message_id is None:
                raise
    # The run has a row already (by its slot, or by its message: both are unique keys):
    # finished, running elsewhere, or this message's own from an earlier attempt.
    where = (
        (executions.c.message_id == message_id,)
        if scheduled_for is None
        else (executions.c.alert_name == alert_name, executions.c.scheduled_for == scheduled_for)
    )
    with write_transaction(engine) as conn:
        return _take_over(conn, where, values, stale_after)


def _take_over(
    conn: Connection,
    where: tuple[sa.ColumnElement[bool], ...],
    values: dict[str, Any],
    stale_after: float,
) -> Claim | None:
    """Take the existing claim ``where`` selects, if it is stale or this message's own."""
    now, message_id = values["claimed_at"], values["message_id"]
    query_row = sa.select(
        executions.c.id, executions.c.status, executions.c.claimed_at, executions.c.message_id
    ).where(*where)
    if lock_clause(conn):
        query_row = query_row.with_for_update()
    row = conn.execute(query_row).first()
    if row is None or row.status != ExecutionStatus.RUNNING:
        return None
    own = message_id is not None and row.message_id == message_id
    if not own and row.claimed_at > now - timedelta(seconds=stale_after):
        return None
    # Fence the old claim out: its holder's outcome no longer matches ``claimed_at``. The new
    # message becomes the claim's, so that its own retries can take it back.
    conn.execute(
        executions.update()
        .where(executions.c.id == row.id)
        .values(
            claimed_at=now,
            executed_at=now,
            worker_id=values["worker_id"],
            message_id=message_id or row.message_id,
        )
    )
    return Claim(
        int(row.id),
        values["alert_name"],
        values["scheduled_for"],
        values["triggered_by"],
        now,
        values["worker_id"],
        took_over=True,
    )


@retry_deadlocks
def apply_outcome(
    engine: Engine,
    claim: Claim,
    run: RunOutcome,
    rules: AlertRules,
    channels: Sequence[str],
    payload: Callable[[Transition], dict[str, Any]],
    *,
    labels: Mapping[str, str] | None = None,
    muted: bool = False,
) -> AppliedRun | None:
    """Record the outcome under the state row lock; ``None`` if the claim was taken over.

    Whether the alert is silenced is read in the same transaction (a silence added a moment ago
    counts); whether it is muted is the caller's (the config's mute windows at ``finished_at``).
    """
    now = run.finished_at
    with write_transaction(engine) as conn:
        # The fenced update comes first: it both proves the claim is still ours and locks the
        # execution row, always before the state row (one lock order everywhere).
        status = EXECUTION_STATUS[effective_outcome(run.outcome, rules)]
        result = run.query_result
        finish = {
            "b_id": claim.execution_id,
            "b_claimed_at": claim.claimed_at,
            "status": status,
            "finished_at": now,
            "execution_duration_ms": run.duration_ms,
            "result_status": result.status if result else None,
            "actual_value": to_number(result.actual_value) if result else None,
            "threshold": to_number(result.threshold) if result else None,
            "context_data": _context_data(result),
            "error_message": run.error,
        }
        read = finish_and_lock(conn, _FINISH, finish, claim.alert_name, now)
        if read is None:  # not psycopg: the same two statements, one after the other
            if conn.execute(_FINISH, finish).rowcount != 1:
                return None  # taken over by another worker after this one was presumed dead
            read = (True, *lock_state_with_silences(conn, claim.alert_name, now))
        matched, current, found = read
        if not matched or current is None:
            return None  # taken over (as above)
        until = silenced_until(found, claim.alert_name, labels or {}, now)
        transition = decide(
            current, run.outcome, rules, now, silenced=until is not None, muted=muted
        )
        new_state = transition.state  # decide's own copy: completed here, not copied again
        new_state.last_execution_id, new_state.silence_until = claim.execution_id, until
        if transition.outcome == Outcome.ERROR:
            new_state.last_error = run.error
        outbox: list[tuple[int, str]] = []
        notifying = bool(transition.notify and transition.event and channels)
        save_state(conn, new_state, locked=current, commit=not notifying)
        if notifying and transition.event:
            event = transition.event
            body = payload(transition)
            ids = insert_notifications(
                conn, claim.execution_id, claim.alert_name, channels, event, body, now
            )
            outbox = list(zip(ids, channels, strict=True))
    return AppliedRun(transition, status, outbox)


def _context_data(result: QueryResult | None) -> dict[str, Any] | None:
    if result is None:
        return None
    data: dict[str, Any] = to_jsonable(result.context)
    # Values that are not numbers cannot live in the numeric columns; keep them here instead.
    for key in ("actual_value", "threshold"):
        value = getattr(result, key)
        if value is not None and to_number(value) is None:
            data[key] = to_jsonable(value)
    return data


def recorded_slots(
    engine: Engine, runs: Sequence[tuple[str, datetime]], finished_only: bool = False
) -> set[tuple[str, datetime]]:
    """Which ``(alert, slot)`` pairs already have an execution row (finished, or also running)."""
    slots = sorted({slot for _, slot in runs})
    found: set[tuple[str, datetime]] = set()
    for start in range(0, len(slots), 500):
        chunk = slots[start : start + 500]
        query = sa.select(executions.c.alert_name, executions.c.scheduled_for).where(
            executions.c.scheduled_for.in_(chunk)
        )
        if finished_only:
            query = query.where(executions.c.status != ExecutionStatus.RUNNING)
        with read_transaction(engine) as conn:
            found.update((row.alert_name, row.scheduled_for) for row in conn.execute(query))
    return found


@dataclass(frozen=True)
class RunningRun:
    """A claim that has not recorded its outcome: in progress, or left by a worker that died."""

    execution_id: int
    alert_name: str
    scheduled_for: datetime | None
    triggered_by: str
    claimed_at: datetime
    message_id: str | None


def running_claimed_before(engine: Engine, before: datetime, limit: int = 1000) -> list[RunningRun]:
    """Runs still ``running`` that were claimed before ``before``, oldest first.

    This is how the state database, not the broker, says which runs are owed: whatever Redis
    lost, a claim that outlived its deadline is here (the ``(status, claimed_at)`` index)."""
    query = (
        sa.select(
            executions.c.id,
            executions.c.alert_name,
            executions.c.scheduled_for,
            executions.c.triggered_by,
            executions.c.claimed_at,
            executions.c.message_id,
        )
        .where(executions.c.status == ExecutionStatus.RUNNING, executions.c.claimed_at < before)
        .order_by(executions.c.claimed_at)
        .limit(limit)
    )
    with read_transaction(engine) as conn:
        return [
            RunningRun(
                int(r.id), r.alert_name, r.scheduled_for, r.triggered_by, r.claimed_at, r.message_id
            )
            for r in conn.execute(query)
        ]


def abandon_run(
    engine: Engine,
    run: RunningRun,
    reason: str,
    now: datetime,
    *,
    status: ExecutionStatus = ExecutionStatus.ERROR,
) -> bool:
    """Finish a claim nobody will complete (``error``, or ``skipped`` when it is too late to run),
    with the reason; fenced on ``claimed_at``, so a claim taken over meanwhile is left alone."""
    with write_transaction(engine) as conn:
        done = conn.execute(
            _FINISH,
            {
                "b_id": run.execution_id,
                "b_claimed_at": run.claimed_at,
                "status": status,
                "finished_at": now,
                "execution_duration_ms": 0.0,
                "result_status": None,
                "actual_value": None,
                "threshold": None,
                "context_data": None,
                "error_message": reason,
            },
        )
    return bool(done.rowcount == 1)


@retry_deadlocks
def record_skipped(
    engine: Engine, alert_name: str, scheduled_for: datetime, reason: str, now: datetime
) -> bool:
    """Record that a due slot was not run (and why); False if the slot already has a row."""
    try:
        with write_transaction(engine) as conn:
            conn.execute(
                _INSERT_EXECUTION,
                {
                    "alert_name": alert_name,
                    "scheduled_for": scheduled_for,
                    "triggered_by": "CRON",
                    "status": ExecutionStatus.SKIPPED,
                    "claimed_at": now,
                    "executed_at": now,
                    "finished_at": now,
                    "execution_duration_ms": 0.0,
                    "error_message": reason,
                },
            )
    except sa.exc.IntegrityError:
        return False
    return True
