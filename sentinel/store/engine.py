"""Connections to the state database, tuned for short locked transactions.

SQLite needs two things SQLAlchemy does not do by default: WAL with ``synchronous=NORMAL`` (so each
committed transition is cheap) and ``BEGIN IMMEDIATE`` for write transactions (so the alert's state
is locked from the first read, the SQLite equivalent of ``SELECT … FOR UPDATE``).

Every fault of the connection itself (refused, dropped, "too many clients", a lock wait that timed
out, an exhausted pool) becomes a :class:`~sentinel.errors.StateStoreError`: an infrastructure
error that callers retry, never an alert's outcome. Errors of the statement (a unique key, a
missing table) pass through unchanged, because callers act on them.

Pools are sized by the process's concurrency (:func:`pool_options`): a process with ``threads``
threads opens at most ``threads + 1`` connections to the state database, so a fleet's total can be
computed (the README gives the formula) instead of discovered as ``too many clients``.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, ParamSpec, TypeVar, overload

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine
from tenacity import (
    Retrying,
    retry_if_exception,
    stop_after_attempt,
    stop_after_delay,
    wait_random,
)

from sentinel import defaults
from sentinel.errors import StateStoreError
from sentinel.redact import one_line

#: Seconds a SQLite writer waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000
#: Connections a state engine may open beyond one per thread (a thread holds at most one, but a
#: margin keeps an unforeseen nested checkout from waiting on the pool).
STATE_POOL_MARGIN = 1
#: A pooled connection idle for longer than this is pinged before use (see ping_when_idle).
PING_AFTER_IDLE_SECONDS = 1.0
#: Tries of a write transaction that keeps being chosen as a deadlock victim.
DEADLOCK_ATTEMPTS = 5

P = ParamSpec("P")
R = TypeVar("R")


def pool_options(threads: int | None, pool_size: int = defaults.POOL_SIZE) -> dict[str, int]:
    """QueuePool settings for a process with ``threads`` threads: never more connections open
    than threads can use at once, and at most ``pool_size`` of them kept while idle.

    ``None`` (a library caller that did not say) keeps SQLAlchemy's own default of 5 + 10."""
    if threads is None:
        return {"pool_size": pool_size, "max_overflow": 10}
    threads = max(1, threads)
    kept = max(1, min(pool_size, threads))
    return {"pool_size": kept, "max_overflow": threads - kept}


@overload
def create_state_engine(url: str, *, threads: int | None = ...) -> Engine: ...
@overload
def create_state_engine(
    url: str, read_only: Literal[False], *, threads: int | None = ...
) -> Engine: ...
@overload
def create_state_engine(
    url: str, read_only: bool, *, threads: int | None = ...
) -> Engine | None: ...


def create_state_engine(
    url: str, read_only: bool = False, *, threads: int | None = None
) -> Engine | None:
    """An engine for the state tables of ``url`` (any SQLAlchemy URL; Heroku's accepted).

    ``read_only`` is for dry runs, which promise to write nothing anywhere: SQLite is opened in
    read-only URI mode (``None`` if the file does not exist, since opening would create it) and
    other backends get read-only transactions. ``threads`` is how many threads of this process
    may use the engine at once: the pool opens at most that many connections, plus one.
    """
    from sentinel.database import normalize_url

    sa_url = normalize_url(url)
    backend = sa_url.get_backend_name()
    if backend == "sqlite":
        if read_only:
            path = sa_url.database
            if not path or path == ":memory:" or not Path(path).exists():
                return None
            return sa.create_engine(f"sqlite:///file:{Path(path).resolve()}?mode=ro&uri=true")
        engine = sa.create_engine(sa_url)
        _configure_sqlite(engine)
        return engine
    kwargs: dict[str, Any] = pool_options(None if threads is None else threads + STATE_POOL_MARGIN)
    if backend in ("mysql", "mariadb"):
        kwargs["isolation_level"] = "READ COMMITTED"
    kwargs["connect_args"] = {"connect_timeout": 10}
    if read_only and backend == "postgresql":
        kwargs["connect_args"]["options"] = "-c default_transaction_read_only=on"
    engine = sa.create_engine(sa_url, **kwargs)
    ping_when_idle(engine)
    if read_only and backend in ("mysql", "mariadb"):

        @event.listens_for(engine, "connect")
        def _read_only(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET SESSION TRANSACTION READ ONLY")

    return engine


def ping_when_idle(engine: Engine) -> None:
    """Ping a pooled connection before use only if it sat idle for ``PING_AFTER_IDLE_SECONDS``.

    ``pool_pre_ping`` costs a round trip at every checkout, a third of a busy worker's. A
    connection handed back a moment ago is alive unless the server died in that moment, and then
    the statement fails as a connection fault (retried as every infrastructure error is); one
    that sat idle through a restart or an idle timeout is pinged, and replaced if it is dead,
    the way SQLAlchemy's checkout event documents (raising ``DisconnectionError``)."""

    @event.listens_for(engine, "checkin")
    def _returned(_dbapi_connection: Any, record: Any) -> None:
        record.info["sentinel_returned_at"] = time.monotonic()

    @event.listens_for(engine, "checkout")
    def _checkout(dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        returned = record.info.get("sentinel_returned_at")
        if returned is None or time.monotonic() - returned < PING_AFTER_IDLE_SECONDS:
            return  # new, or back in the pool only a moment ago
        try:
            engine.dialect.do_ping(dbapi_connection)
        except engine.dialect.loaded_dbapi.Error as exc:
            raise sa.exc.DisconnectionError(one_line(exc)) from exc


def _switch_to_wal(cursor: Any) -> None:
    """``PRAGMA journal_mode = WAL``, waiting out another connection doing the same.

    Processes started at the same instant against a new database file all make that switch at
    once, and SQLite answers "database is locked" at once, without its busy handler, to all but
    one. The switch is retried for as long as the busy timeout would have waited."""
    import sqlite3

    for attempt in Retrying(
        retry=retry_if_exception(
            lambda exc: isinstance(exc, sqlite3.OperationalError) and "locked" in str(exc)
        ),
        wait=wait_random(0.005, 0.05),
        stop=stop_after_delay(SQLITE_BUSY_TIMEOUT_MS / 1000),
        reraise=True,
    ):
        with attempt:
            cursor.execute("PRAGMA journal_mode = WAL")


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event decide how a transaction starts (pysqlite would defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        _switch_to_wal(cursor)
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sentinel_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


def is_connection_fault(exc: BaseException) -> bool:
    """Whether a driver error is about reaching the database, not about the statement.

    Operational errors (refused, dropped, too many clients, lock wait timeouts, deadlocks),
    interface errors (a connection that was closed under us), anything SQLAlchemy saw invalidate
    the connection, and an exhausted pool. A later attempt may succeed; the statement was fine.
    """
    if isinstance(exc, sa.exc.TimeoutError):  # QueuePool: no connection free in time
        return True
    if isinstance(exc, (sa.exc.OperationalError, sa.exc.InterfaceError)):
        return True
    return isinstance(exc, sa.exc.DBAPIError) and bool(exc.connection_invalidated)


#: PostgreSQL's deadlock and serialization failures; MySQL's deadlock and lock wait timeout.
_DEADLOCK_SQLSTATES = ("40P01", "40001")
_DEADLOCK_ERRNOS = (1213, 1205)


def is_deadlock(exc: BaseException) -> bool:
    orig = getattr(exc, "orig", None)
    if getattr(orig, "sqlstate", None) in _DEADLOCK_SQLSTATES:
        return True
    args: tuple[Any, ...] = getattr(orig, "args", ())
    return bool(args) and args[0] in _DEADLOCK_ERRNOS


@contextmanager
def state_errors() -> Iterator[None]:
    """Turn connection faults into :class:`StateStoreError`; statement errors pass through."""
    try:
        yield
    except sa.exc.SQLAlchemyError as exc:
        if is_connection_fault(exc):
            error = StateStoreError(describe_db_error(exc))
            error.deadlock = is_deadlock(exc)
            raise error from None
        raise


#: How long a deadlock victim waits before it tries again (random, so that twins part ways).
_DEADLOCK_PAUSE = wait_random(0.01, 0.2)


def _deadlocked(exc: BaseException) -> bool:
    return isinstance(exc, StateStoreError) and exc.deadlock


def retry_deadlocks(transaction: Callable[P, R]) -> Callable[P, R]:
    """Run a whole write transaction again when the database picked it as a deadlock victim.

    Processes racing on one alert (several ``run``s, workers, a scheduler) can deadlock on
    MySQL's unique-key locks; the database rolls the victim back whole, so trying again, after
    a short random pause, is safe. Only deadlocks: every other fault is the caller's to retry."""

    @functools.wraps(transaction)
    def again(*args: P.args, **kwargs: P.kwargs) -> R:
        # The first try runs bare: building a retry loop for every run of the hot path costs
        # tens of microseconds, and deadlocks are rare.
        try:
            return transaction(*args, **kwargs)
        except StateStoreError as exc:
            if not exc.deadlock:
                raise
        for attempt in Retrying(
            retry=retry_if_exception(_deadlocked),
            before=lambda state: time.sleep(_DEADLOCK_PAUSE(state)),  # a pause before each try
            stop=stop_after_attempt(DEADLOCK_ATTEMPTS - 1),
            reraise=True,
        ):
            with attempt:
                return transaction(*args, **kwargs)
        raise AssertionError("unreachable: tenacity re-raises the last attempt's error")

    return again


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it takes the write lock at BEGIN."""
    with (
        state_errors(),
        engine.connect().execution_options(sentinel_write=True) as conn,
        conn.begin(),
    ):
        yield conn


@contextmanager
def autocommit(engine: Engine) -> Iterator[Connection]:
    """A connection whose every statement commits on its own (no BEGIN, no COMMIT round trip);
    the caller wraps it in :func:`state_errors`."""
    with engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        yield conn


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    with state_errors(), engine.connect() as conn, conn.begin():
        yield conn


def insert_ignore(conn: Connection, table: sa.Table, values: dict[str, Any]) -> bool:
    """Insert a row unless one with the same unique key exists; True when this call inserted it.

    The race-tolerant form of "look, then insert": two processes doing it at the same instant
    both succeed, and exactly one row results. One statement on every backend the store supports
    (``ON CONFLICT DO NOTHING``, MySQL's ``INSERT IGNORE``); elsewhere a savepoint absorbs the
    duplicate-key error.
    """
    stmt = _insert_ignore_statement(conn.dialect.name, table)
    if stmt is not None:
        # psycopg forgets the row count when the cursor closes, before SQLAlchemy reads it.
        result = conn.execute(stmt, values, execution_options={"preserve_rowcount": True})
        if result.returns_rows:  # SQLAlchemy's implicit RETURNING of the generated key
            key = result.inserted_primary_key
            return key is not None and key[0] is not None
        return bool(result.rowcount == 1)
    try:
        with conn.begin_nested():
            conn.execute(table.insert(), values)
    except sa.exc.IntegrityError:
        return False
    return True


@functools.cache
def _insert_ignore_statement(dialect: str, table: sa.Table) -> Any:
    """Built once per (backend, table): the hot path (a state row per run) reuses it."""
    if dialect == "postgresql":
        from sqlalchemy.dialects import postgresql

        return postgresql.insert(table).on_conflict_do_nothing()
    if dialect == "sqlite":
        from sqlalchemy.dialects import sqlite

        return sqlite.insert(table).on_conflict_do_nothing()
    if dialect in ("mysql", "mariadb"):
        return table.insert().prefix_with("IGNORE")
    return None


def lock_clause(conn: Connection) -> bool:
    """Whether ``SELECT … FOR UPDATE`` is needed (SQLite already holds the lock since BEGIN)."""
    return conn.dialect.name != "sqlite"


def describe_db_error(exc: BaseException) -> str:
    """One line, no SQL, no password: what an operator needs from a driver error."""
    return f"state database: {one_line(exc)}"


def inserted_id(result: sa.CursorResult[Any]) -> int:
    """The primary key a single-row INSERT generated."""
    key = result.inserted_primary_key
    if key is None or key[0] is None:
        raise StateStoreError("state database: the insert returned no id")
    return int(key[0])
