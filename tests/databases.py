"""One fixture per database backend, each test session in databases of its own.

A service that is not running skips its tests on a laptop but fails them under CI, as dramatiq's
own suite does: CI promises PostgreSQL and MariaDB, so a missing one there is a real failure.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest
import sqlalchemy as sa

CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")

POSTGRES_ADMIN_URL = os.environ.get(
    "SENTINEL_TEST_POSTGRES", "postgresql+psycopg://postgres@127.0.0.1:5432/test"
)
MARIADB_ADMIN_URL = os.environ.get(
    "SENTINEL_TEST_MARIADB", "mysql+pymysql://root@127.0.0.1:3306/test"
)

RUN_ID = uuid.uuid4().hex[:8]


def _unavailable(service: str, exc: Exception) -> None:
    if CI:
        raise exc
    pytest.skip(f"{service} is not available: {exc}")


class DatabaseFactory:
    """Creates fresh databases on one server, and drops them all at the end of the session."""

    def __init__(self, admin_url: str, kind: str):
        self.admin_url = sa.engine.make_url(admin_url)
        self.kind = kind
        self.created: list[str] = []
        self.roles: list[str] = []
        self.admin = sa.create_engine(
            self.admin_url, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool
        )

    def create(self, label: str = "db") -> str:
        name = f"sentinel_{RUN_ID}_{label}_{len(self.created)}".lower()
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
        self.created.append(name)
        return self.admin_url.set(database=name).render_as_string(hide_password=False)

    def drop_all(self) -> None:
        with self.admin.connect() as conn:
            for name in self.created:
                if self.kind == "postgresql":
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
                else:
                    conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name}")
            for role in self.roles:
                conn.exec_driver_sql(f"DROP ROLE IF EXISTS {role}")
        self.admin.dispose()

    # -- PostgreSQL faults, for real: the server refuses, or a role runs out of connections ---
    def refuse_connections(self, url: str) -> None:
        """New logins to this database fail (FATAL), and the open connections are dropped."""
        name = sa.engine.make_url(url).database
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS false")
            conn.exec_driver_sql(
                "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                f"WHERE datname = '{name}' AND pid <> pg_backend_pid()"
            )

    def allow_connections(self, url: str) -> None:
        name = sa.engine.make_url(url).database
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f"ALTER DATABASE {name} ALLOW_CONNECTIONS true")

    def role_with_limit(self, urls: list[str], limit: int) -> list[str]:
        """A login role allowed ``limit`` connections in all (PostgreSQL's "too many
        connections" when it asks for more), owning these databases; their URLs as that role."""
        role = f"sentinel_{RUN_ID}_role_{len(self.roles)}"
        with self.admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE ROLE {role} LOGIN CONNECTION LIMIT {limit}")
            for url in urls:
                conn.exec_driver_sql(
                    f"ALTER DATABASE {sa.engine.make_url(url).database} OWNER TO {role}"
                )
        self.roles.append(role)
        return [
            sa.engine.make_url(url).set(username=role).render_as_string(hide_password=False)
            for url in urls
        ]


def _factory(admin_url: str, kind: str, service: str) -> Iterator[DatabaseFactory]:
    try:
        factory = DatabaseFactory(admin_url, kind)
        with factory.admin.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except Exception as exc:  # any failure to reach the server means "not available"
        _unavailable(service, exc)
        return
    yield factory
    factory.drop_all()


@pytest.fixture(scope="session")
def postgres_databases() -> Iterator[DatabaseFactory]:
    yield from _factory(POSTGRES_ADMIN_URL, "postgresql", "PostgreSQL")


@pytest.fixture(scope="session")
def mariadb_databases() -> Iterator[DatabaseFactory]:
    yield from _factory(MARIADB_ADMIN_URL, "mysql", "MariaDB")


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'data.db'}"


@pytest.fixture
def postgres_url(postgres_databases: DatabaseFactory) -> str:
    return postgres_databases.create()


@pytest.fixture
def mariadb_url(mariadb_databases: DatabaseFactory) -> str:
    return mariadb_databases.create()


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def db_url(request: pytest.FixtureRequest) -> str:
    """A fresh, empty database on each backend in turn: the same test runs against all three."""
    fixture = {"sqlite": "sqlite_url", "postgresql": "postgres_url", "mariadb": "mariadb_url"}
    return str(request.getfixturevalue(fixture[request.param]))


@pytest.fixture(params=["sqlite", "postgresql"])
def state_db_url(request: pytest.FixtureRequest) -> str:
    """A fresh state database: SQLite (the embedded default) and PostgreSQL (the fleet's)."""
    if request.param == "sqlite":
        return str(request.getfixturevalue("sqlite_url")).replace("data.db", "state.db")
    return str(request.getfixturevalue("postgres_url"))
