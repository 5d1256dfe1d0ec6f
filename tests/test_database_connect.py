"""Reaching the data database: URLs, unreachable servers, bad logins, the guard in front.

A failure to connect is a :class:`DatabaseUnavailableError` with one line that names the database
(password masked) and the driver's own reason, never SQLAlchemy's multi-line text.
"""

from __future__ import annotations

import socket
import time
from pathlib import Path

import pytest
import sqlalchemy as sa

from sentinel.database import DatabaseAdapter, create_data_engine, normalize_url
from sentinel.errors import ConfigurationError, DatabaseUnavailableError, UnsafeQueryError
from tests.databases import RUN_ID, DatabaseFactory


def backend(url: str) -> str:
    return sa.make_url(url).get_backend_name()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def unreachable_url(url: str, tmp_path: Path) -> str:
    if backend(url) == "sqlite":
        return f"sqlite:///{tmp_path}/no/such/dir/data.db"
    return sa.make_url(url).set(port=free_port()).render_as_string(hide_password=False)


def test_guard_refuses_before_reaching_the_database(db_url: str, tmp_path: Path) -> None:
    # The engine points nowhere: an UnsafeQueryError proves no connection was even tried.
    db = DatabaseAdapter(create_data_engine(unreachable_url(db_url, tmp_path), timeout=2))
    try:
        with pytest.raises(UnsafeQueryError, match="found 3: DELETE; COMMIT; SELECT"):
            db.execute_query("DELETE FROM items; COMMIT; SELECT 'OK' AS status")
        with pytest.raises(UnsafeQueryError, match="got DROP TABLE"):
            db.execute_alert_query("DROP TABLE items")
    finally:
        db.dispose()


def test_unreachable_database_is_unavailable_quickly(db_url: str, tmp_path: Path) -> None:
    db = DatabaseAdapter(create_data_engine(unreachable_url(db_url, tmp_path), timeout=3))
    try:
        started = time.monotonic()
        with pytest.raises(DatabaseUnavailableError) as caught:
            db.execute_alert_query("SELECT 'OK' AS status")
        assert time.monotonic() - started < 5
        message = str(caught.value)
        assert message.startswith("cannot connect to ")
        for noise in ("\n", "Traceback", "sqlalche.me", "Background on this error", "SELECT"):
            assert noise not in message
        assert db.test_connection() is False
    finally:
        db.dispose()


def test_unknown_database_never_shows_the_password(db_url: str) -> None:
    if backend(db_url) == "sqlite":
        pytest.skip("SQLite URLs carry no password")
    url = sa.make_url(db_url).set(password="Hunter2-Secret", database=f"nope_{RUN_ID}")
    db = DatabaseAdapter(create_data_engine(url.render_as_string(hide_password=False), timeout=5))
    try:
        with pytest.raises(DatabaseUnavailableError) as caught:
            db.execute_query("SELECT 'OK' AS status")
        assert "Hunter2-Secret" not in str(caught.value)
        assert f"nope_{RUN_ID}" in str(caught.value)
    finally:
        db.dispose()


def test_wrong_password_is_unavailable_and_never_shown(
    mariadb_databases: DatabaseFactory, mariadb_url: str
) -> None:
    # PostgreSQL here trusts every local login, so MariaDB is where a password can be wrong.
    user = f"sentinel_pw_{RUN_ID}"
    admin = mariadb_databases.admin
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'Right-Secret-123'")
        database = sa.make_url(mariadb_url).database
        conn.exec_driver_sql(f"GRANT SELECT ON {database}.* TO '{user}'@'127.0.0.1'")
    try:
        base = sa.make_url(mariadb_url).set(username=user)
        wrong = base.set(password="Wrong-Secret-456").render_as_string(hide_password=False)
        db = DatabaseAdapter(create_data_engine(wrong, timeout=5))
        try:
            with pytest.raises(DatabaseUnavailableError) as caught:
                db.execute_query("SELECT 'OK' AS status")
        finally:
            db.dispose()
        message = str(caught.value)
        assert "Access denied" in message
        assert "Wrong-Secret-456" not in message and "Right-Secret-123" not in message
        assert "***" in message
        right = base.set(password="Right-Secret-123").render_as_string(hide_password=False)
        db = DatabaseAdapter(create_data_engine(right, timeout=5))
        try:
            assert db.test_connection() is True
        finally:
            db.dispose()
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")


def test_heroku_postgres_url_works_with_psycopg(postgres_url: str) -> None:
    heroku = "postgres://" + postgres_url.split("://", 1)[1]
    db = DatabaseAdapter(create_data_engine(heroku, timeout=5))
    try:
        assert db.engine.url.drivername == "postgresql+psycopg"
        assert db.dialect_name == "postgresql"
        assert db.sql_dialect == "postgres"
        assert db.test_connection() is True
        assert db.execute_alert_query("SELECT 'OK' AS status").status == "OK"
    finally:
        db.dispose()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        ("postgres://u:p@h/db", "postgresql+psycopg://u:p@h/db"),
        ("postgresql://u@h:5433/db", "postgresql+psycopg://u@h:5433/db"),
        ("postgresql+psycopg2://u@h/db", "postgresql+psycopg2://u@h/db"),
        ("mysql://u:p@h/db", "mysql+pymysql://u:p@h/db"),
        ("mariadb://u@h/db", "mariadb+pymysql://u@h/db"),
        ("mysql+mysqldb://u@h/db", "mysql+mysqldb://u@h/db"),
        ("sqlite:///data.db", "sqlite:///data.db"),
    ],
)
def test_normalize_url(url: str, expected: str) -> None:
    assert normalize_url(url).render_as_string(hide_password=False) == expected


def test_bad_url_is_a_configuration_error_without_the_password() -> None:
    for url in ("not a url", "postgresql://u:S3cret-pass@h:notaport/db"):
        with pytest.raises(ConfigurationError) as caught:
            create_data_engine(url)
        assert "S3cret-pass" not in str(caught.value)
        assert caught.value.__cause__ is None and caught.value.__suppress_context__
    with pytest.raises(ConfigurationError, match="unsupported database type 'nosuchdb'"):
        create_data_engine("nosuchdb://h/db")
