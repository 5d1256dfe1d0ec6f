"""One execution per broker message: the message id becomes a unique key.

Manual runs are claimed by their message id (a redelivered or re-sent message runs once), and only
a unique key makes that safe against twins claiming at the same instant. Older versions inserted a
fresh row on every retry of a manual message, so a database may hold several rows of one message:
the first keeps the id, the later ones (each a finished or abandoned attempt) lose it.

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-01
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None

INDEX = "ix_sqlsentinel_executions_message_id"


def upgrade() -> None:
    executions = sa.table("sqlsentinel_executions", sa.column("id"), sa.column("message_id"))
    conn = op.get_bind()
    repeated = conn.execute(
        sa.select(executions.c.message_id)
        .where(executions.c.message_id.is_not(None))
        .group_by(executions.c.message_id)
        .having(sa.func.count() > 1)
    ).scalars()
    for message_id in list(repeated):
        ids = conn.execute(
            sa.select(executions.c.id)
            .where(executions.c.message_id == message_id)
            .order_by(executions.c.id)
        ).scalars()
        later = list(ids)[1:]
        conn.execute(executions.update().where(executions.c.id.in_(later)).values(message_id=None))
    with op.batch_alter_table("sqlsentinel_executions") as batch:
        batch.drop_index(INDEX)
        batch.create_index(INDEX, ["message_id"], unique=True)


def downgrade() -> None:
    with op.batch_alter_table("sqlsentinel_executions") as batch:
        batch.drop_index(INDEX)
        batch.create_index(INDEX, ["message_id"])
