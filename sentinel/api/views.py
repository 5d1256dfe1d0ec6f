"""Turning the store's alert overviews and counts into the API's response bodies.

The reading is done by ``sentinel.store.overview`` (a fixed number of queries for any number of
alerts, the same summary ``status`` prints); this module only shapes it, and hides secrets in
notification targets."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Protocol

from sentinel.api import schemas
from sentinel.config import AlertConfig
from sentinel.deployment import Deployment
from sentinel.enums import AlertStatus, Channel, ExecutionStatus
from sentinel.models import ExecutionRecord
from sentinel.redact import safe_url
from sentinel.store.overview import AlertOverview, ListedState, activity, alert_overviews


class ShownRun(Protocol):
    """The columns of a run the summary shows (an execution record, or the list's lighter row)."""

    @property
    def executed_at(self) -> datetime: ...
    @property
    def status(self) -> ExecutionStatus: ...
    @property
    def actual_value(self) -> float | None: ...
    @property
    def threshold(self) -> float | None: ...
    @property
    def context_data(self) -> dict[str, Any] | None: ...


def _value(record: ShownRun | None, key: str) -> float | str | None:
    if record is None:
        return None
    value = getattr(record, key)
    if value is None and record.context_data:
        raw = record.context_data.get(key)
        return None if raw is None else str(raw)
    return value  # type: ignore[no-any-return]


def summaries(deployment: Deployment, now: datetime) -> list[schemas.AlertSummary]:
    return [
        summary(o) for o in alert_overviews(deployment.state_engine, deployment.config.alerts, now)
    ]


def summary(overview: AlertOverview) -> schemas.AlertSummary:
    state = overview.state
    return summary_of(
        overview.alert,
        ListedState(
            state.current_status,
            state.status_since,
            state.consecutive_alerts,
            state.last_execution_id,
        ),
        state.silence_until,
        overview.last_run,
        overview.next_run,
        overview.muted,
    )


def summary_of(
    alert: AlertConfig,
    state: ListedState,
    silenced_until: datetime | None,
    last: ShownRun | None,
    next_run: datetime | None,
    muted: bool,
) -> schemas.AlertSummary:
    """One alert's line of the list, from its parts: the one place its shape is decided, for
    the full overview and for the list's incremental reading alike."""
    pending = (
        f"{state.consecutive_alerts}/{alert.fire_after}"
        if state.current_status == AlertStatus.PENDING
        else None
    )
    return schemas.AlertSummary(
        name=alert.name,
        description=alert.description,
        schedule=alert.schedule,
        timezone=alert.timezone,
        enabled=alert.enabled,
        severity=alert.severity,
        labels=alert.labels,
        owner=alert.owner,
        state=state.current_status,
        since=state.status_since,
        pending=pending,
        last_value=_value(last, "actual_value"),
        threshold=_value(last, "threshold"),
        last_run_at=last.executed_at if last else None,
        last_result=last.status if last else None,
        next_run=next_run,
        silenced_until=silenced_until,
        muted=muted,
    )


def detail(deployment: Deployment, alert: AlertConfig, now: datetime) -> schemas.AlertDetail:
    [overview] = alert_overviews(deployment.state_engine, [alert], now)
    base = summary(overview)
    channels = [
        schemas.NotifyTarget(
            channel=n.channel,
            target=", ".join(n.recipients or [])
            if n.channel == Channel.EMAIL
            else safe_url(n.webhook_url or ""),
        )
        for n in alert.notify
    ]
    rules = {
        key: getattr(alert, key)
        for key in (
            "fire_after", "resolve_after", "repeat_interval", "notify_on_recovery",
            "on_no_data", "on_error", "error_after",
        )
    }  # fmt: skip
    rules["mute"] = [m.model_dump(exclude_none=True) for m in alert.mute]
    return schemas.AlertDetail(
        **base.model_dump(),
        query=alert.query,
        timeout=alert.timeout,
        min_interval=alert.min_interval,
        notify=channels,
        rules=rules,
        runbook_url=alert.runbook_url,
    )


def status(deployment: Deployment, alert: AlertConfig, now: datetime) -> schemas.AlertStatusBody:
    [overview] = alert_overviews(deployment.state_engine, [alert], now)
    state = overview.state
    return schemas.AlertStatusBody(
        name=alert.name,
        state=state.current_status,
        since=state.status_since,
        last_outcome=state.last_outcome,
        last_error=state.last_error,
        consecutive_alerts=state.consecutive_alerts,
        consecutive_successes=state.consecutive_successes,
        consecutive_errors=state.consecutive_errors,
        last_execution_at=state.last_execution_at,
        last_notified_at=state.last_alert_at,
        silenced_until=state.silence_until,
        muted=overview.muted,
        held=state.held,
        next_run=overview.next_run,
    )


def execution(record: ExecutionRecord) -> schemas.Execution:
    return schemas.Execution(
        id=record.id or 0,
        alert_name=record.alert_name,
        executed_at=record.executed_at,
        scheduled_for=record.scheduled_for,
        triggered_by=record.triggered_by,
        status=record.status,
        duration_ms=record.execution_duration_ms,
        actual_value=record.actual_value,
        threshold=record.threshold,
        error=record.error_message,
        context=record.context_data,
        notifications=[
            schemas.Notification(
                id=n.notification_id,
                channel=n.channel,
                event=n.event,
                status=n.status,
                error=n.error,
                attempts=n.attempts,
            )
            for n in record.notifications
        ],
    )


def stats(
    deployment: Deployment,
    items: list[schemas.AlertSummary],
    now: datetime,
    depths: dict[str, int],
) -> schemas.Stats:
    """``/stats`` from the alert list as of ``now`` and the activity counts."""
    by_state: dict[str, int] = {}
    for item in items:
        key = item.state or "NEVER_RUN"
        by_state[key] = by_state.get(key, 0) + 1
    counts = activity(deployment.state_engine, now)
    last_day = counts.runs_last_day
    return schemas.Stats(
        alerts=len(items),
        by_state=by_state,
        executions_last_hour=counts.runs_last_hour,
        executions_last_day=last_day,
        failures_last_day=counts.failures_last_day,
        errors_last_day=counts.errors_last_day,
        failure_rate_last_day=(100.0 * counts.failures_last_day / last_day) if last_day else 0.0,
        notifications_last_hour=counts.notifications_last_hour,
        notifications_last_day=counts.notifications_last_day,
        queue_depths=depths,
    )
