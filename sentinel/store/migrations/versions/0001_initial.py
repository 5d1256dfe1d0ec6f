"""Initial state tables: state, executions, configs and the notification outbox.

Revision ID: 0001
Revises:
Create Date: 2026-11-27
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

from sentinel.store.tables import ID, NUMBER, UTCDateTime

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "sqlsentinel_state",
        sa.Column("alert_name", sa.String(200), nullable=False),
        sa.Column("current_status", sa.String(16)),
        sa.Column("last_outcome", sa.String(16)),
        sa.Column("status_since", UTCDateTime()),
        sa.Column("last_execution_at", UTCDateTime()),
        sa.Column("last_execution_id", ID),
        sa.Column("last_alert_at", UTCDateTime()),
        sa.Column("consecutive_alerts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("consecutive_successes", sa.Integer, nullable=False, server_default="0"),
        sa.Column("consecutive_errors", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("silence_until", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("alert_name", name="pk_sqlsentinel_state"),
    )
    op.create_table(
        "sqlsentinel_executions",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("alert_name", sa.String(200), nullable=False),
        sa.Column("scheduled_for", UTCDateTime()),
        sa.Column("triggered_by", sa.String(16), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("claimed_at", UTCDateTime(), nullable=False),
        sa.Column("worker_id", sa.String(200)),
        sa.Column("executed_at", UTCDateTime(), nullable=False),
        sa.Column("finished_at", UTCDateTime()),
        sa.Column("execution_duration_ms", NUMBER),
        sa.Column("result_status", sa.String(16)),
        sa.Column("actual_value", NUMBER),
        sa.Column("threshold", NUMBER),
        sa.Column("context_data", sa.JSON),
        sa.Column("query", sa.Text),
        sa.Column("error_message", sa.Text),
        sa.Column("notification_sent", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.Column("notification_error", sa.Text),
        sa.PrimaryKeyConstraint("id", name="pk_sqlsentinel_executions"),
        sa.UniqueConstraint(
            "alert_name", "scheduled_for", name="uq_sqlsentinel_executions_alert_name_scheduled_for"
        ),
    )
    op.create_index(
        "ix_sqlsentinel_executions_alert_name_id", "sqlsentinel_executions", ["alert_name", "id"]
    )
    op.create_index(
        "ix_sqlsentinel_executions_status_claimed_at",
        "sqlsentinel_executions",
        ["status", "claimed_at"],
    )
    op.create_table(
        "sqlsentinel_configs",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("path", sa.String(1000), nullable=False),
        sa.Column("sha256", sa.String(64), nullable=False),
        sa.Column("content", sa.Text, nullable=False),
        sa.Column("loaded_at", UTCDateTime(), nullable=False),
        sa.PrimaryKeyConstraint("id", name="pk_sqlsentinel_configs"),
        sa.UniqueConstraint("sha256", name="uq_sqlsentinel_configs_sha256"),
    )
    op.create_table(
        "sqlsentinel_outbox",
        sa.Column("id", ID, autoincrement=True, nullable=False),
        sa.Column("execution_id", ID, nullable=False),
        sa.Column("alert_name", sa.String(200), nullable=False),
        sa.Column("channel", sa.String(16), nullable=False),
        sa.Column("channel_index", sa.Integer, nullable=False),
        sa.Column("event", sa.String(16), nullable=False),
        sa.Column("payload", sa.JSON, nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
        sa.Column("rounds", sa.Integer, nullable=False, server_default="0"),
        sa.Column("last_error", sa.Text),
        sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
        sa.Column("lease_until", UTCDateTime()),
        sa.Column("created_at", UTCDateTime(), nullable=False),
        sa.Column("updated_at", UTCDateTime(), nullable=False),
        sa.Column("sent_at", UTCDateTime()),
        sa.PrimaryKeyConstraint("id", name="pk_sqlsentinel_outbox"),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["sqlsentinel_executions.id"],
            name="fk_sqlsentinel_outbox_execution_id",
        ),
    )
    op.create_index(
        "ix_sqlsentinel_outbox_status_next_attempt_at",
        "sqlsentinel_outbox",
        ["status", "next_attempt_at"],
    )
    op.create_index("ix_sqlsentinel_outbox_execution_id", "sqlsentinel_outbox", ["execution_id"])


def downgrade() -> None:
    op.drop_table("sqlsentinel_outbox")
    op.drop_table("sqlsentinel_configs")
    op.drop_table("sqlsentinel_executions")
    op.drop_table("sqlsentinel_state")
