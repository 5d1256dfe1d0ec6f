"""Sending one outbox row: lease it, send it through its channel, record the outcome.

The same function serves the one-process ``run`` (right after the commit), a later ``run`` that
retries rows still pending, and the fleet's notification actor.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import fields
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine
from tenacity import (
    RetryCallState,
    Retrying,
    retry_if_exception_type,
    stop_after_delay,
    wait_exponential,
)

from sentinel import environment
from sentinel.enums import Outcome
from sentinel.errors import NotificationError, StateStoreError
from sentinel.models import AlertEvent, DeliveryOutcome, utcnow
from sentinel.outages import Dependency, outages
from sentinel.redact import redact
from sentinel.store import outbox

if TYPE_CHECKING:
    from sentinel.config import AlertConfig, NotificationConfig
    from sentinel.notifications import NotificationFactory

log = logging.getLogger("sentinel.delivery")
#: Recording an outcome stops being retried this long before the lease ends, so the row is
#: never recorded by this notifier after another one may have leased it.
RECORD_MARGIN_SECONDS = 2.0
_EVENT_FIELDS = {f.name for f in fields(AlertEvent)}


def event_payload(event: AlertEvent) -> dict[str, Any]:
    """An event as stored in the outbox: JSON-safe, and without the per-row id and event name."""
    from sentinel.serialization import to_jsonable

    data = {f: getattr(event, f) for f in _EVENT_FIELDS if f not in ("notification_id", "event")}
    return dict(to_jsonable(data))


def event_from_row(row: outbox.OutboxRow) -> AlertEvent:
    data = {k: v for k, v in row.payload.items() if k in _EVENT_FIELDS}
    for key in ("executed_at", "scheduled_for", "firing_since"):
        if isinstance(data.get(key), str):
            data[key] = datetime.fromisoformat(data[key])
    if "status" in data:
        data["status"] = Outcome(data["status"])
    data.update(event=row.event, notification_id=row.id)
    return AlertEvent(**data)


class Deliverer:
    """Delivers outbox rows with the services of one :class:`NotificationFactory`.

    The lease and the rounds are the configured ones (``SENTINEL_DELIVERY_*``), read once here:
    the lease a row is taken for is the one its outcome is recorded within."""

    def __init__(
        self, engine: Engine, factory: NotificationFactory, clock: Callable[[], datetime] = utcnow
    ):
        self.engine = engine
        self.factory = factory
        self.clock = clock
        self.lease_seconds = environment.delivery_lease_seconds()
        self.max_rounds = environment.delivery_max_rounds()
        self.round_backoff = environment.delivery_round_backoff_seconds()

    def deliver(self, outbox_id: int, alerts: Mapping[str, AlertConfig]) -> DeliveryOutcome | None:
        """Send one row if it is due; ``None`` when another notifier has it or it is done."""
        row = outbox.lease(self.engine, outbox_id, self.clock(), self.lease_seconds)
        if row is None:
            return None
        leased_at = time.monotonic()
        alert = alerts.get(row.alert_name)
        target = _target(alert, row)
        if alert is None or target is None:
            error = "the alert or its channel is no longer in the configuration"
            return self._record(row, leased_at, attempts=0, error=error)
        try:
            service = self.factory.create_service(row.channel)
            attempts = service.deliver(event_from_row(row), target, alert)
        except NotificationError as exc:
            outcome = self._record(
                row, leased_at, attempts=exc.attempts, error=redact(exc), retryable=exc.retryable
            )
        except Exception as exc:  # a bug in a channel must not lose the notification
            log.exception("unexpected error delivering notification %s", row.id)
            error = redact(f"{type(exc).__name__}: {exc}")
            outcome = self._record(row, leased_at, attempts=1, error=error, retryable=True)
        else:
            outcome = self._record(row, leased_at, attempts=attempts)
        log.info(
            "notification id=%s alert=%s channel=%s event=%s status=%s%s",
            row.id,
            row.alert_name,
            row.channel,
            row.event,
            outcome.status,
            f" error={outcome.error}" if outcome.error else "",
        )
        return outcome

    def _record(
        self,
        row: outbox.OutboxRow,
        leased_at: float,
        *,
        attempts: int,
        error: str | None = None,
        retryable: bool = False,
    ) -> DeliveryOutcome:
        """Record how the delivery ended, retrying while the state database is away.

        The endpoint has answered by now: giving up here would let the lease expire and another
        notifier send the row again. Inside the lease nobody else can, so the outcome is retried
        until the lease is nearly over (then the StateStoreError propagates, and the row is sent
        again after its lease: at least once, with the same idempotency key)."""
        budget = max(0.0, self.lease_seconds - RECORD_MARGIN_SECONDS)
        remaining = max(0.0, budget - (time.monotonic() - leased_at))
        for attempt in Retrying(
            retry=retry_if_exception_type(StateStoreError),
            wait=wait_exponential(multiplier=0.5, max=5),
            stop=stop_after_delay(remaining),
            before_sleep=_note_outage,
            reraise=True,
        ):
            with attempt:
                outcome = outbox.complete(
                    self.engine,
                    row,
                    self.clock(),
                    attempts=attempts,
                    error=error,
                    retryable=retryable,
                    max_rounds=self.max_rounds,
                    round_backoff=self.round_backoff,
                )
        return outcome

    def deliver_due(self, alerts: Mapping[str, AlertConfig]) -> list[DeliveryOutcome]:
        """Retry every row that is due now (pending after a failed round, or abandoned)."""
        results = []
        for outbox_id in outbox.due(self.engine, self.clock()):
            outcome = self.deliver(outbox_id, alerts)
            if outcome is not None:
                results.append(outcome)
        return results


def _note_outage(state: RetryCallState) -> None:
    error = state.outcome.exception() if state.outcome is not None else None
    outages.failed(Dependency.STATE_DB, error or "the state database is away")


def _target(alert: AlertConfig | None, row: outbox.OutboxRow) -> NotificationConfig | None:
    if alert is None or row.channel_index >= len(alert.notify):
        return None
    target = alert.notify[row.channel_index]
    return target if target.channel == row.channel else None
