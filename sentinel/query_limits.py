"""How each database is told that a query is read-only and when to stop it.

PostgreSQL and MySQL/MariaDB enforce a statement timeout themselves (the server's own error is the
clearest); SQLite is stopped by a progress handler, anything else by a timer that interrupts the
driver. Which error means "the timeout fired" differs per driver too; it is all decided here, so
:mod:`sentinel.database` runs every query the same way.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

# Socket timeouts outlive the statement timeout so the server's own, clearer error arrives first.
SOCKET_GRACE_SECONDS = 5.0
# SQLite calls the progress handler every this many VM instructions (about every 0.1 ms).
_SQLITE_PROGRESS_STEPS = 10_000
# Error codes that mean "the statement timeout fired" (PostgreSQL SQLSTATE; MySQL, MariaDB errno).
_PG_QUERY_CANCELED = "57014"
_MYSQL_TIMEOUT_ERRNOS = (3024, 1969)
_MYSQL_LOST_CONNECTION = 2013


@contextmanager
def read_only_transaction(conn: Connection, limit: float, deadline: float) -> Iterator[None]:
    """Open a read-only transaction whose statements the database cancels after ``limit``."""
    backend = conn.dialect.name
    raw: Any = conn.connection.dbapi_connection
    if backend == "postgresql":
        conn.exec_driver_sql("SET TRANSACTION READ ONLY")
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {max(1, round(limit * 1000))}")
        yield
    elif backend in ("mysql", "mariadb"):
        _mysql_limits(conn, raw, limit)
        yield
    elif backend == "sqlite" and hasattr(raw, "set_progress_handler"):
        raw.set_progress_handler(lambda: int(time.monotonic() > deadline), _SQLITE_PROGRESS_STEPS)
        try:
            yield
        finally:
            raw.set_progress_handler(None, 0)
    else:
        with _interrupt_after(raw, limit):
            yield


def _mysql_limits(conn: Connection, raw: Any, limit: float) -> None:
    # MariaDB has no max_execution_time; its max_statement_time is in seconds and covers SLEEP too.
    if getattr(conn.dialect, "is_mariadb", False):
        conn.exec_driver_sql(f"SET SESSION max_statement_time = {limit:.3f}")
    else:
        conn.exec_driver_sql(f"SET SESSION max_execution_time = {max(1, round(limit * 1000))}")
    conn.exec_driver_sql("START TRANSACTION READ ONLY")
    # PyMySQL fixes its socket timeout at connect; this query's own timeout may be longer.
    if hasattr(raw, "_read_timeout"):
        raw._read_timeout = limit + SOCKET_GRACE_SECONDS


@contextmanager
def _interrupt_after(raw: Any, limit: float) -> Iterator[None]:
    """No statement timeout we know how to set: interrupt from a timer (DuckDB, psycopg-alikes)."""
    cancel = getattr(raw, "interrupt", None) or getattr(raw, "cancel", None)
    timer = threading.Timer(limit, cancel) if callable(cancel) else None
    if timer is not None:
        timer.daemon = True
        timer.start()
    try:
        yield
    finally:
        if timer is not None:
            timer.cancel()


def time_left_for_next_fetch(conn: Connection, deadline: float) -> None:
    """Each FETCH from a PostgreSQL server-side cursor is a statement with a timeout of its own:
    give the next one only what is left, so the whole query stays within one timeout."""
    if conn.dialect.name == "postgresql":
        left_ms = max(1, round((deadline - time.monotonic()) * 1000))
        conn.exec_driver_sql(f"SET LOCAL statement_timeout = {left_ms}")


def is_timeout(exc: sa_exc.DBAPIError, deadline_passed: bool) -> bool:
    orig = exc.orig
    if _PG_QUERY_CANCELED in (getattr(orig, "sqlstate", None), getattr(orig, "pgcode", None)):
        return True  # psycopg 3 names it sqlstate, psycopg2 pgcode
    args: tuple[Any, ...] = getattr(orig, "args", ())
    errno = args[0] if args and isinstance(args[0], int) else None
    if errno in _MYSQL_TIMEOUT_ERRNOS:
        return True
    if not deadline_passed:
        return False
    # Our own interruptions: SQLite's progress handler, the timer's cancel, a socket read timeout.
    if getattr(orig, "sqlite_errorname", None) == "SQLITE_INTERRUPT":
        return True
    text = str(orig).lower()
    return errno == _MYSQL_LOST_CONNECTION or "interrupt" in text or "cancel" in text
