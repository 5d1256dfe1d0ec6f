"""On-call behaviour: incident, hold and error-streak state; silences become rows with matchers.

Existing per-alert ``silence_until`` values are moved into ``sqlsentinel_silences`` (nothing is
lost), then the column is dropped: silences are now an audit trail (who, why, from, until).

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-27
"""

from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from sentinel.store.tables import ID, UTCDateTime

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    silences = op.create_table(
        "sqlsentinel_silences",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("alert_name", sa.String(200)),
        sa.Column("matchers", sa.JSON, nullable=False),
        sa.Column("created_by", sa.String(200)),
        sa.Column("reason", sa.Text),
        sa.Column("starts_at", UTCDateTime(), nullable=False),
        sa.Column("ends_at", UTCDateTime(), nullable=False),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sqlsentinel_silences"),
    )
    op.create_index("ix_sqlsentinel_silences_ends_at", "sqlsentinel_silences", ["ends_at"])
    bind = op.get_bind()
    now = datetime.now(UTC).replace(tzinfo=None)
    old_state = sa.table(
        "sqlsentinel_state",
        sa.column("alert_name", sa.String(200)),
        sa.column("silence_until", UTCDateTime()),
    )
    rows = bind.execute(
        sa.select(old_state.c.alert_name, old_state.c.silence_until).where(
            old_state.c.silence_until.is_not(None)
        )
    ).all()
    if rows:
        op.bulk_insert(
            silences,
            [
                {
                    "alert_name": name,
                    "matchers": {},
                    "created_by": "migration 0003",
                    "reason": "silence set before silences were recorded",
                    "starts_at": min(now, until),
                    "ends_at": until,
                    "created_at": now,
                }
                for name, until in rows
            ],
        )
    with op.batch_alter_table("sqlsentinel_state") as batch:
        batch.add_column(sa.Column("incident_notified_at", UTCDateTime()))
        batch.add_column(sa.Column("held", sa.String(16)))
        batch.add_column(
            sa.Column("error_notified", sa.Boolean, nullable=False, server_default=sa.false())
        )
        batch.add_column(sa.Column("firing_since", UTCDateTime()))
        batch.drop_column("silence_until")


def downgrade() -> None:
    with op.batch_alter_table("sqlsentinel_state") as batch:
        batch.add_column(sa.Column("silence_until", UTCDateTime()))
        batch.drop_column("firing_since")
        batch.drop_column("error_notified")
        batch.drop_column("held")
        batch.drop_column("incident_notified_at")
    op.drop_table("sqlsentinel_silences")
