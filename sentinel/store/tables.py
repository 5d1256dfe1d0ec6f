"""The state tables, defined once. Alembic migrations create and upgrade them; code reads them here.

Timestamps are naive UTC at microsecond precision on every backend (MySQL's DATETIME would
otherwise drop the fraction, and minimum-interval comparisons would drift by up to a second).
"""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from typing import Any, TypeVar

import sqlalchemy as sa
from sqlalchemy.dialects import mysql
from sqlalchemy.engine import Dialect

from sentinel.enums import AlertStatus, Channel, DeliveryStatus, Event, ExecutionStatus, Outcome

STATE = "sqlsentinel_state"
EXECUTIONS = "sqlsentinel_executions"
CONFIGS = "sqlsentinel_configs"
OUTBOX = "sqlsentinel_outbox"
#: Alembic's own bookkeeping table, named so it never collides with an application's
#: ``alembic_version`` when the state tables live in the user's database.
VERSION_TABLE = "sqlsentinel_alembic_version"

NAME_LENGTH = 200


class UTCDateTime(sa.TypeDecorator[datetime]):
    """Naive-UTC datetime with microseconds everywhere; aware values are converted on the way in."""

    impl = sa.DateTime
    cache_ok = True

    def load_dialect_impl(self, dialect: Dialect) -> sa.types.TypeEngine[Any]:
        if dialect.name in ("mysql", "mariadb"):
            return dialect.type_descriptor(mysql.DATETIME(fsp=6))
        return dialect.type_descriptor(sa.DateTime())

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is not None and value.tzinfo is not None:
            from datetime import UTC

            value = value.astimezone(UTC).replace(tzinfo=None)
        return value


E = TypeVar("E", bound=StrEnum)


class NameIn(sa.TypeDecorator[E]):
    """A short string column holding one of an enum's names, read back as the enum's member.

    Stored as plain ``VARCHAR(16)`` (no database enum type, so adding a name needs no migration);
    a value no member knows (written by hand, or by a newer version) is returned as it is rather
    than losing the row."""

    impl = sa.String(16)
    cache_ok = True

    def __init__(self, names: type[E]) -> None:
        super().__init__()
        self.names = names

    def process_bind_param(self, value: Any, dialect: Dialect) -> str | None:
        return None if value is None else str(value)

    def process_result_value(self, value: Any, dialect: Dialect) -> E | None:
        if value is None:
            return None
        try:
            return self.names(value)
        except ValueError:
            return value  # type: ignore[no-any-return]


ID = sa.BigInteger().with_variant(sa.Integer(), "sqlite")
NUMBER: sa.Double[float] = sa.Double()

metadata = sa.MetaData(
    naming_convention={
        "ix": "ix_%(table_name)s_%(column_0_N_name)s",
        "uq": "uq_%(table_name)s_%(column_0_N_name)s",
        "fk": "fk_%(table_name)s_%(column_0_name)s",
        "pk": "pk_%(table_name)s",
    }
)

state = sa.Table(
    STATE,
    metadata,
    sa.Column("alert_name", sa.String(NAME_LENGTH), primary_key=True),
    sa.Column("current_status", NameIn(AlertStatus)),
    sa.Column("last_outcome", NameIn(Outcome)),
    sa.Column("status_since", UTCDateTime()),
    sa.Column("last_execution_at", UTCDateTime()),
    sa.Column("last_execution_id", ID),
    sa.Column("last_alert_at", UTCDateTime()),
    sa.Column("consecutive_alerts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("consecutive_successes", sa.Integer, nullable=False, server_default="0"),
    sa.Column("consecutive_errors", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    # revision 0003: incident, mute-hold and error-streak memory
    sa.Column("incident_notified_at", UTCDateTime()),
    sa.Column("held", NameIn(Event)),
    sa.Column("error_notified", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("firing_since", UTCDateTime()),
)

SILENCES = "sqlsentinel_silences"

silences = sa.Table(
    SILENCES,
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    # A silence matches one alert by name, or every alert whose labels include all ``matchers``.
    sa.Column("alert_name", sa.String(NAME_LENGTH)),
    sa.Column("matchers", sa.JSON, nullable=False),
    sa.Column("created_by", sa.String(NAME_LENGTH)),
    sa.Column("reason", sa.Text),
    sa.Column("starts_at", UTCDateTime(), nullable=False),
    # Ending a silence early sets ends_at to now: expired silences stay as the audit trail.
    sa.Column("ends_at", UTCDateTime(), nullable=False),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Index(None, "ends_at"),
)

executions = sa.Table(
    EXECUTIONS,
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("alert_name", sa.String(NAME_LENGTH), nullable=False),
    # The cron slot a scheduled run belongs to; NULL for manual runs, which never collide.
    sa.Column("scheduled_for", UTCDateTime()),
    sa.Column("triggered_by", sa.String(16), nullable=False),
    # running while claimed; then success (OK), failure (ALERT) or error
    sa.Column("status", NameIn(ExecutionStatus), nullable=False),
    sa.Column("claimed_at", UTCDateTime(), nullable=False),
    sa.Column("worker_id", sa.String(NAME_LENGTH)),
    sa.Column("executed_at", UTCDateTime(), nullable=False),
    sa.Column("finished_at", UTCDateTime()),
    sa.Column("execution_duration_ms", NUMBER),
    sa.Column("result_status", NameIn(Outcome)),
    sa.Column("actual_value", NUMBER),
    sa.Column("threshold", NUMBER),
    sa.Column("context_data", sa.JSON),
    sa.Column("query", sa.Text),
    sa.Column("error_message", sa.Text),
    sa.Column("notification_sent", sa.Boolean, nullable=False, server_default=sa.false()),
    sa.Column("notification_error", sa.Text),
    # The broker message that holds this run's claim, if any (revision 0002; unique since 0004:
    # a message is one run, which is how manual runs are claimed).
    sa.Column("message_id", sa.String(64), index=True, unique=True),
    sa.UniqueConstraint("alert_name", "scheduled_for"),
    sa.Index(None, "alert_name", "id"),
    sa.Index(None, "status", "claimed_at"),
)

configs = sa.Table(
    CONFIGS,
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("path", sa.String(1000), nullable=False),
    sa.Column("sha256", sa.String(64), nullable=False),
    # The file exactly as written, before ${VAR} substitution: no secret is ever stored here.
    sa.Column("content", sa.Text, nullable=False),
    sa.Column("loaded_at", UTCDateTime(), nullable=False),
    sa.UniqueConstraint("sha256"),
)

outbox = sa.Table(
    OUTBOX,
    metadata,
    sa.Column("id", ID, primary_key=True, autoincrement=True),
    sa.Column("execution_id", ID, sa.ForeignKey(f"{EXECUTIONS}.id"), nullable=False),
    sa.Column("alert_name", sa.String(NAME_LENGTH), nullable=False),
    sa.Column("channel", NameIn(Channel), nullable=False),
    # Position in the alert's notify list: targets (URLs, tokens) are looked up from the config
    # at delivery time so no secret is stored in the outbox.
    sa.Column("channel_index", sa.Integer, nullable=False),
    sa.Column("event", NameIn(Event), nullable=False),
    sa.Column("payload", sa.JSON, nullable=False),
    # pending -> sending (leased) -> sent | failed; back to pending for a later retry round
    sa.Column("status", NameIn(DeliveryStatus), nullable=False),
    sa.Column("attempts", sa.Integer, nullable=False, server_default="0"),
    sa.Column("rounds", sa.Integer, nullable=False, server_default="0"),
    sa.Column("last_error", sa.Text),
    sa.Column("next_attempt_at", UTCDateTime(), nullable=False),
    sa.Column("lease_until", UTCDateTime()),
    sa.Column("created_at", UTCDateTime(), nullable=False),
    sa.Column("updated_at", UTCDateTime(), nullable=False),
    sa.Column("sent_at", UTCDateTime()),
    sa.Index(None, "status", "next_attempt_at"),
    sa.Index(None, "execution_id"),
)
