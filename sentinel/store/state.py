"""Reading and writing ``sqlsentinel_state``: one row per alert, locked while a run changes it."""

from __future__ import annotations

import functools
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from sentinel.models import AlertState, utcnow
from sentinel.postgres_query import execute_raw, psycopg_connection, run_pipelined
from sentinel.store.engine import insert_ignore, lock_clause, read_transaction, write_transaction
from sentinel.store.schema import ensure_schema
from sentinel.store.silences import (
    Silence,
    active_for_alert,
    active_silences,
    add_silence,
    end_silences,
    joinable_silence_columns,
    joined_silence,
    silenced_until,
)
from sentinel.store.tables import silences
from sentinel.store.tables import state as state_table

_COLUMNS = [f.name for f in fields(AlertState)]
_STORED = [name for name in _COLUMNS if name != "alert_name" and name in state_table.c]


def row_to_state(row: Any) -> AlertState:
    values = row._asdict()
    return AlertState(**{name: values[name] for name in _COLUMNS if name in values})


_SELECT_STATE = sa.select(state_table).where(state_table.c.alert_name == sa.bindparam("b_name"))
_SELECT_STATE_FOR_UPDATE = _SELECT_STATE.with_for_update()
_UPDATE_STATE = state_table.update().where(state_table.c.alert_name == sa.bindparam("b_name"))


def ensure_state_row(conn: Connection, alert_name: str, now: datetime) -> None:
    """Insert the alert's state row if it is missing, without failing when another worker races."""
    insert_ignore(
        conn, state_table, {"alert_name": alert_name, "created_at": now, "updated_at": now}
    )


def lock_state(conn: Connection, alert_name: str, now: datetime) -> AlertState:
    """The alert's state, locked until the transaction ends (created if it did not exist)."""
    query = _SELECT_STATE_FOR_UPDATE if lock_clause(conn) else _SELECT_STATE
    row = conn.execute(query, {"b_name": alert_name}).first()
    if row is None:
        ensure_state_row(conn, alert_name, now)
        row = conn.execute(query, {"b_name": alert_name}).one()
    return row_to_state(row)


@functools.cache
def _lock_state_with_silences() -> sa.Select[Any]:
    """PostgreSQL: the state row, locked, outer-joined to the silences that may apply to it."""
    now: sa.BindParameter[datetime] = sa.bindparam("b_now")
    joined = state_table.outerjoin(silences, active_for_alert(now, state_table.c.alert_name))
    return (
        sa.select(state_table, *joinable_silence_columns())
        .select_from(joined)
        .where(state_table.c.alert_name == sa.bindparam("b_name"))
        .with_for_update(of=state_table)
    )


def lock_state_with_silences(
    conn: Connection, alert_name: str, now: datetime
) -> tuple[AlertState, list[Silence]]:
    """The alert's state, locked (created if missing), and the silences that may cover it now.

    On PostgreSQL one statement reads both (``FOR UPDATE OF`` the state row only: silences are
    read, never locked), a round trip less per run. Elsewhere, two: MariaDB has no ``FOR UPDATE
    OF`` and would lock the silence rows too."""
    if conn.dialect.name != "postgresql":
        return lock_state(conn, alert_name, now), active_silences(conn, now)
    query = _lock_state_with_silences()
    params = {"b_name": alert_name, "b_now": now}
    rows = _locking_read(conn, query, params)
    if not rows:
        ensure_state_row(conn, alert_name, now)
        rows = _locking_read(conn, query, params)
    found = [silence for silence in map(joined_silence, rows) if silence is not None]
    return row_to_state(rows[0]), found


class _Row:
    """A row of the raw locking read, as :func:`row_to_state` and :func:`joined_silence` read
    one: by label, through ``_asdict()`` and ``_mapping``."""

    __slots__ = ("_mapping",)

    def __init__(self, mapping: dict[str, Any]):
        self._mapping = mapping

    def _asdict(self) -> dict[str, Any]:
        return self._mapping


def _locking_read(conn: Connection, query: sa.Select[Any], params: dict[str, Any]) -> list[Any]:
    """The rows of ``query``; on psycopg read on the driver's connection, converted as
    SQLAlchemy would convert them (``NameIn`` columns read back as enum members)."""
    raw = psycopg_connection(conn)
    if raw is None:
        return list(conn.execute(query, params).all())
    with raw.cursor() as cursor:
        found = execute_raw(conn, cursor, query, params).fetchall()
    return _converted(found, query, conn.dialect)


def _converted(found: list[Any], query: sa.Select[Any], dialect: sa.Dialect) -> list[Any]:
    labels, convert = _result_columns(query, dialect)
    rows = []
    for row in found:
        values = list(row)
        for index, processor in convert:
            values[index] = processor(values[index])
        rows.append(_Row(dict(zip(labels, values, strict=True))))
    return rows


@functools.cache
def _result_columns(
    query: sa.Select[Any], dialect: sa.Dialect
) -> tuple[tuple[str, ...], tuple[tuple[int, Callable[[Any], Any]], ...]]:
    """The labels of ``query``'s columns and the result conversions of those that have one."""
    columns = list(query.selected_columns)
    convert = []
    for index, column in enumerate(columns):
        processor = column.type.result_processor(dialect, None)
        if processor is not None:
            convert.append((index, processor))
    return tuple(query.selected_columns.keys()), tuple(convert)


def finish_and_lock(
    conn: Connection, finish: Any, params: dict[str, Any], alert_name: str, now: datetime
) -> tuple[bool, AlertState | None, list[Silence]] | None:
    """On psycopg: ``BEGIN``, the fenced ``finish`` of the execution row, then the locking read
    of :func:`lock_state_with_silences`, in that order (one lock order everywhere) and in one
    round trip. ``None`` on other drivers; else whether ``finish`` matched, state, silences."""
    if psycopg_connection(conn) is None:
        return None
    query = _lock_state_with_silences()
    steps = [(finish, params), (query, {"b_name": alert_name, "b_now": now})]
    (matched, _), (_, found) = run_pipelined(conn, steps, begin=True)
    if matched != 1:
        return False, None, []  # taken over: the state is not this run's to change
    if not found:  # the alert's first run: no state row yet
        return (True, *lock_state_with_silences(conn, alert_name, now))
    rows = _converted(found, query, conn.dialect)
    silenced = [silence for silence in map(joined_silence, rows) if silence is not None]
    return True, row_to_state(rows[0]), silenced


def save_state(
    conn: Connection, new: AlertState, locked: AlertState | None = None, *, commit: bool = False
) -> None:
    """Write ``new``; given the state as it was read under the lock (``locked``), only the
    columns that changed (a steady OK run changes a few of fifteen: less to bind and send).
    ``commit``: on psycopg, end the transaction with the write, in the same round trip."""
    if locked is None:
        values = {name: getattr(new, name) for name in _STORED}
    else:
        values = {
            name: value
            for name in _STORED
            if (value := getattr(new, name)) != getattr(locked, name)
        }
        if not values:
            return
    params = {"b_name": new.alert_name, **values}
    raw = psycopg_connection(conn)
    if raw is None:
        conn.execute(_UPDATE_STATE, params)
        return
    if commit:
        run_pipelined(conn, [(_UPDATE_STATE, params)], commit=True)
        return
    with raw.cursor() as cursor:
        execute_raw(conn, cursor, _UPDATE_STATE, params)


def load_states(conn: Connection, names: list[str] | None = None) -> dict[str, AlertState]:
    query = sa.select(state_table)
    if names is not None:
        query = query.where(state_table.c.alert_name.in_(names))
    return {row.alert_name: row_to_state(row) for row in conn.execute(query)}


class StateManager:
    """Alert state in the state database (the spec's section 4.2)."""

    def __init__(self, engine: Engine, clock: Callable[[], datetime] = utcnow):
        self.engine = engine
        self.clock = clock

    def get_state(self, alert_name: str, labels: Mapping[str, str] | None = None) -> AlertState:
        """The stored state, or a fresh one for an alert that never ran (nothing is written).

        ``silence_until`` is the end of the latest silence that applies now (by name, or by
        ``labels`` when given)."""
        return self.get_states({alert_name: labels or {}})[alert_name]

    def get_states(
        self, alerts: Mapping[str, Mapping[str, str]] | None = None
    ) -> dict[str, AlertState]:
        """States of these alerts (name -> labels), or of every alert with a stored state."""
        ensure_schema(self.engine)
        now = self.clock()
        with read_transaction(self.engine) as conn:
            found = load_states(conn, list(alerts) if alerts is not None else None)
            active = active_silences(conn, now)
        names = alerts if alerts is not None else {name: {} for name in found}
        states = {}
        for name, labels in names.items():
            state = found.get(name) or AlertState(alert_name=name)
            state.silence_until = silenced_until(active, name, labels, now)
            states[name] = state
        return states

    def update_state(
        self, state: AlertState, new_status: str, min_interval_seconds: float = 0
    ) -> None:
        """Apply an outcome to the stored state under its row lock (``state`` supplies the name)."""
        from sentinel.rules import AlertRules, decide

        ensure_schema(self.engine)
        now = self.clock()
        with write_transaction(self.engine) as conn:
            current = lock_state(conn, state.alert_name, now)
            until = silenced_until(active_silences(conn, now), state.alert_name, {}, now)
            rules = AlertRules(min_interval_seconds)
            transition = decide(current, new_status, rules, now, silenced=until is not None)
            save_state(conn, transition.state)

    def silence_alert(
        self,
        alert_name: str | None,
        until: datetime,
        *,
        matchers: Mapping[str, str] | None = None,
        reason: str | None = None,
        created_by: str | None = None,
    ) -> int:
        """Silence one alert (or, with ``matchers``, every alert whose labels match) until
        ``until``; returns the silence's id."""
        ensure_schema(self.engine)
        return add_silence(
            self.engine,
            until=until,
            now=self.clock(),
            alert_name=alert_name,
            matchers=matchers,
            reason=reason,
            created_by=created_by,
        )

    def unsilence_alert(self, alert_name: str) -> int:
        """End every active silence of this alert (they stay in the audit trail)."""
        ensure_schema(self.engine)
        return end_silences(self.engine, self.clock(), alert_name=alert_name)
