"""Executions remember the broker message that asked for them (``enqueue --wait`` follows it).

Revision ID: 0002
Revises: 0001
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.batch_alter_table("sqlsentinel_executions") as batch:
        batch.add_column(sa.Column("message_id", sa.String(64)))
        batch.create_index("ix_sqlsentinel_executions_message_id", ["message_id"])


def downgrade() -> None:
    with op.batch_alter_table("sqlsentinel_executions") as batch:
        batch.drop_index("ix_sqlsentinel_executions_message_id")
        batch.drop_column("message_id")
