"""Assembling what the API and the status page show, in a handful of queries for any number of
alerts (states, silences and last runs are each read once per request)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa

from sentinel.api import schemas
from sentinel.config import AlertConfig
from sentinel.deployment import Deployment
from sentinel.models import AlertState, ExecutionRecord
from sentinel.mute import is_muted
from sentinel.redact import safe_url
from sentinel.scheduling.cron import Schedule, schedule_for
from sentinel.store import ExecutionHistory, StateManager
from sentinel.store.engine import read_transaction
from sentinel.store.tables import executions, outbox


def _value(record: ExecutionRecord | None, key: str) -> float | str | None:
    if record is None:
        return None
    value = getattr(record, key)
    if value is None and record.context_data:
        raw = record.context_data.get(key)
        return None if raw is None else str(raw)
    return value  # type: ignore[no-any-return]


def summaries(deployment: Deployment, now: datetime) -> list[schemas.AlertSummary]:
    alerts = deployment.config.alerts
    states = StateManager(deployment.state_engine, deployment.clock).get_states(
        {a.name: a.labels for a in alerts}
    )
    ids = [s.last_execution_id for s in states.values() if s.last_execution_id]
    last = {r.alert_name: r for r in ExecutionHistory(deployment.state_engine).by_ids(ids)}
    upcoming: dict[Schedule, datetime] = {}
    return [summary(a, states[a.name], last.get(a.name), now, upcoming) for a in alerts]


def summary(
    alert: AlertConfig,
    state: AlertState,
    last: ExecutionRecord | None,
    now: datetime,
    upcoming: dict[Schedule, datetime] | None = None,
) -> schemas.AlertSummary:
    next_run = None
    if alert.enabled:
        schedule = schedule_for(alert.schedule, alert.timezone)
        cache = upcoming if upcoming is not None else {}
        if schedule not in cache:
            cache[schedule] = schedule.next_after(now)
        next_run = cache[schedule]
    pending = (
        f"{state.consecutive_alerts}/{alert.fire_after}"
        if state.current_status == "PENDING"
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
        silenced_until=state.silence_until,
        muted=is_muted(alert.mute, now),
    )


def detail(deployment: Deployment, alert: AlertConfig, now: datetime) -> schemas.AlertDetail:
    state = StateManager(deployment.state_engine, deployment.clock).get_state(
        alert.name, alert.labels
    )
    last = ExecutionHistory(deployment.state_engine).by_ids(
        [state.last_execution_id] if state.last_execution_id else []
    )
    base = summary(alert, state, last[0] if last else None, now)
    channels = [
        schemas.Channel(
            channel=n.channel,
            target=", ".join(n.recipients or [])
            if n.channel == "email"
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
    state = StateManager(deployment.state_engine, deployment.clock).get_state(
        alert.name, alert.labels
    )
    nxt = schedule_for(alert.schedule, alert.timezone).next_after(now) if alert.enabled else None
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
        muted=is_muted(alert.mute, now),
        held=state.held,
        next_run=nxt,
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


def stats(deployment: Deployment, now: datetime, depths: dict[str, int]) -> schemas.Stats:
    items = summaries(deployment, now)
    by_state: dict[str, int] = {}
    for item in items:
        key = item.state or "NEVER_RUN"
        by_state[key] = by_state.get(key, 0) + 1
    hour, day = now - timedelta(hours=1), now - timedelta(days=1)
    run_counts = sa.select(
        sa.func.sum(sa.case((executions.c.executed_at >= hour, 1), else_=0)),
        sa.func.count(),
        sa.func.sum(sa.case((executions.c.status == "failure", 1), else_=0)),
        sa.func.sum(sa.case((executions.c.status == "error", 1), else_=0)),
    ).where(executions.c.executed_at >= day)
    with read_transaction(deployment.state_engine) as conn:
        last_hour, last_day, failures, errors = conn.execute(run_counts).one()
        notes = _notification_counts(conn, hour), _notification_counts(conn, day)
    last_day = int(last_day or 0)
    return schemas.Stats(
        alerts=len(items),
        by_state=by_state,
        executions_last_hour=int(last_hour or 0),
        executions_last_day=last_day,
        failures_last_day=int(failures or 0),
        errors_last_day=int(errors or 0),
        failure_rate_last_day=(100.0 * int(failures or 0) / last_day) if last_day else 0.0,
        notifications_last_hour=notes[0],
        notifications_last_day=notes[1],
        queue_depths=depths,
    )


def _notification_counts(conn: Any, since: datetime) -> dict[str, int]:
    query = (
        sa.select(outbox.c.status, sa.func.count())
        .where(outbox.c.created_at >= since)
        .group_by(outbox.c.status)
    )
    return {status: int(n) for status, n in conn.execute(query)}
