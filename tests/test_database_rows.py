"""``DatabaseAdapter.fetch_rows``: the rows a notification shows, against SQLite, PostgreSQL and
MariaDB. It shares the first-row code path, so the same promises are checked with N rows: guarded,
read-only, one timeout for the whole read, and never more than N rows read from a huge result.
"""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from sentinel.database import DatabaseAdapter, create_data_engine, normalize_url
from sentinel.errors import QueryTimeoutError, UnsafeQueryError
from tests.test_database import NEVER_ENDS, TEN_MILLION, RssPeak, adapter_url, backend, quote

# Inserted last-first, so only ORDER BY can put them in order.
EVENTS = [(n, f"event {n:02d}") for n in range(1, 13)]


def event_count(url: str) -> int:
    engine = sa.create_engine(normalize_url(url), poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            return int(conn.exec_driver_sql("SELECT count(*) FROM events").scalar_one())
    finally:
        engine.dispose()


@pytest.fixture
def adapter(db_url: str) -> Iterator[DatabaseAdapter]:
    """An adapter on the backend's fresh database, with a table ``events`` of twelve rows."""
    engine = sa.create_engine(normalize_url(db_url), poolclass=sa.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql("CREATE TABLE events (id INTEGER PRIMARY KEY, name VARCHAR(40))")
        for id_, name in reversed(EVENTS):
            conn.exec_driver_sql(f"INSERT INTO events (id, name) VALUES ({id_}, '{name}')")
    engine.dispose()
    db = DatabaseAdapter(create_data_engine(db_url, timeout=10), timeout=10)
    yield db
    db.dispose()


def test_returns_the_first_rows_in_order_with_their_column_names(adapter: DatabaseAdapter) -> None:
    label = quote(adapter_url(adapter), "Event Name")
    rows = adapter.fetch_rows(f"SELECT id, name AS {label} FROM events ORDER BY id", 5)
    assert rows == [{"id": n, "Event Name": name} for n, name in EVENTS[:5]]
    assert [list(row) for row in rows] == [["id", "Event Name"]] * 5


def test_fewer_rows_than_the_limit_are_all_returned(adapter: DatabaseAdapter) -> None:
    rows = adapter.fetch_rows("SELECT id FROM events WHERE id > 9 ORDER BY id DESC", 100)
    assert rows == [{"id": 12}, {"id": 11}, {"id": 10}]


def test_no_rows_is_an_empty_list(adapter: DatabaseAdapter) -> None:
    assert adapter.fetch_rows("SELECT id, name FROM events WHERE id > 100", 10) == []


def test_limit_one_agrees_with_the_first_row(adapter: DatabaseAdapter) -> None:
    sql = "SELECT id, name FROM events ORDER BY id DESC"
    first = adapter.fetch_first_row(sql)
    assert adapter.fetch_rows(sql, 1) == [first.row] == [{"id": 12, "name": "event 12"}]
    assert first.more_rows


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO events (id, name) VALUES (99, 'x')",
        "UPDATE events SET name = 'changed'",
        "DELETE FROM events",
        "DROP TABLE events",
        "SELECT id FROM events; DELETE FROM events",
    ],
)
def test_the_guard_refuses_writes(adapter: DatabaseAdapter, sql: str) -> None:
    with pytest.raises(UnsafeQueryError):
        adapter.fetch_rows(sql, 10)
    assert event_count(adapter_url(adapter)) == len(EVENTS)


@pytest.mark.parametrize("limit", [0, -1])
def test_limit_must_be_at_least_one(adapter: DatabaseAdapter, limit: int) -> None:
    with pytest.raises(ValueError, match="limit must be at least 1"):
        adapter.fetch_rows("SELECT id FROM events", limit)


def test_query_that_never_ends_is_cancelled_at_its_timeout(adapter: DatabaseAdapter) -> None:
    sql = NEVER_ENDS[backend(adapter_url(adapter))]
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError, match="exceeded its 1s timeout"):
        adapter.fetch_rows(sql, 10, timeout=1)
    assert 0.9 <= time.monotonic() - started < 3.0
    assert adapter.fetch_rows("SELECT id FROM events ORDER BY id", 2) == [{"id": 1}, {"id": 2}]


def test_one_timeout_covers_every_fetch_of_the_rows(adapter: DatabaseAdapter) -> None:
    # The first row comes after 1.5 s, the second never: rows 2..N get what is left of 2 s.
    sql = {
        "postgresql": "SELECT n, pg_sleep(CASE WHEN n = 1 THEN 1.5 ELSE 30 END) AS s "
        "FROM generate_series(1, 5) AS n",
        "mysql": "SELECT seq AS n, SLEEP(CASE WHEN seq = 1 THEN 1.5 ELSE 30 END) AS s "
        "FROM seq_1_to_5",
        "sqlite": "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c) "
        "SELECT x AS n FROM c WHERE x = 1 OR x > 1000000000000",
    }[backend(adapter_url(adapter))]
    started = time.monotonic()
    with pytest.raises(QueryTimeoutError, match="exceeded its 2s timeout"):
        adapter.fetch_rows(sql, 3, timeout=2)
    assert time.monotonic() - started < 2.8
    assert adapter.fetch_rows("SELECT id FROM events WHERE id = 7", 3) == [{"id": 7}]


def test_ten_million_rows_cost_only_the_rows_read(adapter: DatabaseAdapter) -> None:
    adapter.fetch_rows("SELECT 1 AS warm", 1)  # connection set-up is not what is measured
    sql = TEN_MILLION[backend(adapter_url(adapter))]
    started = time.monotonic()
    with RssPeak() as memory:
        rows = adapter.fetch_rows(sql, 100)
    elapsed = time.monotonic() - started
    assert [{k.lower(): v for k, v in row.items()} for row in rows] == [
        {"status": "OK", "n": n} for n in range(1, 101)
    ]
    assert elapsed < 5.0, elapsed
    assert memory.growth_mb < 100, memory.growth_mb
    # Abandoning the rest (MySQL closes the connection to do so) leaves the adapter usable.
    assert adapter.fetch_rows("SELECT count(*) AS n FROM events", 10) == [{"n": len(EVENTS)}]


def test_only_a_result_cut_short_costs_a_connection(adapter: DatabaseAdapter) -> None:
    # MySQL cannot stop a result but by closing the connection; one that ended within the limit
    # (the look-ahead saw its end) keeps it, on every backend.
    connects: list[object] = []
    adapter.fetch_rows("SELECT 1 AS warm", 1)
    sa.event.listen(adapter.engine, "connect", lambda *_: connects.append(None))
    assert len(adapter.fetch_rows("SELECT id FROM events", len(EVENTS))) == len(EVENTS)
    adapter.fetch_rows("SELECT 1 AS again", 1)
    assert connects == []
    assert len(adapter.fetch_rows("SELECT id FROM events", 5)) == 5
    adapter.fetch_rows("SELECT 1 AS again", 1)
    assert len(connects) == (1 if backend(adapter_url(adapter)) == "mysql" else 0)
