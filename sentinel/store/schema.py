"""Creating and upgrading the state tables with the Alembic migrations shipped in the package.

Every command that touches state calls :func:`ensure_schema`; when the database is already at the
head revision that costs one tiny query, and Alembic (slow to import) is only loaded to upgrade.

Any number of processes may start at the same instant against an empty database: migrators are
serialised by a lock held for the whole upgrade (PostgreSQL's transaction-scoped advisory lock,
MySQL's and MariaDB's named ``GET_LOCK``, SQLite's ``BEGIN IMMEDIATE``), and each one re-reads the
revision under that lock, so the schema is migrated once and the others find it at head.
"""

from __future__ import annotations

import threading
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from sentinel.errors import StateStoreError
from sentinel.store.engine import describe_db_error, write_transaction
from sentinel.store.tables import VERSION_TABLE, metadata

#: The newest migration in ``migrations/versions``; a test checks it matches Alembic's head.
HEAD_REVISION = "0004"
MIGRATIONS = Path(__file__).parent / "migrations"

_ready: weakref.WeakSet[Engine] = weakref.WeakSet()
_ready_lock = threading.Lock()
# Any integer: the key of the PostgreSQL advisory lock that serialises concurrent migrators.
_PG_MIGRATION_LOCK = 0x5E17_1E1
# MySQL's equivalent is a named lock (per server, so the database name is part of it).
_MYSQL_MIGRATION_LOCK = "sqlsentinel_migrate:{database}"
#: Seconds a migrator waits for another one to finish before giving up (a StateStoreError).
MIGRATION_LOCK_TIMEOUT_SECONDS = 120


def current_revision(conn: Connection) -> str | None:
    if not sa.inspect(conn).has_table(VERSION_TABLE):
        return None
    return conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()


def upgrade(engine: Engine) -> str:
    """Run every pending migration; returns the revision the database is now at."""
    from alembic import command
    from alembic.config import Config

    try:
        # The server lock is let go only after the migration's transaction has committed: the
        # next migrator must read the version this one wrote, or it migrates again.
        with _server_lock(engine), write_transaction(engine) as conn:
            _transaction_lock(conn)
            cfg = Config()
            cfg.set_main_option("script_location", str(MIGRATIONS))
            cfg.attributes["connection"] = conn
            command.upgrade(cfg, "head")
            revision = current_revision(conn)
    except sa.exc.SQLAlchemyError as exc:
        raise StateStoreError(describe_db_error(exc)) from None
    with _ready_lock:
        _ready.add(engine)
    return revision or HEAD_REVISION


def _transaction_lock(conn: Connection) -> None:
    """PostgreSQL: one migrator at a time, until its transaction ends (SQLite: BEGIN
    IMMEDIATE already does it)."""
    if conn.dialect.name == "postgresql":
        conn.execute(sa.text("SELECT pg_advisory_xact_lock(:k)"), {"k": _PG_MIGRATION_LOCK})


@contextmanager
def _server_lock(engine: Engine) -> Iterator[None]:
    """MySQL and MariaDB: a named lock on a connection of its own. DDL commits implicitly
    there, so no transaction spans the whole upgrade; the lock does, and outlives its commit."""
    if engine.dialect.name not in ("mysql", "mariadb"):
        yield
        return
    name = _MYSQL_MIGRATION_LOCK.format(database=engine.url.database)
    with engine.connect() as conn:
        got = conn.execute(
            sa.text("SELECT GET_LOCK(:name, :wait)"),
            {"name": name, "wait": MIGRATION_LOCK_TIMEOUT_SECONDS},
        ).scalar()
        if got != 1:
            raise StateStoreError(
                f"state database: another process has been migrating the schema for over "
                f"{MIGRATION_LOCK_TIMEOUT_SECONDS}s"
            )
        try:
            yield
        finally:
            conn.execute(sa.text("SELECT RELEASE_LOCK(:name)"), {"name": name})


def _at_head(engine: Engine) -> bool:
    """One query when the schema is there (every start but the first): read the revision
    directly. Any error (no table yet, or anything else) is left to the full check that follows,
    which says what is wrong as before."""
    try:
        with engine.connect() as conn:
            found = conn.execute(sa.text(f"SELECT version_num FROM {VERSION_TABLE}")).scalar()
    except sa.exc.DBAPIError:
        return False
    return found == HEAD_REVISION


def ensure_schema(engine: Engine) -> None:
    """Make sure the state tables exist at the head revision (cheap once per engine)."""
    if engine in _ready:
        return
    if _at_head(engine):
        with _ready_lock:
            _ready.add(engine)
        return
    try:
        with engine.connect() as conn:
            at_head = current_revision(conn) == HEAD_REVISION
    except sa.exc.SQLAlchemyError as exc:
        raise StateStoreError(describe_db_error(exc)) from None
    if at_head:
        with _ready_lock:
            _ready.add(engine)
        return
    upgrade(engine)


def schema_exists(engine: Engine) -> bool:
    try:
        with engine.connect() as conn:
            return current_revision(conn) is not None
    except sa.exc.SQLAlchemyError as exc:
        raise StateStoreError(describe_db_error(exc)) from None


class SchemaManager:
    """The spec's schema API (section 4.5), on top of the migrations."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def create_schema(self) -> None:
        upgrade(self.engine)

    def initialize_schema(self) -> None:
        ensure_schema(self.engine)

    def schema_exists(self) -> bool:
        return schema_exists(self.engine)

    def drop_schema(self) -> None:
        with write_transaction(self.engine) as conn:
            metadata.drop_all(conn)
            conn.execute(sa.text(f"DROP TABLE IF EXISTS {VERSION_TABLE}"))
        with _ready_lock:
            _ready.discard(self.engine)
