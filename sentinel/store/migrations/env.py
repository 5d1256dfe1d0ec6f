"""Alembic environment: always driven programmatically by :mod:`sentinel.store.schema`."""

from __future__ import annotations

from alembic import context

from sentinel.store.tables import VERSION_TABLE, metadata

connection = context.config.attributes["connection"]
context.configure(
    connection=connection,
    target_metadata=metadata,
    version_table=VERSION_TABLE,
    render_as_batch=connection.dialect.name == "sqlite",
    compare_type=True,
)
with context.begin_transaction():
    context.run_migrations()
