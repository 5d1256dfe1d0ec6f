"""The two actors. Thin by design: each parses its message and calls into ``sentinel``."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime

import dramatiq
from dramatiq.middleware import CurrentMessage

from sentinel.config import AlertConfig
from sentinel.errors import StateStoreError
from sentinel.fleet import namespace
from sentinel.models import DeliveryOutcome
from sentinel.outages import Dependency, outages
from sentinel.redact import redact
from workers import keys
from workers.broker import configured_broker
from workers.live_deployment import live_deployment

log = logging.getLogger("workers.actors")
NS = namespace()
broker = configured_broker()  # before the actors below, which bind to it


def _hand_off(outbox_id: int, alert: AlertConfig) -> DeliveryOutcome | None:
    """After the state change committed: queue the delivery. If the broker is down the row stays
    pending in the outbox and the scheduler's sweeper enqueues it later; nothing is lost."""
    try:
        deliver_notification.send(outbox_id)
    except Exception as exc:
        log.warning("notification %s left for the sweeper: %s", outbox_id, redact(exc))
    return None


live = live_deployment()
live.dispatch = _hand_off


@contextmanager
def _state_database() -> Iterator[None]:
    """The state database being away is an outage, not a bug: one log line for the outage (not
    a traceback per attempt), and the message retried with back-off by Dramatiq's Retries."""
    try:
        with outages.watch(Dependency.STATE_DB, StateStoreError):
            yield
    except StateStoreError as exc:
        raise dramatiq.Retry(str(exc)) from None


@dramatiq.actor(actor_name="execute-alert", queue_name=keys.queue_name(NS, keys.ALERTS))
def execute_alert(
    alert_name: str, scheduled_for: str | None = None, triggered_by: str = "CRON"
) -> None:
    message = CurrentMessage.get_current_message()
    deployment, executor = live.for_message(message.message_id if message else None)
    try:
        alert = deployment.config.alert(alert_name)
    except Exception:
        log.error("alert %s is no longer in the configuration; message dropped", alert_name)
        return
    with _state_database():
        executor.execute_alert(
            alert,
            deployment.adapter,
            triggered_by=triggered_by,
            scheduled_for=datetime.fromisoformat(scheduled_for) if scheduled_for else None,
            message_id=message.message_id if message else None,
        )


@dramatiq.actor(
    actor_name="deliver-notification", queue_name=keys.queue_name(NS, keys.NOTIFICATIONS)
)
def deliver_notification(outbox_id: int) -> None:
    deployment, executor = live.current()
    with _state_database():
        executor.deliver_inline_by_id(outbox_id, deployment.config.alerts_by_name())
