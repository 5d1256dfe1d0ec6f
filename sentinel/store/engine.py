"""Connections to the state database, tuned for short locked transactions.

SQLite needs two things SQLAlchemy does not do by default: WAL with ``synchronous=NORMAL`` (so each
committed transition is cheap) and ``BEGIN IMMEDIATE`` for write transactions (so the alert's state
is locked from the first read, the SQLite equivalent of ``SELECT … FOR UPDATE``).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Literal, overload

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine

from sentinel.errors import StateStoreError
from sentinel.redact import one_line

#: Seconds a SQLite writer waits for another writer before giving up.
SQLITE_BUSY_TIMEOUT_MS = 30_000


@overload
def create_state_engine(url: str) -> Engine: ...
@overload
def create_state_engine(url: str, read_only: Literal[False]) -> Engine: ...
@overload
def create_state_engine(url: str, read_only: bool) -> Engine | None: ...


def create_state_engine(url: str, read_only: bool = False) -> Engine | None:
    """An engine for the state tables of ``url`` (any SQLAlchemy URL; Heroku's accepted).

    ``read_only`` is for dry runs, which promise to write nothing anywhere: SQLite is opened in
    read-only URI mode (``None`` if the file does not exist, since opening would create it) and
    other backends get read-only transactions.
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
    kwargs: dict[str, Any] = {"pool_pre_ping": True, "pool_size": 5, "max_overflow": 10}
    if backend in ("mysql", "mariadb"):
        kwargs["isolation_level"] = "READ COMMITTED"
    kwargs["connect_args"] = {"connect_timeout": 10}
    if read_only and backend == "postgresql":
        kwargs["connect_args"]["options"] = "-c default_transaction_read_only=on"
    engine = sa.create_engine(sa_url, **kwargs)
    if read_only and backend in ("mysql", "mariadb"):

        @event.listens_for(engine, "connect")
        def _read_only(dbapi_connection: Any, _record: Any) -> None:
            with dbapi_connection.cursor() as cursor:
                cursor.execute("SET SESSION TRANSACTION READ ONLY")

    return engine


def sqlite_file(engine: Engine) -> Path | None:
    """The file behind a SQLite state engine (``None`` for other backends and ``:memory:``)."""
    if engine.dialect.name != "sqlite":
        return None
    database = engine.url.database
    if not database or database == ":memory:" or database.startswith("file:"):
        return None
    return Path(database)


def _configure_sqlite(engine: Engine) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        # Let SQLAlchemy's begin event decide how a transaction starts (pysqlite would defer it).
        dbapi_connection.isolation_level = None
        cursor = dbapi_connection.cursor()
        cursor.execute(f"PRAGMA busy_timeout = {SQLITE_BUSY_TIMEOUT_MS}")
        cursor.execute("PRAGMA journal_mode = WAL")
        cursor.execute("PRAGMA synchronous = NORMAL")
        cursor.execute("PRAGMA foreign_keys = ON")
        cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: Connection) -> None:
        immediate = conn.get_execution_options().get("sentinel_write", False)
        conn.exec_driver_sql("BEGIN IMMEDIATE" if immediate else "BEGIN")


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A transaction that will write: on SQLite it takes the write lock at BEGIN."""
    try:
        with engine.connect().execution_options(sentinel_write=True) as conn, conn.begin():
            yield conn
    except sa.exc.OperationalError as exc:
        raise StateStoreError(describe_db_error(exc)) from None


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    try:
        with engine.connect() as conn, conn.begin():
            yield conn
    except sa.exc.OperationalError as exc:
        raise StateStoreError(describe_db_error(exc)) from None


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
