"""Generic webhooks: the documented JSON payload, POSTed with headers a receiver can rely on.

Headers sent with every request:

``Content-Type: application/json``
    The body is the payload of :func:`sentinel.notifications.render.webhook_payload`, UTF-8.
``User-Agent: sql-sentinel/<version>``
``Idempotency-Key`` and ``X-Sentinel-Notification-Id``
    The notification's outbox id, when it has one. A retry (ours after a timeout, or a redelivery
    by the queue) carries the same key, so a receiver can drop what it has already processed.
``X-Sentinel-Signature: sha256=<hex>``
    Only when the notification sets ``secret``: the hex HMAC-SHA256 of the exact body bytes keyed
    with the secret. Receivers recompute it over the raw body they received (before any JSON
    parsing) and compare with ``hmac.compare_digest``.

Headers from the notification's ``headers`` are sent too, but cannot replace the ones above: a
configured header must not be able to break the signature or the idempotency key.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from typing import TYPE_CHECKING, ClassVar

from sentinel.enums import Channel
from sentinel.notifications.http import HTTPNotificationService, post, user_agent
from sentinel.notifications.render import render_message, webhook_payload

if TYPE_CHECKING:
    from sentinel.config import AlertConfig, NotificationConfig
    from sentinel.models import AlertEvent

SIGNATURE_HEADER = "X-Sentinel-Signature"

_OWN_HEADERS = frozenset(
    {
        "content-type",
        "content-length",
        "user-agent",
        "idempotency-key",
        "x-sentinel-notification-id",
        SIGNATURE_HEADER.lower(),
    }
)


def sign(body: bytes, secret: str) -> str:
    """The value of :data:`SIGNATURE_HEADER` for ``body``."""
    digest = hmac.new(secret.encode("utf-8"), body, hashlib.sha256).hexdigest()
    return f"sha256={digest}"


class WebhookNotificationService(HTTPNotificationService):
    """POSTs the alert event as JSON to the notification's ``webhook_url``."""

    channel: ClassVar[Channel] = Channel.WEBHOOK

    def _send_once(
        self, event: AlertEvent, config: NotificationConfig, alert: AlertConfig | None
    ) -> None:
        payload = webhook_payload(event, alert, render_message(event, config, alert))
        body = json.dumps(payload, ensure_ascii=False, allow_nan=False).encode("utf-8")
        headers = {
            name: value
            for name, value in config.headers.items()
            if name.lower() not in _OWN_HEADERS
        }
        headers["Content-Type"] = "application/json"
        headers["User-Agent"] = user_agent()
        if event.notification_id is not None:
            headers["Idempotency-Key"] = str(event.notification_id)
            headers["X-Sentinel-Notification-Id"] = str(event.notification_id)
        if config.secret:
            headers[SIGNATURE_HEADER] = sign(body, config.secret)
        post(
            config.webhook_url or "",
            body,
            headers,
            timeout=self.timeout,
            channel=self.channel,
        )
