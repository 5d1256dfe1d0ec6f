"""What every notification channel has in common: the entry points and the retry loop around them.

A channel only knows how to make one attempt (:meth:`NotificationService._send_once`) and how to
classify its failure; delivering, retrying and turning surprises into a recordable
:class:`NotificationError` happen here, identically for email, Slack and webhooks.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import TYPE_CHECKING, ClassVar

from sentinel.enums import Channel, Event, Outcome
from sentinel.errors import NotificationError
from sentinel.models import AlertEvent, QueryResult, utcnow
from sentinel.notifications.retry import RetryPolicy, call_with_retry
from sentinel.redact import redact

if TYPE_CHECKING:
    from sentinel.config import AlertConfig, NotificationConfig


class NotificationService(ABC):
    """Delivers one rendered alert event to one channel, retrying what is worth retrying."""

    channel: ClassVar[Channel]

    def __init__(self, retry_policy: RetryPolicy | None = None) -> None:
        self.retry_policy = retry_policy or RetryPolicy()

    def send(
        self, alert: AlertConfig, result: QueryResult, notification_config: NotificationConfig
    ) -> None:
        """The spec's entry point: notify about a query result that was just read."""
        event = AlertEvent(
            event=Event.FIRING if result.status == Outcome.ALERT else Event.RESOLVED,
            alert_name=alert.name,
            status=result.status,
            description=alert.description,
            actual_value=result.actual_value,
            threshold=result.threshold,
            context=dict(result.context),
            executed_at=utcnow(),
            labels=dict(alert.labels),
            severity=alert.severity,
            owner=alert.owner,
            runbook_url=alert.runbook_url,
        )
        self.deliver(event, notification_config, alert)

    def deliver(
        self, event: AlertEvent, config: NotificationConfig, alert: AlertConfig | None = None
    ) -> int:
        """Render and send ``event``; return how many attempts it took.

        Raise :class:`NotificationError` once it finally fails, with the attempts it made in its
        ``attempts``.
        """
        if config.channel != self.channel:
            raise NotificationError(
                f"the {self.channel} service cannot deliver to a {config.channel} channel",
                attempts=0,
            )
        _, attempts = call_with_retry(
            lambda: self._attempt(event, config, alert), self.retry_policy
        )
        return attempts

    def _attempt(
        self, event: AlertEvent, config: NotificationConfig, alert: AlertConfig | None
    ) -> None:
        try:
            self._send_once(event, config, alert)
        except NotificationError:
            raise
        except Exception as exc:
            # A delivery that fails must be recorded, never crash the run that triggered it; the
            # cause stays chained for whoever debugs it.
            raise NotificationError(
                redact(f"{self.channel}: unexpected {type(exc).__name__}: {exc}")
            ) from exc

    @abstractmethod
    def _send_once(
        self, event: AlertEvent, config: NotificationConfig, alert: AlertConfig | None
    ) -> None:
        """Make exactly one delivery attempt.

        Raise ``NotificationError(retryable=True)`` when another attempt may succeed (the network,
        a 5xx, an SMTP 4xx), with ``retry_after`` when the server said how long to wait, and
        ``retryable=False`` when it cannot (bad address, rejected credentials, a 4xx).
        """
