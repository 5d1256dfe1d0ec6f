"""An alert query on PostgreSQL (psycopg 3) in one round trip to the server, and the state
store's hot statements in as few.

The generic path (:mod:`sentinel.database`) opens the read-only transaction, sets its timeout,
declares the server-side cursor, describes it, fetches, looks one row ahead and rolls back: about
nine round trips, each a wake-up of the server and of the worker. Here the same statements go in
one libpq pipeline and one ``Sync``:

``BEGIN READ ONLY`` · ``SET LOCAL statement_timeout`` · ``DECLARE … NO SCROLL CURSOR FOR <query>`` ·
``FETCH FORWARD limit+1`` · ``ROLLBACK``

Nothing is given up: the transaction is read-only (as the connection's default already is), the
server cancels the ``FETCH`` after the timeout, only ``limit + 1`` rows leave the server (the
extra one says whether there were more), and the query is still its own extended-protocol
statement, so a second statement smuggled into it is refused by the server (``cannot insert
multiple commands into a prepared statement``). The statements are sent on libpq's connection
(``psycopg.pq``), so psycopg adds no ``BEGIN`` of its own; the ``BEGIN READ ONLY`` is ours.

The state store's hot statements run on the psycopg connection under SQLAlchemy's too
(:func:`run_pipelined`, :func:`execute_raw`): the claim, committed on its own; then ``BEGIN``, the
fenced finish of the execution row and the locking read of the state row in one round trip, and
the state update with its ``COMMIT`` in another. SQLAlchemy still owns the checkout, the
transaction and the return to the pool, and compiles each statement once; libpq sends each as a
statement prepared once per connection, and no run pays for SQLAlchemy's execution machinery
(cache-key lookup, parameter processing, result metadata from a 25-column description).
"""

from __future__ import annotations

import functools
import itertools
import re
import weakref
from collections.abc import Callable, Mapping, Sequence
from datetime import UTC, datetime
from enum import Enum
from typing import Any

from sqlalchemy import exc as sa_exc
from sqlalchemy.engine import Connection

#: The server-side cursor's name: one per connection at a time, closed by the ROLLBACK.
CURSOR = "sentinel_alert_query"


@functools.cache
def pipeline_supported() -> bool:
    """Whether the installed psycopg and libpq have pipeline mode (libpq 14 and later)."""
    try:
        import psycopg
    except ImportError:
        return False
    return bool(psycopg.Pipeline.is_supported())


@functools.cache
def _pg() -> Any:
    """psycopg's pieces the hot path uses, imported once (psycopg is an optional dependency)."""
    from types import SimpleNamespace

    import psycopg
    from psycopg import errors, generators
    from psycopg._queries import PostgresQuery
    from psycopg.adapt import Transformer
    from psycopg.pq import ExecStatus, TransactionStatus
    from psycopg.types.json import Json

    return SimpleNamespace(
        Error=psycopg.Error,
        errors=errors,
        generators=generators,
        PostgresQuery=PostgresQuery,
        Transformer=Transformer,
        ExecStatus=ExecStatus,
        TransactionStatus=TransactionStatus,
        Json=Json,
    )


def can_pipeline(conn: Connection) -> bool:
    """The fast path is for psycopg 3 on PostgreSQL; every other driver takes the generic path."""
    dialect = conn.dialect
    return dialect.name == "postgresql" and dialect.driver == "psycopg" and pipeline_supported()


def fetch_pipelined(
    conn: Connection, sql: str, limit: int, seconds: float
) -> tuple[list[dict[str, Any]], bool, tuple[str, ...]]:
    """``limit`` rows of ``sql`` (dicts by column name), whether it had more, and its columns.

    Raises SQLAlchemy's :class:`~sqlalchemy.exc.DBAPIError` around the driver's error, as the
    generic path does, with ``connection_invalidated`` set (and the connection invalidated) when
    the connection itself is gone."""
    pg = _pg()
    raw: Any = conn.connection.dbapi_connection
    try:
        try:
            columns, found = _send(raw, sql, limit, max(1, round(seconds * 1000)))
        finally:
            if not raw.closed and raw.pgconn.transaction_status != pg.TransactionStatus.IDLE:
                raw.rollback()  # an error skipped the pipelined ROLLBACK
    except pg.Error as exc:
        raise _as_dbapi_error(conn, raw, exc, sql) from exc
    rows = [dict(zip(columns, row, strict=True)) for row in found[:limit]]
    return rows, len(found) > limit, columns


def _send(raw: Any, sql: str, limit: int, timeout_ms: int) -> tuple[tuple[str, ...], list[Any]]:
    """Run the statements in one pipeline; returns the FETCH's column names and rows.

    Driven through libpq's pipeline directly (``psycopg.pq``), one flush and one read of the
    results, not through cursors: psycopg's own pipeline tries to talk to the server at every
    statement queued, a dozen polls of the socket per query. Each statement is still sent
    with the extended protocol (``PQsendQueryParams``), so the alert query cannot carry a
    second statement. The first error (the query's, or the timeout) is raised once every result
    up to the ``Sync`` is read, so the connection leaves pipeline mode clean."""
    pg = _pg()
    encoding = raw.info.encoding
    statements = (
        b"BEGIN READ ONLY",
        f"SET LOCAL statement_timeout = {timeout_ms}".encode(),
        f"DECLARE {CURSOR} NO SCROLL CURSOR FOR {sql}".encode(encoding),
        f"FETCH FORWARD {limit + 1} FROM {CURSOR}".encode(),
        b"ROLLBACK",
    )

    def queue(pgconn: Any) -> None:
        for statement in statements:
            pgconn.send_query_params(statement, None)

    results = _exchange(raw, queue)
    for result in results:
        if result.status == pg.ExecStatus.FATAL_ERROR:
            raise pg.errors.error_from_result(result, encoding=encoding)
    fetched = results[3]
    transformer = pg.Transformer(raw)
    transformer.set_pgresult(fetched)
    columns = tuple(fetched.fname(i).decode(encoding) for i in range(fetched.nfields))
    return columns, transformer.load_rows(0, fetched.ntuples, tuple)


def _exchange(raw: Any, queue: Callable[[Any], None]) -> list[Any]:
    """One round trip: ``queue`` sends its statements on libpq's connection in pipeline mode,
    then one flush and one read of every result up to the ``Sync``. The connection leaves
    pipeline mode clean, or is closed when results were left unread (it cannot be trusted)."""
    pg = _pg()
    pgconn = raw.pgconn
    results: list[Any] = []
    pgconn.enter_pipeline_mode()
    try:
        queue(pgconn)
        pgconn.pipeline_sync()
        raw.wait(pg.generators.send(pgconn))
        while True:
            batch = raw.wait(pg.generators.fetch_many(pgconn))
            if batch and batch[0].status == pg.ExecStatus.PIPELINE_SYNC:
                break
            results.extend(batch)
    finally:
        if raw.closed or not _left_pipeline(pgconn):
            raw.close()
    return results


def _as_dbapi_error(conn: Connection, raw: Any, exc: Exception, statement: str) -> Exception:
    """The driver's error as SQLAlchemy's, as the generic path raises it; a connection that is
    gone is invalidated, and the error says so."""
    error: Any = exc
    lost = bool(raw.closed) or conn.dialect.is_disconnect(error, raw, None)
    if lost:
        conn.invalidate(exc)
    return sa_exc.DBAPIError.instance(
        statement, None, exc, _pg().Error, connection_invalidated=lost
    )


def _left_pipeline(pgconn: Any) -> bool:
    try:
        pgconn.exit_pipeline_mode()
    except Exception:
        return False
    return True


def psycopg_connection(conn: Connection) -> Any | None:
    """The psycopg connection under ``conn``, or ``None`` when it is another driver's."""
    if conn.dialect.driver != "psycopg":
        return None
    return conn.connection.dbapi_connection


#: (statement, parameter names, dialect) -> the SQL psycopg runs, and the values of the literal
#: binds SQLAlchemy made (``status = 'running'``): compiled once per statement and set of columns.
_COMPILED: dict[tuple[Any, tuple[str, ...], Any], tuple[str, dict[str, Any]]] = {}


def _compiled(statement: Any, keys: tuple[str, ...], dialect: Any) -> tuple[str, dict[str, Any]]:
    found = _COMPILED.get((statement, keys, dialect))
    if found is None:
        compiled = statement.compile(dialect=dialect, column_keys=list(keys))
        fixed = {k: bindable(v) for k, v in compiled.params.items() if k not in keys}
        found = _COMPILED[(statement, keys, dialect)] = (str(compiled), fixed)
    return found


#: Parameter types psycopg binds as they are (most of a run's parameters).
_PLAIN = frozenset({str, int, float, bool, type(None)})


def bindable(value: Any) -> Any:
    """A parameter as the state tables' column types bind it (``UTCDateTime``, ``NameIn``,
    ``JSON``): aware times as naive UTC, enum members as their values, dicts and lists as JSON."""
    kind = type(value)
    if kind in _PLAIN:
        return value
    if kind is datetime:
        return value if value.tzinfo is None else value.astimezone(UTC).replace(tzinfo=None)
    if isinstance(value, Enum):
        return str(value.value)
    if isinstance(value, dict | list):
        return _pg().Json(value)
    if isinstance(value, datetime) and value.tzinfo is not None:
        return value.astimezone(UTC).replace(tzinfo=None)
    return value


def execute_raw(conn: Connection, cursor: Any, statement: Any, params: Mapping[str, Any]) -> Any:
    """Run a Core ``statement`` on ``cursor`` (of :func:`psycopg_connection`); returns the cursor.

    A driver error is raised as SQLAlchemy's :class:`~sqlalchemy.exc.DBAPIError` (so the store's
    ``state_errors`` tells a connection fault from a statement error, as for any statement), and a
    connection that is gone is invalidated, as SQLAlchemy does for the statements it runs."""
    pg = _pg()
    sql, fixed = _compiled(statement, tuple(params), conn.dialect)
    values = {key: bindable(value) for key, value in params.items()}
    try:
        cursor.execute(sql, {**fixed, **values} if fixed else values)
    except pg.Error as exc:
        raw = cursor.connection
        error: Any = exc
        lost = bool(raw.closed) or conn.dialect.is_disconnect(error, raw, cursor)
        if lost:
            conn.invalidate(exc)
        raise sa_exc.DBAPIError.instance(
            sql, None, exc, pg.Error, connection_invalidated=lost
        ) from exc
    return cursor


def autocommit_scalar(conn: Connection, statement: Any, params: Mapping[str, Any]) -> Any:
    """Run one write that commits by itself (a pipeline's implicit transaction, committed at its
    ``Sync``, before the answer comes back: no ``BEGIN`` or ``COMMIT`` round trip); its first
    column, or ``None``."""
    ((_, rows),) = run_pipelined(conn, [(statement, params)])
    return rows[0][0] if rows else None


#: A text-format placeholder for every parameter: the server reads each as the type its place in
#: the statement says (SQLAlchemy's casts), so one prepared statement fits every run's values.
_PLACEHOLDER = re.compile(r"%\((\w+)\)s")
#: The statements prepared on each psycopg connection: SQL -> name (gone with the connection).
_PREPARED: weakref.WeakKeyDictionary[Any, dict[str, bytes]] = weakref.WeakKeyDictionary()
_TEXT_SQL: dict[str, str] = {}
_NAMES = itertools.count()  # never reused, so a statement prepared again cannot collide


def run_pipelined(
    conn: Connection,
    steps: Sequence[tuple[Any, Mapping[str, Any]]],
    *,
    begin: bool = False,
    commit: bool = False,
) -> list[tuple[int, list[tuple[Any, ...]]]]:
    """Run Core statements (with their parameters) in one libpq pipeline: one round trip.

    ``begin`` opens the transaction with them (the ``BEGIN`` psycopg would send alone), and
    ``commit`` ends it; they run in order and stop at the first error, which is raised as
    :func:`execute_raw` raises it. Each statement is prepared once per connection. Returns, for
    each statement, the rows it matched and the rows it returned."""
    pg = _pg()
    raw: Any = conn.connection.dbapi_connection
    try:
        results, transformer = _pipeline(raw, conn.dialect, steps, begin, commit)
    except pg.Error as exc:
        raise _as_dbapi_error(conn, raw, exc, "(pipelined)") from exc
    answers = []
    for result in results:
        transformer.set_pgresult(result)
        rows = transformer.load_rows(0, result.ntuples, tuple) if result.nfields else []
        answers.append((int(result.command_tuples or 0), rows))
    return answers


def _pipeline(
    raw: Any, dialect: Any, steps: Sequence[tuple[Any, Mapping[str, Any]]], begin: bool, end: bool
) -> tuple[list[Any], Any]:
    pg = _pg()
    prepared = _PREPARED.setdefault(raw, {})
    transformer = pg.Transformer(raw)
    mine: list[bool] = []  # which results answer a step (not BEGIN, COMMIT or a Prepare)
    added: list[str] = []  # statements prepared by this pipeline

    def queue(pgconn: Any) -> None:
        if begin:
            pgconn.send_query_params(b"BEGIN", None)
            mine.append(False)
        for statement, params in steps:
            sql, fixed = _compiled(statement, tuple(params), dialect)
            text = _TEXT_SQL.get(sql) or _TEXT_SQL.setdefault(sql, _PLACEHOLDER.sub(r"%(\1)t", sql))
            query = pg.PostgresQuery(transformer)
            query.convert(text, {**fixed, **{k: bindable(v) for k, v in params.items()}})
            name = prepared.get(text)
            if name is None:
                name = f"sentinel_{next(_NAMES)}".encode()
                pgconn.send_prepare(name, query.query, param_types=None)
                mine.append(False)
                prepared[text] = name
                added.append(text)
            pgconn.send_query_prepared(name, query.params, param_formats=query.formats)
            mine.append(True)
        if end:
            pgconn.send_query_params(b"COMMIT", None)
            mine.append(False)

    results = _exchange(raw, queue)
    for result in results:
        if result.status == pg.ExecStatus.FATAL_ERROR:
            for text in added:  # an error skips what follows it: prepared anew next time
                prepared.pop(text, None)
            raise pg.errors.error_from_result(result, encoding=raw.info.encoding)
    return [result for result, ok in zip(results, mine, strict=True) if ok], transformer
