"""Delivering alert notifications by email, Slack and webhook, with one retry policy.

The channel services are imported on first use (module ``__getattr__``): the CLI imports this
package on every start, and smtplib, httpx and Jinja2 are only worth loading when something is
actually sent.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from sentinel.notifications.base import NotificationService
from sentinel.notifications.factory import NotificationFactory
from sentinel.notifications.retry import RetryPolicy

if TYPE_CHECKING:
    from sentinel.notifications.email import EmailNotificationService
    from sentinel.notifications.slack import SlackNotificationService
    from sentinel.notifications.webhook import WebhookNotificationService

_LAZY = {
    "EmailNotificationService": "sentinel.notifications.email",
    "SlackNotificationService": "sentinel.notifications.slack",
    "WebhookNotificationService": "sentinel.notifications.webhook",
}


def __getattr__(name: str) -> Any:
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


__all__ = [
    "EmailNotificationService",
    "NotificationFactory",
    "NotificationService",
    "RetryPolicy",
    "SlackNotificationService",
    "WebhookNotificationService",
]
