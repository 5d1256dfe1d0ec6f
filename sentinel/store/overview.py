"""What ``status``, the API and the status page show about alerts, in a fixed number of queries.

These are read for every alert at once, on each page load and each ``status``: one query per alert
made both slow on a deployment of thousands, and computing the same summary in two places let the
CLI and the page disagree. So the summary is built here, once, with one read of the states, one of
the active silences and one of the last runs, whatever the number of alerts.
"""

from __future__ import annotations

import json
import sqlite3
from collections.abc import Callable, Collection, Container, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Dialect, Engine

from sentinel.config import AlertConfig
from sentinel.enums import AlertStatus, ExecutionStatus
from sentinel.models import AlertState, ExecutionRecord
from sentinel.mute import is_muted
from sentinel.scheduling.cron import Schedule, schedule_for
from sentinel.store.engine import read_transaction
from sentinel.store.history import ExecutionHistory
from sentinel.store.schema import ensure_schema
from sentinel.store.silences import Silence, active_silences
from sentinel.store.state import StateManager
from sentinel.store.tables import executions, outbox
from sentinel.store.tables import state as state_table


@dataclass(frozen=True)
class AlertOverview:
    """One alert as an operator sees it now: its state, its last finished run, its next slot."""

    alert: AlertConfig
    state: AlertState
    #: The run whose outcome the state reflects (skipped or running rows are not outcomes).
    last_run: ExecutionRecord | None
    next_run: datetime | None
    muted: bool


def alert_overviews(
    engine: Engine, alerts: Sequence[AlertConfig], now: datetime
) -> list[AlertOverview]:
    """The overview of each alert, in the order given (three queries in all)."""
    states = StateManager(engine, lambda: now).get_states({a.name: a.labels for a in alerts})
    ids = [s.last_execution_id for s in states.values() if s.last_execution_id]
    last = {r.alert_name: r for r in ExecutionHistory(engine).by_ids(ids)}
    upcoming: dict[Schedule, datetime] = {}  # alerts sharing a schedule share its next slot
    overviews = []
    for alert in alerts:
        next_run = None
        if alert.enabled:
            schedule = schedule_for(alert.schedule, alert.timezone)
            if schedule not in upcoming:
                upcoming[schedule] = schedule.next_after(now)
            next_run = upcoming[schedule]
        overviews.append(
            AlertOverview(
                alert=alert,
                state=states[alert.name],
                last_run=last.get(alert.name),
                next_run=next_run,
                muted=is_muted(alert.mute, now),
            )
        )
    return overviews


class ListedState(NamedTuple):
    """The columns of an alert's state that the alert list shows (a hashable, comparable row)."""

    current_status: AlertStatus | None
    status_since: datetime | None
    consecutive_alerts: int
    last_execution_id: int | None


#: An alert without a stored state, as :meth:`StateManager.get_states` makes one.
NEVER_RAN = ListedState(None, None, 0, None)


@dataclass(frozen=True)
class FinishedRun:
    """What the alert list shows of a run. Once a run has finished these columns never change
    (only its notification columns do, as deliveries go out), so a reader may keep it by id."""

    id: int
    alert_name: str
    executed_at: datetime
    status: ExecutionStatus
    actual_value: float | None
    threshold: float | None
    context_data: dict[str, Any] | None

    @property
    def finished(self) -> bool:
        return self.status != ExecutionStatus.RUNNING


@dataclass(frozen=True)
class ListReading:
    """One consistent read of what the alert list needs (see :func:`read_alert_list`)."""

    #: What the states were read as: equal versions are equal rows (on SQLite the states' text
    #: as the database wrote it, elsewhere the rows themselves). A caller compares this with its
    #: last reading's, which costs far less than building the states again.
    version: object
    #: Every stored state's listed columns (the name first), converted as the table's types do.
    rows: Sequence[tuple[Any, ...]]
    silences: list[Silence]
    #: The runs the states point at, except those the caller said it already has.
    runs: dict[int, FinishedRun]

    def states(self, names: Container[str]) -> dict[str, ListedState]:
        """The states of ``names`` (an alert without a stored state is not in it)."""
        return {row[0]: ListedState(*row[1:]) for row in self.rows if row[0] in names}


_STATUS_BY_NAME: dict[str | None, AlertStatus | None] = {s.value: s for s in AlertStatus}
_RUN_STATUS_BY_NAME: dict[str, ExecutionStatus] = {s.value: s for s in ExecutionStatus}

# The statuses are read as plain strings and looked up in the dicts above, as NameIn would
# convert them (an unknown name stays a string) without a Python call per value.
_LISTED_COLUMNS = (
    state_table.c.alert_name,
    sa.type_coerce(state_table.c.current_status, sa.String()),
    state_table.c.status_since,
    state_table.c.consecutive_alerts,
    state_table.c.last_execution_id,
)
_LISTED_STATES = sa.select(*_LISTED_COLUMNS)
#: On SQLite the states are read as one JSON text: pysqlite releases and takes back the GIL for
#: every row it steps, and with a few requests reading at once those hand-overs, not the rows,
#: were most of a request's CPU (the text is one step, parsed by the C json module).
_STATES_AS_JSON = sa.select(
    sa.func.json_group_array(sa.func.json_array(*_LISTED_COLUMNS), type_=sa.String())
)
_LISTED_RUNS = sa.select(
    executions.c.id,
    executions.c.alert_name,
    executions.c.executed_at,
    sa.type_coerce(executions.c.status, sa.String()),
    executions.c.actual_value,
    executions.c.threshold,
    executions.c.context_data,
).where(executions.c.id.in_(sa.bindparam("b_ids", expanding=True)))


#: Per dialect class (a few), not per engine: tests and tools make many engines.
_DATETIME_PROCESSORS: dict[type[Dialect], Callable[[Any], Any]] = {}


def _datetime_processor(dialect: Dialect) -> Callable[[Any], Any]:
    """How the dialect turns a stored timestamp into a datetime, as the column's type reads it."""
    process = _DATETIME_PROCESSORS.get(type(dialect))
    if process is None:
        column_type = state_table.c.status_since.type
        found = column_type.dialect_impl(dialect).result_processor(dialect, None)
        process = found if found is not None else (lambda value: value)
        _DATETIME_PROCESSORS[type(dialect)] = process
    return process


def _sqlite_states(conn: Connection, previous: ListReading | None) -> ListReading:
    text: str = conn.execute(_STATES_AS_JSON).scalar_one() or "[]"
    if previous is not None and previous.version == text:
        return previous
    since = _datetime_processor(conn.dialect)
    status = _STATUS_BY_NAME
    rows = [
        (name, status.get(s, s), None if at is None else since(at), alerts, last)
        for name, s, at, alerts, last in json.loads(text)
    ]
    return ListReading(text, rows, [], {})


#: SQLite libraries built without the JSON functions (before 3.38 they were optional).
_NO_JSON: set[str] = set()


def _read_states(conn: Connection, previous: ListReading | None) -> ListReading:
    if conn.dialect.name == "sqlite" and sqlite3.sqlite_version not in _NO_JSON:
        try:
            return _sqlite_states(conn, previous)
        except sa.exc.OperationalError as exc:  # SQLite's transaction outlives a failed statement
            if "no such function" not in str(exc):
                raise
            _NO_JSON.add(sqlite3.sqlite_version)
    status = _STATUS_BY_NAME
    rows = [
        (n, status.get(s, s), at, a, last) for n, s, at, a, last in conn.execute(_LISTED_STATES)
    ]
    if previous is not None and previous.version == rows:
        return previous
    return ListReading(rows, rows, [], {})


def read_alert_list(
    engine: Engine,
    names: Collection[str],
    now: datetime,
    known_runs: Container[int],
    previous: ListReading | None = None,
) -> ListReading:
    """The stored states, the active silences and the last runs of ``names`` that are not in
    ``known_runs``, in one transaction: two queries, plus one per 500 runs not known yet (none
    once a reader keeps the runs it has seen), whatever the number of alerts.

    Only the columns the list shows are read, and no notifications: the API's list reads this on
    every request, and building whole states and execution records was most of its cost. When
    the states read are those of ``previous`` (the caller's last reading), its rows are reused.
    """
    ensure_schema(engine)
    with read_transaction(engine) as conn:
        states = _read_states(conn, previous)
        rows = states.rows
        silences = active_silences(conn, now)
        missing = [r[4] for r in rows if r[4] and r[4] not in known_runs and r[0] in names]
        runs: dict[int, FinishedRun] = {}
        by_name = _RUN_STATUS_BY_NAME
        for start in range(0, len(missing), 500):  # under every driver's parameter limit
            chunk = missing[start : start + 500]
            for rid, name, at, status, value, threshold, context in conn.execute(
                _LISTED_RUNS, {"b_ids": chunk}
            ):
                runs[int(rid)] = FinishedRun(
                    int(rid), name, at, by_name.get(status, status), value, threshold, context
                )  # fmt: skip
    return ListReading(states.version, rows, silences, runs)


@dataclass(frozen=True)
class Activity:
    """Runs and notifications over the last hour and day, for ``/stats`` and the metrics."""

    runs_last_hour: int
    runs_last_day: int
    failures_last_day: int
    errors_last_day: int
    #: Outbox rows created in the window, by their delivery status.
    notifications_last_hour: dict[str, int]
    notifications_last_day: dict[str, int]


def activity(engine: Engine, now: datetime) -> Activity:
    """Counts over the executions and the outbox (three aggregate queries, on their indexes)."""
    ensure_schema(engine)
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)
    run_counts = sa.select(
        sa.func.sum(sa.case((executions.c.executed_at >= hour, 1), else_=0)),
        sa.func.count(),
        sa.func.sum(sa.case((executions.c.status == ExecutionStatus.FAILURE, 1), else_=0)),
        sa.func.sum(sa.case((executions.c.status == ExecutionStatus.ERROR, 1), else_=0)),
    ).where(executions.c.executed_at >= day)
    with read_transaction(engine) as conn:
        last_hour, last_day, failures, errors = conn.execute(run_counts).one()
        notes_hour, notes_day = _notification_counts(conn, hour), _notification_counts(conn, day)
    return Activity(
        runs_last_hour=int(last_hour or 0),
        runs_last_day=int(last_day or 0),
        failures_last_day=int(failures or 0),
        errors_last_day=int(errors or 0),
        notifications_last_hour=notes_hour,
        notifications_last_day=notes_day,
    )


def _notification_counts(conn: Connection, since: datetime) -> dict[str, int]:
    query = (
        sa.select(outbox.c.status, sa.func.count())
        .where(outbox.c.created_at >= since)
        .group_by(outbox.c.status)
    )
    return {status: int(n) for status, n in conn.execute(query)}
