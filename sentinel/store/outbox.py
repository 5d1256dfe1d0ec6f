"""The notification outbox: rows written with the state change, delivered after commit.

Delivery takes a lease on a row (``pending`` -> ``sending`` with ``lease_until``) in a short
transaction, sends without holding any lock, then records the outcome. A notifier that dies while
sending leaves a lease that expires, and the row is sent again: delivery is at-least-once, with the
outbox id as the idempotency key that receivers can deduplicate on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from sentinel import environment
from sentinel.enums import DeliveryStatus
from sentinel.models import DeliveryOutcome
from sentinel.store.engine import inserted_id, read_transaction, write_transaction
from sentinel.store.tables import executions, outbox


@dataclass(frozen=True)
class OutboxRow:
    id: int
    execution_id: int
    alert_name: str
    channel: str
    channel_index: int
    event: str
    payload: dict[str, Any]
    attempts: int
    rounds: int


def insert_notifications(
    conn: Connection,
    execution_id: int,
    alert_name: str,
    channels: Sequence[str],
    event: str,
    payload: dict[str, Any],
    now: datetime,
) -> list[int]:
    """Queue one row per channel of the alert (in the caller's transaction)."""
    ids = []
    for index, channel in enumerate(channels):
        result = conn.execute(
            outbox.insert().values(
                execution_id=execution_id,
                alert_name=alert_name,
                channel=channel,
                channel_index=index,
                event=event,
                payload=payload,
                status=DeliveryStatus.PENDING,
                attempts=0,
                rounds=0,
                next_attempt_at=now,
                created_at=now,
                updated_at=now,
            )
        )
        ids.append(inserted_id(result))
    return ids


def lease(
    engine: Engine, outbox_id: int, now: datetime, seconds: float | None = None
) -> OutboxRow | None:
    """Take the right to send one row for ``seconds`` (default: the configured lease); ``None``
    if it is sent, failed, leased or not yet due."""
    if seconds is None:
        seconds = environment.delivery_lease_seconds()
    leasable = sa.or_(
        sa.and_(outbox.c.status == DeliveryStatus.PENDING, outbox.c.next_attempt_at <= now),
        sa.and_(outbox.c.status == DeliveryStatus.SENDING, outbox.c.lease_until < now),
    )
    with write_transaction(engine) as conn:
        updated = conn.execute(
            outbox.update()
            .where(outbox.c.id == outbox_id, leasable)
            .values(
                status=DeliveryStatus.SENDING,
                lease_until=now + timedelta(seconds=seconds),
                rounds=outbox.c.rounds + 1,
                updated_at=now,
            )
        )
        if updated.rowcount != 1:
            return None
        row = conn.execute(sa.select(outbox).where(outbox.c.id == outbox_id)).one()
    return OutboxRow(
        id=int(row.id),
        execution_id=int(row.execution_id),
        alert_name=row.alert_name,
        channel=row.channel,
        channel_index=int(row.channel_index),
        event=row.event,
        payload=dict(row.payload),
        attempts=int(row.attempts),
        rounds=int(row.rounds),
    )


def complete(
    engine: Engine,
    row: OutboxRow,
    now: datetime,
    *,
    attempts: int,
    error: str | None = None,
    retryable: bool = False,
    max_rounds: int | None = None,
    round_backoff: Sequence[float] | None = None,
) -> DeliveryOutcome:
    """Record how a leased delivery ended and mirror it on the execution row (``max_rounds`` and
    ``round_backoff`` default to the configured ones)."""
    if max_rounds is None:
        max_rounds = environment.delivery_max_rounds()
    if round_backoff is None:
        round_backoff = environment.delivery_round_backoff_seconds()
    if error is None:
        status = DeliveryStatus.SENT
    elif retryable and row.rounds < max_rounds:
        status = DeliveryStatus.PENDING
    else:
        status = DeliveryStatus.FAILED
    wait = round_backoff[min(row.rounds - 1, len(round_backoff) - 1)]
    with write_transaction(engine) as conn:
        conn.execute(
            outbox.update()
            .where(outbox.c.id == row.id, outbox.c.status == DeliveryStatus.SENDING)
            .values(
                status=status,
                attempts=outbox.c.attempts + attempts,
                last_error=error,
                lease_until=None,
                next_attempt_at=now + timedelta(seconds=wait)
                if status == DeliveryStatus.PENDING
                else now,
                sent_at=now if status == DeliveryStatus.SENT else None,
                updated_at=now,
            )
        )
        _mirror_on_execution(conn, row.execution_id)
    if status == DeliveryStatus.PENDING:
        error = f"{error} (will retry at {now + timedelta(seconds=wait):%Y-%m-%d %H:%M:%S}Z)"
    return DeliveryOutcome(
        notification_id=row.id,
        channel=row.channel,
        event=row.event,
        status=status,
        error=error,
        attempts=row.attempts + attempts,
    )


def _mirror_on_execution(conn: Connection, execution_id: int) -> None:
    rows = conn.execute(
        sa.select(outbox.c.channel, outbox.c.status, outbox.c.last_error)
        .where(outbox.c.execution_id == execution_id)
        .order_by(outbox.c.id)
    ).all()
    errors = [
        f"{r.channel}: {r.last_error}"
        for r in rows
        if r.status != DeliveryStatus.SENT and r.last_error
    ]
    conn.execute(
        executions.update()
        .where(executions.c.id == execution_id)
        .values(
            notification_sent=any(r.status == DeliveryStatus.SENT for r in rows),
            notification_error="; ".join(errors) or None,
        )
    )


def due(
    engine: Engine, now: datetime, limit: int = 1000, untouched_since: datetime | None = None
) -> list[int]:
    """Rows that should be (re)sent now: pending and due, or leased by a notifier that died.

    ``untouched_since`` leaves out pending rows changed after it: their message is most likely
    still queued (the fleet's sweeper only re-enqueues rows that look stranded).
    """
    pending = sa.and_(outbox.c.status == DeliveryStatus.PENDING, outbox.c.next_attempt_at <= now)
    if untouched_since is not None:
        # A row whose round failed has no message queued: it is due when its back-off ends.
        queued = sa.and_(outbox.c.rounds == 0, outbox.c.updated_at > untouched_since)
        pending = sa.and_(pending, sa.not_(queued))
    with read_transaction(engine) as conn:
        rows = conn.execute(
            sa.select(outbox.c.id)
            .where(
                sa.or_(
                    pending,
                    sa.and_(outbox.c.status == DeliveryStatus.SENDING, outbox.c.lease_until < now),
                )
            )
            .order_by(outbox.c.id)
            .limit(limit)
        ).all()
    return [int(r.id) for r in rows]


def outcomes_for(
    conn: Connection, execution_ids: Sequence[int]
) -> dict[int, list[DeliveryOutcome]]:
    """Delivery outcomes per execution, for history and status."""
    found: dict[int, list[DeliveryOutcome]] = {}
    if not execution_ids:
        return found
    rows = conn.execute(
        sa.select(outbox)
        .where(outbox.c.execution_id.in_(list(execution_ids)))
        .order_by(outbox.c.id)
    ).all()
    for r in rows:
        found.setdefault(int(r.execution_id), []).append(
            DeliveryOutcome(
                notification_id=int(r.id),
                channel=r.channel,
                event=r.event,
                status=r.status,
                error=r.last_error,
                attempts=int(r.attempts),
            )
        )
    return found
