"""Execution history: every run of every alert, with its notifications, and statistics over it."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sentinel import defaults
from sentinel.enums import FINISHED, DeliveryStatus, ExecutionStatus
from sentinel.models import ExecutionRecord
from sentinel.store.engine import inserted_id, read_transaction, write_transaction
from sentinel.store.outbox import outcomes_for
from sentinel.store.schema import ensure_schema
from sentinel.store.tables import executions, outbox


def _record(row: Any) -> ExecutionRecord:
    return ExecutionRecord(
        id=int(row.id),
        alert_name=row.alert_name,
        executed_at=row.executed_at,
        execution_duration_ms=float(row.execution_duration_ms or 0.0),
        status=row.status,
        actual_value=row.actual_value,
        threshold=row.threshold,
        query=row.query,
        error_message=row.error_message,
        triggered_by=row.triggered_by,
        notification_sent=bool(row.notification_sent),
        notification_error=row.notification_error,
        context_data=row.context_data,
        scheduled_for=row.scheduled_for,
        finished_at=row.finished_at,
        result_status=row.result_status,
    )


class ExecutionHistory:
    """The spec's history API (section 4.3) over ``sqlsentinel_executions``."""

    def __init__(self, engine: Engine):
        self.engine = engine

    def record_execution(self, record: ExecutionRecord) -> int:
        """Store a finished execution written by the caller (runs record themselves)."""
        ensure_schema(self.engine)
        with write_transaction(self.engine) as conn:
            result = conn.execute(
                executions.insert().values(
                    alert_name=record.alert_name,
                    scheduled_for=record.scheduled_for,
                    triggered_by=record.triggered_by,
                    status=record.status,
                    claimed_at=record.executed_at,
                    executed_at=record.executed_at,
                    finished_at=record.finished_at or record.executed_at,
                    execution_duration_ms=record.execution_duration_ms,
                    result_status=record.result_status,
                    actual_value=record.actual_value,
                    threshold=record.threshold,
                    context_data=record.context_data,
                    query=record.query,
                    error_message=record.error_message,
                    notification_sent=record.notification_sent,
                    notification_error=record.notification_error,
                )
            )
            return inserted_id(result)

    def get_recent_executions(
        self,
        alert_name: str | None = None,
        limit: int = defaults.HISTORY_LIMIT,
        before: int | None = None,
    ) -> list[ExecutionRecord]:
        """Newest first; ``before`` (an execution id) pages further back."""
        ensure_schema(self.engine)
        query = sa.select(executions).order_by(executions.c.id.desc()).limit(limit)
        if alert_name is not None:
            query = query.where(executions.c.alert_name == alert_name)
        if before is not None:
            query = query.where(executions.c.id < before)
        return self._with_notifications(query)

    def by_ids(self, ids: list[int]) -> list[ExecutionRecord]:
        """These executions with their notifications (two queries per 500 ids, whatever their
        number: the chunks keep every statement under SQLite's and drivers' parameter limits)."""
        if not ids:
            return []
        ensure_schema(self.engine)
        records: list[ExecutionRecord] = []
        with read_transaction(self.engine) as conn:
            for start in range(0, len(ids), 500):
                chunk = ids[start : start + 500]
                query = sa.select(executions).where(executions.c.id.in_(chunk))
                found = [_record(row) for row in conn.execute(query)]
                notes = outcomes_for(conn, chunk)
                for record in found:
                    record.notifications = notes.get(record.id or 0, [])
                records.extend(found)
        return records

    def for_messages(self, message_ids: list[str]) -> list[ExecutionRecord]:
        """Finished executions that these broker messages asked for."""
        ensure_schema(self.engine)
        query = (
            sa.select(executions)
            .where(
                executions.c.message_id.in_(message_ids),
                executions.c.status != ExecutionStatus.RUNNING,
            )
            .order_by(executions.c.id)
        )
        return self._with_notifications(query)

    def _with_notifications(self, query: sa.Select[Any]) -> list[ExecutionRecord]:
        """The executions ``query`` selects, each with its notifications (two queries in all)."""
        with read_transaction(self.engine) as conn:
            records = [_record(row) for row in conn.execute(query)]
            notes = outcomes_for(conn, [r.id for r in records if r.id is not None])
        for record in records:
            record.notifications = notes.get(record.id or 0, [])
        return records

    def get_statistics(self, alert_name: str | None = None) -> dict[str, Any]:
        """Totals, success rate (percent of runs that said OK) and durations of finished runs."""
        ensure_schema(self.engine)
        finished = executions.c.status.in_(FINISHED)
        where: list[sa.ColumnElement[bool]] = [finished]
        if alert_name is not None:
            where.append(executions.c.alert_name == alert_name)

        def count(status: ExecutionStatus) -> Any:
            return sa.func.sum(sa.case((executions.c.status == status, 1), else_=0))

        query = sa.select(
            sa.func.count().label("total"),
            count(ExecutionStatus.SUCCESS).label("successes"),
            count(ExecutionStatus.FAILURE).label("failures"),
            count(ExecutionStatus.ERROR).label("errors"),
            sa.func.avg(executions.c.execution_duration_ms).label("avg_ms"),
            sa.func.min(executions.c.execution_duration_ms).label("min_ms"),
            sa.func.max(executions.c.execution_duration_ms).label("max_ms"),
            sa.func.max(executions.c.executed_at).label("last_at"),
        ).where(*where)
        note_query = sa.select(outbox.c.status, sa.func.count()).group_by(outbox.c.status)
        if alert_name is not None:
            note_query = note_query.where(outbox.c.alert_name == alert_name)
        with read_transaction(self.engine) as conn:
            row = conn.execute(query).one()
            notes = {status: int(n) for status, n in conn.execute(note_query)}
        total = int(row.total or 0)
        successes = int(row.successes or 0)
        last_at: datetime | None = row.last_at
        return {
            "total_executions": total,
            "successful_executions": successes,
            "alert_executions": int(row.failures or 0),
            "error_executions": int(row.errors or 0),
            "success_rate": (100.0 * successes / total) if total else 0.0,
            "avg_duration_ms": float(row.avg_ms or 0.0),
            "min_duration_ms": float(row.min_ms or 0.0),
            "max_duration_ms": float(row.max_ms or 0.0),
            "last_execution_at": last_at.isoformat() if last_at else None,
            "notifications_sent": notes.get(DeliveryStatus.SENT, 0),
            "notifications_failed": notes.get(DeliveryStatus.FAILED, 0),
            "notifications_pending": notes.get(DeliveryStatus.PENDING, 0)
            + notes.get(DeliveryStatus.SENDING, 0),
        }
