"""The data that flows through one run: query result, execution result, alert state, history row.

Names and fields follow the spec's section 1 so that code written against it runs unchanged; the
additions (execution ids, ``scheduled_for``, notification outcomes) are what exactly-once delivery
and the history need.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from pydantic import BaseModel, Field, field_validator

from sentinel.enums import (
    FINISHED,
    AlertStatus,
    Channel,
    DeliveryStatus,
    Event,
    ExecutionStatus,
    Outcome,
)


def alert_or_ok(value: object) -> Outcome | None:
    """``ALERT`` or ``OK`` for a status column's value (any case, any padding), else None:
    the one reading of the result contract's status."""
    normalised = value.strip().upper() if isinstance(value, str) else None
    return Outcome(normalised) if normalised in (Outcome.ALERT, Outcome.OK) else None


def utcnow() -> datetime:
    """Naive UTC now: the one clock default. Stored timestamps are naive UTC on every database."""
    return datetime.now(UTC).replace(tzinfo=None)


class QueryResult(BaseModel):
    """The one row an alert query returns, read through the result contract."""

    status: Outcome = Field(..., description="Alert status: ALERT or OK")
    actual_value: Any = Field(None, description="The metric value that triggered the alert")
    threshold: Any = Field(None, description="The threshold that was exceeded")
    context: dict[str, Any] = Field(default_factory=dict, description="Additional context fields")

    @field_validator("status", mode="before")
    @classmethod
    def validate_status(cls, v: object) -> Outcome:
        normalised = alert_or_ok(v)
        if normalised is None:
            raise ValueError(f"Status must be 'ALERT' or 'OK', got {v!r}")
        return normalised


class DeliveryOutcome(BaseModel):
    """What happened to one notification of one execution (an outbox row)."""

    notification_id: int | None = None
    channel: Channel
    event: Event
    status: DeliveryStatus
    error: str | None = None
    attempts: int = 0


class ExecutionResult(BaseModel):
    """The outcome of one run of one alert, as returned to any caller (CLI, worker, API)."""

    alert_name: str
    timestamp: str = Field(..., description="Execution timestamp (ISO format)")
    status: ExecutionStatus = Field(..., description="Execution status: success, failure, error")
    query_result: QueryResult | None = None
    duration_ms: float
    error: str | None = None
    execution_id: int | None = None
    triggered_by: str = "MANUAL"
    scheduled_for: str | None = None
    notify: bool = Field(False, description="Whether this run decided to notify")
    notifications: list[DeliveryOutcome] = Field(default_factory=list)
    dry_run: bool = False
    duplicate: bool = Field(False, description="The run was already recorded; nothing was done")

    @field_validator("status", mode="before")
    @classmethod
    def validate_status(cls, v: object) -> ExecutionStatus:
        v = str(v).lower()
        if v not in FINISHED:
            raise ValueError(f"Status must be 'success', 'failure', or 'error', got '{v}'")
        return ExecutionStatus(v)


@dataclass
class AlertState:
    """Per-alert memory that turns a stream of results into one notification per incident."""

    alert_name: str
    current_status: AlertStatus | None = None  # errors leave it unchanged
    last_execution_at: datetime | None = None
    last_alert_at: datetime | None = None  # when a notification was last decided
    consecutive_alerts: int = 0
    consecutive_successes: int = 0
    consecutive_errors: int = 0
    silence_until: datetime | None = None
    created_at: datetime | None = None
    updated_at: datetime | None = None
    last_outcome: Outcome | None = None  # what the latest run produced
    last_error: str | None = None
    status_since: datetime | None = None  # when current_status last changed
    last_execution_id: int | None = None
    # The incident's latest firing notification (None: not notified during this incident).
    incident_notified_at: datetime | None = None
    held: Event | None = None  # firing or resolved: held by a mute window, sent when it ends
    error_notified: bool = False  # the current error streak has been notified
    firing_since: datetime | None = None  # set when an incident resolves: when it started

    def should_notify(
        self, new_status: str, min_interval_seconds: float = 0, now: datetime | None = None
    ) -> bool:
        """The spec's rule, answered by :func:`sentinel.rules.decide` (the only place it lives)."""
        from sentinel.rules import AlertRules, decide

        transition = decide(self, new_status, AlertRules(min_interval_seconds), now or utcnow())
        return transition.notify

    def is_silenced(self, now: datetime | None = None) -> bool:
        return self.silence_until is not None and (now or utcnow()) < self.silence_until


@dataclass
class ExecutionRecord:
    """One row of execution history."""

    alert_name: str
    executed_at: datetime
    execution_duration_ms: float
    status: ExecutionStatus
    actual_value: float | None = None
    threshold: float | None = None
    query: str | None = None
    error_message: str | None = None
    triggered_by: str = "MANUAL"
    notification_sent: bool = False
    notification_error: str | None = None
    context_data: dict[str, Any] | None = None
    id: int | None = None
    scheduled_for: datetime | None = None
    finished_at: datetime | None = None
    result_status: Outcome | None = None  # as the query said it
    notifications: list[DeliveryOutcome] = field(default_factory=list)


@dataclass(frozen=True)
class AlertEvent:
    """Everything a channel needs to render one notification. Holds no secret by construction."""

    event: Event
    alert_name: str
    status: Outcome
    description: str | None = None
    actual_value: Any = None
    threshold: Any = None
    context: dict[str, Any] = field(default_factory=dict)
    executed_at: datetime | None = None
    scheduled_for: datetime | None = None
    execution_id: int | None = None
    notification_id: int | None = None  # the outbox id: the idempotency key of a delivery
    triggered_by: str = "MANUAL"
    error: str | None = None
    labels: dict[str, str] = field(default_factory=dict)
    severity: str | None = None  # info | warning | critical
    owner: str | None = None
    runbook_url: str | None = None
    firing_since: datetime | None = None  # resolved events: how long it was firing
    details: list[dict[str, Any]] = field(default_factory=list)  # first rows of details_query
