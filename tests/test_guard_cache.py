"""The SQL guard's on-disk verdict cache: used when it holds the verdict, never trusted across a
changed query, dialect or guard version, and ignored (then replaced) when damaged."""

from __future__ import annotations

import multiprocessing
import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from sentinel import sqlguard
from sentinel.errors import UnsafeQueryError
from sentinel.guard_cache import VerdictCache, default_path, guard_version, verdict_key


@pytest.fixture
def cache_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    path = tmp_path / "verdicts.sqlite3"
    monkeypatch.setenv("SENTINEL_GUARD_CACHE", str(path))
    sqlguard._refusal.cache_clear()  # this process's memo would hide the file
    yield path
    sqlguard._refusal.cache_clear()


def stored_rows(path: Path) -> list[tuple[str, str, str | None]]:
    with sqlite3.connect(path) as conn:
        return list(conn.execute("SELECT key, version, refusal FROM verdicts"))


def test_a_stored_verdict_is_used_instead_of_a_parse(cache_file: Path) -> None:
    sql = "SELECT 'OK' AS status FROM cached_verdict_table"
    assert sqlguard.refusals([sql], "postgres") == {}
    assert len(stored_rows(cache_file)) == 1
    # Prove the stored verdict is what answers: replace it with a refusal under the same key.
    key = verdict_key(guard_version(), "postgres", sql)
    with sqlite3.connect(cache_file) as conn:
        conn.execute("UPDATE verdicts SET refusal = 'stored refusal' WHERE key = ?", (key,))
    sqlguard._refusal.cache_clear()
    assert sqlguard.refusals([sql], "postgres") == {sql: "stored refusal"}
    with pytest.raises(UnsafeQueryError) as caught:  # and this process keeps the verdict
        sqlguard.check_query(sql, "postgres")
    assert caught.value.reason == "stored refusal"


def test_refusals_are_stored_with_their_reason(cache_file: Path) -> None:
    sql = "DELETE FROM cached_verdict_table"
    first = sqlguard.refusals([sql], "postgres")
    sqlguard._refusal.cache_clear()
    assert sqlguard.refusals([sql], "postgres") == first
    assert first[sql].endswith("got DELETE")
    assert [row[2] for row in stored_rows(cache_file)] == [first[sql]]


def test_a_single_check_outside_a_batch_parses_and_stores_nothing(cache_file: Path) -> None:
    with pytest.raises(UnsafeQueryError, match="DELETE"):
        sqlguard.check_query("DELETE FROM single_check", "postgres")
    assert not cache_file.exists()


def test_a_changed_query_or_dialect_is_checked_again(cache_file: Path) -> None:
    sql = "SELECT 'OK' AS status FROM t"
    sqlguard.refusals([sql], "postgres")
    key = verdict_key(guard_version(), "postgres", sql)
    with sqlite3.connect(cache_file) as conn:
        conn.execute("UPDATE verdicts SET refusal = 'stale' WHERE key = ?", (key,))
    sqlguard._refusal.cache_clear()
    assert sqlguard.refusals([sql + " "], "postgres") == {}  # another text: parsed, accepted
    assert sqlguard.refusals([sql], "mysql") == {}  # another dialect: parsed, accepted
    assert len(stored_rows(cache_file)) == 3


def test_a_verdict_of_another_guard_version_is_never_trusted(cache_file: Path) -> None:
    sql = "DROP TABLE important"
    old = VerdictCache(cache_file, "an-older-guard")
    old.put_many({verdict_key("an-older-guard", "postgres", sql): None})  # "accepted", wrongly
    # Even a row under this guard's key but another version is not read.
    cache_file_rows = stored_rows(cache_file)
    assert [row[1] for row in cache_file_rows] == ["an-older-guard"]
    with sqlite3.connect(cache_file) as conn:
        conn.execute(
            "INSERT INTO verdicts VALUES (?, 'an-older-guard', NULL)",
            (verdict_key(guard_version(), "postgres", sql),),
        )
    assert "DROP TABLE" in sqlguard.refusals([sql], "postgres")[sql]
    # Writing this guard's verdict dropped the other version's rows.
    assert {row[1] for row in stored_rows(cache_file)} == {guard_version()}


def test_every_part_of_a_key_changes_it() -> None:
    version = guard_version()
    keys = {
        verdict_key(version, "postgres", "SELECT 1"),
        verdict_key(version + "x", "postgres", "SELECT 1"),
        verdict_key(version, "mysql", "SELECT 1"),
        verdict_key(version, None, "SELECT 1"),
        verdict_key(version, "postgres", "SELECT 1 "),
        verdict_key(version, "postgre", "sSELECT 1"),  # lengths are hashed: no shifted match
    }
    assert len(keys) == 6


def test_a_corrupt_cache_is_ignored_and_replaced(cache_file: Path) -> None:
    cache_file.write_bytes(b"this is not a SQLite database" * 100)
    assert "DELETE" in sqlguard.refusals(["DELETE FROM t"], "postgres")["DELETE FROM t"]
    assert sqlguard.refusals(["SELECT 'OK' AS status"], "postgres") == {}
    assert len(stored_rows(cache_file)) == 2  # written anew once the bad file was dropped


def test_an_unwritable_cache_never_fails_a_check(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    blocker = tmp_path / "a-file"
    blocker.write_text("")
    monkeypatch.setenv("SENTINEL_GUARD_CACHE", str(blocker / "verdicts.sqlite3"))
    sqlguard._refusal.cache_clear()
    found = sqlguard.refusals(["SELECT 'OK' AS status FROM x", "UPDATE t SET a = 1"], "postgres")
    assert list(found) == ["UPDATE t SET a = 1"]


def test_the_cache_can_be_turned_off(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("SENTINEL_GUARD_CACHE", "off")
    assert default_path() is None
    monkeypatch.delenv("SENTINEL_GUARD_CACHE")
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_path() == tmp_path / "sqlsentinel" / "guard-verdicts.sqlite3"


def _check_many(path: str, start: int) -> None:
    import os

    os.environ["SENTINEL_GUARD_CACHE"] = path
    from sentinel import sqlguard as guard

    queries = [f"SELECT 'OK' AS status, {i} AS actual_value" for i in range(start, start + 200)]
    for query in queries[::2]:
        assert guard.refusals([query], "sqlite") == {}
    guard._refusal.cache_clear()
    assert guard.refusals(queries, "sqlite") == {}


def test_concurrent_processes_keep_the_cache_whole(cache_file: Path) -> None:
    context = multiprocessing.get_context("spawn")
    workers = [
        context.Process(target=_check_many, args=(str(cache_file), n * 100)) for n in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(60)
        assert worker.exitcode == 0
    with sqlite3.connect(cache_file) as conn:
        assert conn.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    # A writer that found the file busy for long skips its write; what was written is right.
    rows = stored_rows(cache_file)
    assert rows and all(refusal is None for _, _, refusal in rows)
    assert len(rows) == len({key for key, _, _ in rows}) <= 500


def test_a_config_load_checks_its_queries_in_one_batch(cache_file: Path, tmp_path: Path) -> None:
    from sentinel.config import load_config

    alerts = "".join(
        f"  - name: a{i}\n    query: SELECT 'OK' AS status, {i} AS v\n    schedule: '* * * * *'\n"
        for i in range(30)
    )
    config = tmp_path / "alerts.yaml"
    config.write_text(f"database:\n  url: sqlite:///{tmp_path / 'd.db'}\nalerts:\n{alerts}")
    assert len(load_config(config).alerts) == 30
    assert len(stored_rows(cache_file)) == 30
    sqlguard._refusal.cache_clear()
    assert len(load_config(config).alerts) == 30  # every verdict from the file
    assert len(stored_rows(cache_file)) == 30
