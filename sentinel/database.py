"""Running alert queries: read-only, time-bounded, a few rows at most.

The SQL guard (:mod:`sentinel.sqlguard`) is the first fence. This module is the second, for what a
parser cannot see: a view or function that writes, a driver that accepts several statements. Every
query runs in a transaction the database itself keeps read-only, under a statement timeout the
database enforces, and is always rolled back. Engines made by :func:`create_data_engine` are
read-only before any of that (PostgreSQL's ``default_transaction_read_only``, MySQL's session
``TRANSACTION READ ONLY``, SQLite's ``query_only``, DuckDB's ``read_only``), so even a connection
used outside the adapter cannot write.

Only the rows asked for are read (the first, or the first few of a ``details_query``), through a
server-side cursor where the driver has one, so a query that matches ten million rows costs a few
rows of memory. First row and first N rows are one code path, :meth:`DatabaseAdapter._fetch`.
"""

from __future__ import annotations

import math
import os
import threading
import time
from dataclasses import dataclass
from typing import Any, NamedTuple
from urllib.parse import quote

import sqlalchemy as sa
from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import URL, Connection, Engine

from sentinel import defaults
from sentinel.errors import (
    ConfigurationError,
    DatabaseUnavailableError,
    ExecutionError,
    QueryTimeoutError,
)
from sentinel.models import QueryResult
from sentinel.postgres_query import can_pipeline, fetch_pipelined
from sentinel.query_limits import (
    SOCKET_GRACE_SECONDS,
    is_timeout,
    read_only_transaction,
    time_left_for_next_fetch,
)
from sentinel.redact import redact
from sentinel.result import parse_result_row
from sentinel.sqlguard import check_query, dialect_for_url

# Heroku and most tutorials write postgres:// or mysql:// with no driver; these are the drivers
# SQL Sentinel installs (the `postgres` and `mysql` extras).
_DEFAULT_DRIVERS = {
    "postgres": "postgresql+psycopg",
    "postgresql": "postgresql+psycopg",
    "mysql": "mysql+pymysql",
    "mariadb": "mariadb+pymysql",
}
_LIBPQ_DRIVERS = ("psycopg", "psycopg2")
_MYSQL_DRIVERS = ("pymysql", "mysqldb")
_MAX_MESSAGE = 300


@dataclass(frozen=True)
class FirstRow:
    """The first row of a query, and whether the query had more (the caller warns about those)."""

    row: dict[str, Any] | None
    more_rows: bool
    columns: tuple[str, ...] = ()


class _Rows(NamedTuple):
    rows: list[dict[str, Any]]
    more_rows: bool  # the query had rows beyond those read
    columns: tuple[str, ...]


def normalize_url(url: str) -> URL:
    """Parse a database URL, giving driverless PostgreSQL and MySQL URLs the installed drivers.

    Raises :class:`~sentinel.errors.ConfigurationError` for a URL SQLAlchemy cannot read; the
    message never repeats the URL, which may carry a password.
    """
    try:
        parsed = sa.make_url(url)
    except (sa_exc.ArgumentError, ValueError, TypeError):
        raise ConfigurationError(
            "invalid database URL: expected dialect[+driver]://user[:password]@host[:port]/database"
        ) from None
    backend, _, driver = parsed.drivername.partition("+")
    if backend == "postgres":
        backend = "postgresql"
    if not driver and backend in _DEFAULT_DRIVERS:
        return parsed.set(drivername=_DEFAULT_DRIVERS[backend])
    return parsed.set(drivername=f"{backend}+{driver}" if driver else backend)


def create_data_engine(
    url: str,
    timeout: float = defaults.QUERY_TIMEOUT_SECONDS,
    pool_size: int = defaults.POOL_SIZE,
    *,
    threads: int | None = None,
) -> Engine:
    """An engine for alert queries that cannot write, whatever is later done with it.

    ``timeout`` bounds connecting; :class:`DatabaseAdapter` bounds each query with the same value
    by default. ``threads`` is how many threads of this process run queries at once: the pool
    opens at most that many connections (keeping ``pool_size`` while idle), so a fleet's
    connection count follows from its thread counts.
    """
    from sentinel.store.engine import ping_when_idle, pool_options

    parsed = normalize_url(url)
    backend, _, driver = parsed.drivername.partition("+")  # get_driver_name() imports the dialect
    whole_seconds = max(1, math.ceil(timeout))
    connect_args: dict[str, Any] = {}
    options: dict[str, Any] = {}
    if backend == "postgresql" and driver in _LIBPQ_DRIVERS:
        connect_args["connect_timeout"] = max(2, whole_seconds)  # libpq treats 1 as 2 anyway
        read_only = "-c default_transaction_read_only=on"
        existing = parsed.query.get("options")
        connect_args["options"] = (
            f"{existing} {read_only}" if isinstance(existing, str) else read_only
        )
    elif backend in ("mysql", "mariadb") and driver in _MYSQL_DRIVERS:
        socket_seconds = math.ceil(timeout + SOCKET_GRACE_SECONDS)
        connect_args.update(
            connect_timeout=whole_seconds,
            read_timeout=socket_seconds,
            write_timeout=socket_seconds,
            init_command="SET SESSION TRANSACTION READ ONLY",
        )
    elif backend == "sqlite":
        connect_args["timeout"] = timeout  # how long to wait for another writer's lock
        parsed = _sqlite_read_only(parsed)
    elif backend == "duckdb":
        connect_args["read_only"] = True
    if not (backend == "sqlite" and parsed.database in (None, "", ":memory:")):
        options.update(pool_options(threads, pool_size))
    try:
        engine = sa.create_engine(parsed, connect_args=connect_args, **options)
    except sa_exc.NoSuchModuleError:
        raise ConfigurationError(f"unsupported database type '{parsed.drivername}'") from None
    except ImportError as exc:
        raise ConfigurationError(
            f"the driver for '{parsed.drivername}' is not installed ({exc.name or exc})"
        ) from None
    if backend == "sqlite":
        sa.event.listen(engine, "connect", _sqlite_query_only)
    ping_when_idle(engine)
    return engine


def _sqlite_read_only(parsed: URL) -> URL:
    """Open a SQLite file in read-only URI mode: the OS-level guard, and a missing file is an
    error instead of a new empty database (a dry run must not create files)."""
    path = parsed.database
    if not path or path == ":memory:" or path.startswith("file:") or parsed.query.get("uri"):
        return parsed
    uri = f"file:{quote(os.path.abspath(path))}?mode=ro"
    return parsed.set(database=uri, query={**parsed.query, "uri": "true"})


def _sqlite_query_only(dbapi_connection: Any, _record: Any) -> None:
    dbapi_connection.execute("PRAGMA query_only=ON")


class DatabaseAdapter:
    """Runs alert queries against one database: guarded, read-only, bounded in time and memory."""

    def __init__(self, engine: Engine, timeout: float = defaults.QUERY_TIMEOUT_SECONDS) -> None:
        self.engine = engine
        self.timeout = timeout
        self._local = threading.local()

    @property
    def dialect_name(self) -> str:
        """SQLAlchemy's name for the backend: 'postgresql', 'mysql', 'mariadb', 'sqlite' ..."""
        return str(self.engine.dialect.name)

    @property
    def sql_dialect(self) -> str | None:
        """The sqlglot dialect the SQL guard parses this database's queries in."""
        return dialect_for_url(self.engine.url.drivername)

    @property
    def more_rows(self) -> bool:
        """Whether this thread's last :meth:`execute_query` had rows beyond the first."""
        return bool(getattr(self._local, "more_rows", False))

    def execute_query(
        self, sql: str, timeout: float | None = None, *, guard: bool = True
    ) -> dict[str, Any] | None:
        """The first row as a dict (names as the database returned them), or None for no row.

        ``guard=False`` skips the SQL guard; only tests use it, to show the database refuses too.
        """
        first = self.fetch_first_row(sql, timeout, guard=guard)
        self._local.more_rows = first.more_rows
        return first.row

    def execute_alert_query(self, sql: str, timeout: float | None = None) -> QueryResult:
        """Run an alert query and read its row through the result contract."""
        return parse_result_row(self.execute_query(sql, timeout))

    def fetch_first_row(
        self, sql: str, timeout: float | None = None, *, guard: bool = True
    ) -> FirstRow:
        """Like :meth:`execute_query`, returning whether more rows followed, thread-safely."""
        rows, more, columns = self._fetch(sql, 1, timeout, guard=guard)
        return FirstRow(rows[0] if rows else None, more, columns)

    def fetch_rows(
        self, sql: str, limit: int, timeout: float | None = None
    ) -> list[dict[str, Any]]:
        """At most ``limit`` rows, in the query's order, each a dict keyed by column name.

        For the rows a notification shows (``details_query``): guarded, read-only and bounded in
        time like the alert query, and never more than ``limit`` rows read, whatever matches.
        """
        return self._fetch(sql, limit, timeout).rows

    def _fetch(self, sql: str, limit: int, timeout: float | None, *, guard: bool = True) -> _Rows:
        """The one way a query runs: guard, read-only transaction, timeout, read ``limit`` rows."""
        if guard:
            check_query(sql, self.sql_dialect)
        if limit < 1:
            raise ValueError(f"limit must be at least 1, got {limit}")
        seconds = self.timeout if timeout is None else float(timeout)
        if not seconds > 0:
            raise ValueError(f"timeout must be positive, got {seconds}")
        # Pools do not ping each connection they hand out (a round trip per query): one that
        # died in the pool fails the first statement, and the query (read-only, so safe to
        # repeat) runs once more on a new connection. A database that is away fails that too.
        try:
            return self._fetch_once(sql, limit, seconds)
        except DatabaseUnavailableError as exc:
            if not _lost_connection(exc):
                raise
        return self._fetch_once(sql, limit, seconds)

    def _fetch_once(self, sql: str, limit: int, seconds: float) -> _Rows:
        conn = self._connect()
        deadline = time.monotonic() + seconds
        try:
            if can_pipeline(conn):
                return _Rows(*fetch_pipelined(conn, sql, limit, seconds))
            with read_only_transaction(conn, seconds, deadline):
                return _read_rows(conn, sql, limit, deadline)
        except sa_exc.DBAPIError as exc:
            raise self._translate(exc, seconds, deadline) from exc
        finally:
            _finish(conn)

    def test_connection(self) -> bool:
        """Whether the database answers a trivial query now; never raises."""
        return self.connection_error() is None

    def connection_error(self) -> str | None:
        """Why the database does not answer a trivial query now (one masked line), or ``None``."""
        try:
            with self._connect() as conn:
                conn.exec_driver_sql("SELECT 1").close()
                conn.rollback()
        except DatabaseUnavailableError as exc:
            return redact(exc)
        except sa_exc.DBAPIError as exc:
            return _first_line(exc)
        except sa_exc.SQLAlchemyError as exc:
            return redact(exc)
        return None

    def dispose(self) -> None:
        """Close every pooled connection (at shutdown, and in tests to leave nothing open)."""
        self.engine.dispose()

    def _where(self) -> str:
        return redact(self.engine.url.render_as_string(hide_password=True))

    def _connect(self) -> Connection:
        try:
            return self.engine.connect()
        except sa_exc.TimeoutError:
            raise DatabaseUnavailableError(
                f"no free connection to {self._where()} (connection pool exhausted)"
            ) from None
        except sa_exc.DBAPIError as exc:
            raise DatabaseUnavailableError(
                f"cannot connect to {self._where()}: {_first_line(exc)}"
            ) from exc

    def _translate(self, exc: sa_exc.DBAPIError, limit: float, deadline: float) -> ExecutionError:
        if is_timeout(exc, time.monotonic() >= deadline):
            return QueryTimeoutError(f"query exceeded its {limit:g}s timeout")
        if exc.connection_invalidated:
            return DatabaseUnavailableError(
                f"lost the connection to {self._where()}: {_first_line(exc)}"
            )
        return ExecutionError(_first_line(exc))


def _lost_connection(exc: BaseException) -> bool:
    """A query that failed because its pooled connection was gone, not because of the query."""
    return (
        isinstance(exc, DatabaseUnavailableError)
        and isinstance(exc.__cause__, sa_exc.DBAPIError)
        and bool(exc.__cause__.connection_invalidated)
    )


def _read_rows(conn: Connection, sql: str, limit: int, deadline: float) -> _Rows:
    """Read ``limit`` rows and look one ahead: whether the result ended decides how it is left."""
    # no_parameters: the SQL goes to the driver as written, so a literal "%" is not a placeholder.
    options = {"stream_results": True, "no_parameters": True}
    # With a server-side cursor, SQLAlchemy fetches the first row here already.
    result = conn.exec_driver_sql(sql, execution_options=options)
    if not result.returns_rows:
        result.close()
        return _Rows([], more_rows=False, columns=())
    columns = tuple(result.keys())
    if limit > 1:
        time_left_for_next_fetch(conn, deadline)  # one more FETCH, for rows 2..limit
    rows = [dict(row._mapping) for row in result.fetchmany(limit)]
    more = False
    if len(rows) == limit:
        time_left_for_next_fetch(conn, deadline)
        more = result.fetchone() is not None
    if more and conn.dialect.name in ("mysql", "mariadb"):
        _abandon_mysql_result(conn)
    result.close()
    return _Rows(rows, more, columns)


def _abandon_mysql_result(conn: Connection) -> None:
    """Drop a half-read MySQL result without reading the rest of it.

    The MySQL protocol has no way to stop a result set: closing an unbuffered cursor reads every
    remaining row. Closing the connection is the only cheap way out; the pool opens a new one.
    PyMySQL would still try to drain when the cursor is closed, so its result is marked finished.
    """
    pending = getattr(conn.connection.dbapi_connection, "_result", None)
    if pending is not None and hasattr(pending, "unbuffered_active"):
        pending.unbuffered_active = False
    conn.invalidate()


def _finish(conn: Connection) -> None:
    """Roll back (never commit) and return the connection; a broken one is thrown away."""
    try:
        if not conn.invalidated and conn.in_transaction():
            conn.rollback()
    except sa_exc.DBAPIError:
        conn.invalidate()
    finally:
        conn.close()


def _first_line(exc: sa_exc.DBAPIError) -> str:
    """The driver's own message, first line only, with any secret masked.

    SQLAlchemy's text adds the SQL, parameters and a documentation link; drivers add hints on
    further lines. PyMySQL's errors are ``(errno, message)`` tuples: the message is what matters.
    """
    orig = exc.orig
    args: tuple[Any, ...] = getattr(orig, "args", ())
    if len(args) >= 2 and isinstance(args[0], int) and isinstance(args[1], str):
        text = args[1]
    else:
        text = str(orig) if orig is not None else str(exc)
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    line = lines[0] if lines else type(orig).__name__
    line = redact(line)
    return line if len(line) <= _MAX_MESSAGE else line[: _MAX_MESSAGE - 3] + "..."


__all__ = ["DatabaseAdapter", "FirstRow", "create_data_engine", "normalize_url"]
