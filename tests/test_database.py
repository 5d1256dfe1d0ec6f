"""Alert queries against real SQLite, PostgreSQL and MariaDB: read-only, bounded, first row only.

Every test that takes ``db_url`` runs once per backend. Writes are attempted with the SQL guard
switched off, so what stops them is the database itself.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sentinel.database import DatabaseAdapter, create_data_engine, normalize_url
from sentinel.errors import (
    ExecutionError,
    QueryTimeoutError,
    ResultContractError,
    UnsafeQueryError,
)

ROWS = [(1, "first"), (2, "second"), (3, "third")]

NEVER_ENDS = {
    "postgresql": "SELECT pg_sleep(30) AS status",
    "mysql": "SELECT SLEEP(30) AS status",
    "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
    "SELECT count(*) AS status FROM c",
}
TEN_MILLION = {
    "postgresql": "SELECT 'OK' AS status, generate_series(1, 10000000) AS n",
    "mysql": "SELECT 'OK' AS status, seq AS n FROM seq_1_to_10000000",
    "sqlite": "WITH RECURSIVE c(n) AS (SELECT 1 UNION ALL SELECT n + 1 FROM c WHERE n < 10000000) "
    "SELECT 'OK' AS status, n FROM c",
}


def backend(url: str) -> str:
    return sa.make_url(url).get_backend_name()


def quote(url: str, name: str) -> str:
    """A case-preserving column alias on this backend (MariaDB's default mode has no "...")."""
    return f"`{name}`" if backend(url) == "mysql" else f'"{name}"'


def adapter_url(db: DatabaseAdapter) -> str:
    return db.engine.url.render_as_string(hide_password=False)


def snapshot(url: str) -> list[tuple[Any, ...]]:
    engine = sa.create_engine(normalize_url(url), poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return [
                tuple(r) for r in conn.exec_driver_sql("SELECT id, name FROM items ORDER BY id")
            ]
    finally:
        engine.dispose()


@pytest.fixture
def seeded(db_url: str) -> str:
    """The backend's fresh database with a table ``items`` of three rows, written without us."""
    engine = sa.create_engine(normalize_url(db_url), poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE items (id INTEGER PRIMARY KEY, name VARCHAR(20))")
        for id_, name in ROWS:
            conn.exec_driver_sql(f"INSERT INTO items (id, name) VALUES ({id_}, '{name}')")
    engine.dispose()
    return db_url


@pytest.fixture
def adapter(seeded: str) -> Iterator[DatabaseAdapter]:
    db = DatabaseAdapter(create_data_engine(seeded, timeout=10), timeout=10)
    yield db
    db.dispose()


class RssPeak:
    """Samples this process's resident memory in a thread: the peak growth over a block."""

    def __init__(self) -> None:
        self.baseline = self.peak = self._rss()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._sample, daemon=True)

    @staticmethod
    def _rss() -> int:
        with open("/proc/self/statm") as f:
            return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")

    def _sample(self) -> None:
        while not self._stop.wait(0.005):
            self.peak = max(self.peak, self._rss())

    def __enter__(self) -> RssPeak:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()
        self.peak = max(self.peak, self._rss())

    @property
    def growth_mb(self) -> float:
        return (self.peak - self.baseline) / 2**20


# --- writes are refused by the database itself ---------------------------------------------


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO items (id, name) VALUES (4, 'fourth')",
        "UPDATE items SET name = 'changed'",
        "DELETE FROM items",
        "DROP TABLE items",
        "CREATE TABLE more_items (id INTEGER)",
        "DELETE FROM items; COMMIT; SELECT 'OK' AS status",
    ],
)
def test_database_refuses_writes_without_the_guard(adapter: DatabaseAdapter, sql: str) -> None:
    with pytest.raises(ExecutionError) as caught:
        adapter.execute_query(sql, guard=False)
    assert not isinstance(caught.value, UnsafeQueryError)
    assert "\n" not in str(caught.value)
    assert snapshot(adapter_url(adapter)) == ROWS
    assert adapter.execute_query("SELECT count(*) AS n FROM items") == {"n": 3}


def test_function_that_writes_is_stopped_by_the_read_only_transaction(seeded: str) -> None:
    kind = backend(seeded)
    if kind == "sqlite":
        pytest.skip("SQLite has no SQL-defined functions")
    body = {
        "postgresql": "CREATE FUNCTION bump() RETURNS integer LANGUAGE sql AS "
        "$$ UPDATE items SET name = 'changed' RETURNING 1 $$",
        "mysql": "CREATE FUNCTION bump() RETURNS INT MODIFIES SQL DATA "
        "BEGIN UPDATE items SET name = 'changed'; RETURN 1; END",
    }[kind]
    writer = sa.create_engine(normalize_url(seeded), poolclass=sa.NullPool)
    with writer.begin() as conn:
        conn.exec_driver_sql(body)
    writer.dispose()
    db = DatabaseAdapter(create_data_engine(seeded, timeout=10))
    try:
        with pytest.raises(ExecutionError, match=r"(?i)read.only"):
            db.execute_query("SELECT 'OK' AS status, bump() AS n")  # the guard cannot see inside
    finally:
        db.dispose()
    assert snapshot(seeded) == ROWS


def test_engine_is_read_only_even_outside_the_adapter(seeded: str) -> None:
    engine = create_data_engine(seeded, timeout=10)
    try:
        with engine.connect() as conn, pytest.raises(sa.exc.DBAPIError):
            conn.exec_driver_sql("UPDATE items SET name = 'changed'")
            conn.commit()
    finally:
        engine.dispose()
    assert snapshot(seeded) == ROWS


# --- time and memory are bounded --------------------------------------------------------------


def test_query_that_never_ends_is_cancelled_at_its_timeout(adapter: DatabaseAdapter) -> None:
    sql = NEVER_ENDS[backend(adapter_url(adapter))]
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError) as caught:
        adapter.execute_query(sql, timeout=1)
    elapsed = time.monotonic() - started
    assert str(caught.value) == "query exceeded its 1s timeout"
    assert 0.9 <= elapsed < 3.0, elapsed
    # The same adapter, and its pooled connection, keep working.
    assert adapter.execute_query("SELECT 'OK' AS status") == {"status": "OK"}
    assert adapter.execute_alert_query("SELECT 'ALERT' AS status").status == "ALERT"


def test_timeout_bounds_the_whole_query_not_each_fetch(adapter: DatabaseAdapter) -> None:
    # The first row comes after 1.5 s, the second never: 2 s in all, not 2 s per fetch.
    sql = {
        "postgresql": "SELECT 'OK' AS status, pg_sleep(CASE WHEN n = 1 THEN 1.5 ELSE 30 END) AS s "
        "FROM generate_series(1, 3) AS n",
        "mysql": "SELECT 'OK' AS status, SLEEP(CASE WHEN seq = 1 THEN 1.5 ELSE 30 END) AS s "
        "FROM seq_1_to_3",
        "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT 'OK' AS status, x FROM c WHERE x = 1 OR x > 1000000000000",
    }[backend(adapter_url(adapter))]
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError, match="exceeded its 2s timeout"):
        adapter.execute_query(sql, timeout=2)
    assert time.monotonic() - started < 2.8
    assert adapter.execute_query("SELECT 'OK' AS status") == {"status": "OK"}


def test_ten_million_rows_cost_one_row(adapter: DatabaseAdapter) -> None:
    adapter.execute_query("SELECT 1 AS warm")  # connection set-up is not what is measured
    sql = TEN_MILLION[backend(adapter_url(adapter))]
    started = time.monotonic()
    with RssPeak() as memory:
        first = adapter.fetch_first_row(sql)
    elapsed = time.monotonic() - started
    assert first.row is not None
    assert {k.lower(): v for k, v in first.row.items()} == {"status": "OK", "n": 1}
    assert first.more_rows
    assert first.columns == ("status", "n")
    assert elapsed < 5.0, elapsed
    assert memory.growth_mb < 100, memory.growth_mb
    # Abandoning the rest (MySQL closes the connection to do so) leaves the adapter usable.
    assert adapter.execute_query("SELECT count(*) AS n FROM items") == {"n": 3}
    assert adapter.more_rows is False


def test_more_rows_is_reported(adapter: DatabaseAdapter) -> None:
    assert adapter.execute_query("SELECT id FROM items ORDER BY id") == {"id": 1}
    assert adapter.more_rows is True
    assert adapter.execute_query("SELECT id FROM items WHERE id = 2") == {"id": 2}
    assert adapter.more_rows is False


def test_literal_percent_signs_reach_the_database_unchanged(adapter: DatabaseAdapter) -> None:
    row = adapter.execute_query("SELECT '100%' AS p, count(*) AS n FROM items WHERE name LIKE 's%'")
    assert row == {"p": "100%", "n": 1}


def test_timeout_must_be_positive(adapter: DatabaseAdapter) -> None:
    with pytest.raises(ValueError, match="positive"):
        adapter.execute_query("SELECT 1", timeout=0)


# --- the result contract, read from real rows ----------------------------------------------------


@pytest.mark.parametrize(
    ("sql", "message"),
    [
        ("SELECT 'OK' AS status FROM items WHERE id > 100", "query returned no rows"),
        (
            "SELECT id AS a, name AS b FROM items WHERE id = 1",
            "query result has no 'status' column (columns: a, b)",
        ),
        ("SELECT 'maybe' AS status", "status must be 'ALERT' or 'OK', got 'maybe'"),
        ("SELECT NULL AS status", "status must be 'ALERT' or 'OK', got NULL"),
        ("SELECT 1 AS status", "status must be 'ALERT' or 'OK', got 1 (int)"),
    ],
)
def test_broken_results_say_what_is_wrong(adapter: DatabaseAdapter, sql: str, message: str) -> None:
    with pytest.raises(ResultContractError) as caught:
        adapter.execute_alert_query(sql)
    assert str(caught.value) == message


def test_contract_columns_match_any_case_and_context_keeps_names(adapter: DatabaseAdapter) -> None:
    status, actual, threshold, region, row_id = (
        quote(adapter_url(adapter), name)
        for name in ("STATUS", "Actual_Value", "THRESHOLD", "Region", "row_id")
    )
    sql = (
        f"SELECT ' alert ' AS {status}, 42 AS {actual}, 10 AS {threshold}, "
        f"name AS {region}, id AS {row_id} FROM items WHERE id = 3"
    )
    result = adapter.execute_alert_query(sql)
    assert result.status == "ALERT"
    assert (result.actual_value, result.threshold) == (42, 10)
    assert result.context == {"Region": "third", "row_id": 3}


def test_duckdb_opens_read_only_and_is_interrupted_at_its_timeout(tmp_path: Path) -> None:
    duckdb = pytest.importorskip("duckdb")
    pytest.importorskip("duckdb_engine")
    path = tmp_path / "data.duckdb"
    with duckdb.connect(str(path)) as setup:
        setup.execute("CREATE TABLE items AS SELECT range AS id FROM range(3)")
    db = DatabaseAdapter(create_data_engine(f"duckdb:///{path}", timeout=10))
    try:
        with pytest.raises(ExecutionError, match="read-only"):
            db.execute_query("INSERT INTO items VALUES (9)", guard=False)
        started = time.monotonic()
        with pytest.raises(QueryTimeoutError):
            db.execute_query("SELECT count(*) AS status FROM range(100000000000)", timeout=1)
        assert time.monotonic() - started < 3
        assert db.execute_query("SELECT count(*) AS n FROM items") == {"n": 3}
    finally:
        db.dispose()
