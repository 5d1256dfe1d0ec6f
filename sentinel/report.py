"""Human-readable output for the CLI: plain-text tables, and JSON for scripts."""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from pydantic import BaseModel

from sentinel.enums import AlertStatus, DeliveryStatus, ExecutionStatus, Outcome
from sentinel.models import DeliveryOutcome, ExecutionRecord, ExecutionResult
from sentinel.redact import redact
from sentinel.serialization import to_jsonable

if TYPE_CHECKING:
    from sentinel.health import Health

_LABEL = {
    ExecutionStatus.SUCCESS: "OK",
    ExecutionStatus.FAILURE: "ALERT",
    ExecutionStatus.ERROR: "ERROR",
    ExecutionStatus.RUNNING: "RUNNING",
}


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    cells = [[_cell(v) for v in row] for row in rows]
    widths = [len(h) for h in headers]
    for row in cells:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    lines = ["  ".join(h.upper().ljust(w) for h, w in zip(headers, widths, strict=True)).rstrip()]
    lines += [
        "  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in cells
    ]
    return "\n".join(lines)


def _cell(value: Any) -> str:
    if value is None:
        return "-"
    if isinstance(value, datetime):
        return value.strftime("%Y-%m-%d %H:%M:%S")
    if isinstance(value, float):
        return f"{value:g}"
    return redact(str(value)).replace("\n", " ")


def to_json(data: Any) -> str:
    """``data`` as one JSON document; every command's ``--json`` goes through here.

    Models and dataclasses, at any depth, become objects of their fields: ``dataclasses.asdict``
    keeps the pydantic :class:`DeliveryOutcome` inside an :class:`ExecutionRecord` as it is, and
    ``to_jsonable`` would print it as its repr.
    """
    return json.dumps(to_jsonable(_fields(data)), indent=2, sort_keys=False)


def _fields(value: Any) -> Any:
    if isinstance(value, BaseModel):
        return _fields(value.model_dump())
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: _fields(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, Mapping):
        return {k: _fields(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_fields(v) for v in value]
    return value


def deliveries(outcomes: Sequence[DeliveryOutcome]) -> str:
    parts = []
    for o in outcomes:
        text = f"{o.channel} {o.status}"
        if o.error and o.status != DeliveryStatus.SENT:
            text += f" ({o.error})"
        parts.append(text)
    return "; ".join(parts)


def run_results(results: Sequence[ExecutionResult]) -> str:
    rows = []
    for r in results:
        qr = r.query_result
        if r.duplicate:
            note = "already run for this slot"
        elif r.error:
            note = r.error
        elif r.notifications:
            prefix = "would notify: " if r.dry_run else ""
            note = prefix + deliveries(r.notifications)
        else:
            note = ""
        rows.append(
            [
                _LABEL.get(r.status, r.status),
                r.alert_name,
                qr.actual_value if qr else None,
                qr.threshold if qr else None,
                f"{r.duration_ms:.1f}",
                note or "-",
            ]
        )
    return table(["status", "alert", "value", "threshold", "ms", "notes"], rows)


def run_summary(results: Sequence[ExecutionResult]) -> str:
    firing = sum(1 for r in results if r.status == ExecutionStatus.FAILURE)
    errors = sum(1 for r in results if r.status == ExecutionStatus.ERROR)
    outcomes = [n.status for r in results for n in r.notifications]
    text = f"{len(results)} alerts run: {firing} firing, {errors} errors"
    if outcomes:
        counts = {s: outcomes.count(s) for s in dict.fromkeys(outcomes)}
        text += "; notifications: " + ", ".join(f"{n} {s}" for s, n in counts.items())
    return text + (" (dry run: nothing written or sent)" if results and results[0].dry_run else "")


def history_rows(records: Sequence[ExecutionRecord]) -> str:
    rows = []
    for r in records:
        note = r.error_message or ""
        if r.notifications:
            note = "; ".join(filter(None, [note, deliveries(r.notifications)]))
        rows.append(
            [
                r.id,
                r.executed_at,
                r.alert_name,
                r.status,
                r.actual_value
                if r.actual_value is not None
                else (r.context_data or {}).get("actual_value"),
                r.threshold,
                f"{r.execution_duration_ms:.1f}",
                r.triggered_by,
                note or "-",
            ]
        )
    headers = ["id", "executed (utc)", "alert", "status", "value", "threshold", "ms", "by", "notes"]
    return table(headers, rows)


def statistics(stats: dict[str, Any]) -> str:
    return (
        f"{stats['total_executions']} executions, success rate {stats['success_rate']:.1f}%, "
        f"{stats['alert_executions']} alerting, {stats['error_executions']} errors, "
        f"avg {stats['avg_duration_ms']:.1f} ms; "
        f"notifications: {stats['notifications_sent']} sent, "
        f"{stats['notifications_failed']} failed, {stats['notifications_pending']} pending"
    )


def status_rows(rows: Sequence[Any], now: datetime) -> str:
    """One line per alert: state, since when, pending count, silence, mute, last and next run,
    and any problem."""
    out = []
    for r in rows:
        state = r.state
        label = state.current_status or "never run"
        if not r.alert.enabled:
            label += " (disabled)"
        pending = (
            f"{state.consecutive_alerts}/{r.alert.fire_after}"
            if state.current_status == AlertStatus.PENDING
            else None
        )
        silenced = (
            state.silence_until if state.silence_until and state.silence_until > now else None
        )
        last = r.last_run
        problems = []
        if state.last_outcome == Outcome.ERROR and state.last_error:
            problems.append(f"last run failed: {state.last_error}")
        if last is not None and last.notification_error:
            problems.append(f"notification: {last.notification_error}")
        if state.held:
            problems.append(f"{state.held} notice held by a mute window")
        out.append(
            [
                r.alert.name,
                r.alert.severity,
                label,
                state.status_since,
                pending,
                silenced,
                "yes" if r.muted else None,
                last.executed_at if last else None,
                _LABEL.get(last.status, last.status) if last else None,
                r.next_run,
                "; ".join(problems) or "-",
            ]
        )
    headers = ["alert", "severity", "state", "since", "pending", "silenced until", "muted"]
    return table([*headers, "last run", "result", "next run", "notes"], out)


def dependencies(health: Health) -> str:
    """One line per dependency: whether it answers, and the queue depths with the broker."""
    lines = []
    for check in health.checks:
        state = "ok" if check.ok else f"UNREACHABLE: {check.error}"
        extra = ""
        if check.name == "broker" and health.queue_depths:
            extra = " (" + ", ".join(f"{q} {n} waiting" for q, n in health.queue_depths.items())
            extra += ")"
        lines.append(f"{check.name}: {state} [{check.target}]{extra}")
    return "\n".join(lines)
