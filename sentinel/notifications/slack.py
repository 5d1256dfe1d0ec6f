"""Slack through an incoming webhook: a ``text`` fallback plus Block Kit ``blocks``.

``text`` is what Slack shows in push notifications and to clients that cannot draw blocks, so it
carries the whole message on its own; the blocks add the numbers and context columns laid out.
Block Kit limits (150 characters in a header, 3000 in a section, 10 fields) are enforced here by
truncation, because Slack rejects an oversized message outright and the alert would be lost.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from sentinel.notifications.http import HTTPNotificationService, post, user_agent
from sentinel.notifications.render import render_slack_text, slack_escape

if TYPE_CHECKING:
    from sentinel.config import AlertConfig, NotificationConfig
    from sentinel.models import AlertEvent

_HEADLINES = {"firing": "Firing", "resolved": "Resolved", "error": "Error"}
_MAX_HEADER = 150
_MAX_SECTION = 3000
_MAX_FIELD = 2000
_MAX_FIELDS = 10


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _field(name: str, value: object) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _clip(f"*{name}*\n{slack_escape(value)}", _MAX_FIELD)}


def slack_blocks(event: AlertEvent, text: str) -> list[dict[str, Any]]:
    """The Block Kit layout: headline, the message, the numbers, the context columns, a footer."""
    headline = f"{_HEADLINES.get(event.event, event.event.title())}: {event.alert_name}"
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(headline, _MAX_HEADER)}}
    ]
    if text.strip():  # Slack rejects a section with empty text, and the whole message with it
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, _MAX_SECTION)}}
        )
    numbers = [_field("Status", event.status)]
    if event.actual_value is not None:
        numbers.append(_field("Actual value", event.actual_value))
    if event.threshold is not None:
        numbers.append(_field("Threshold", event.threshold))
    if event.error:
        numbers.append(_field("Error", event.error))
    blocks.append({"type": "section", "fields": numbers})
    columns = [_field(str(k), v) for k, v in {**event.context, **event.labels}.items()]
    for start in range(0, len(columns), _MAX_FIELDS):
        blocks.append({"type": "section", "fields": columns[start : start + _MAX_FIELDS]})
    footer = [f"triggered by {event.triggered_by}"]
    if event.executed_at is not None:
        footer.append(f"executed {event.executed_at:%Y-%m-%d %H:%M:%S} UTC")
    if event.execution_id is not None:
        footer.append(f"execution #{event.execution_id}")
    blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": " · ".join(footer)}]})
    return blocks[:50]  # Slack's per-message block limit


class SlackNotificationService(HTTPNotificationService):
    """Posts to a Slack incoming-webhook URL (``webhook_url`` of the notification)."""

    channel: ClassVar[str] = "slack"

    def _send_once(
        self, event: AlertEvent, config: NotificationConfig, alert: AlertConfig | None
    ) -> None:
        text = render_slack_text(event, config, alert)
        body = {"text": text, "blocks": slack_blocks(event, text)}
        post(
            config.webhook_url or "",
            json.dumps(body, ensure_ascii=False).encode("utf-8"),
            {"Content-Type": "application/json; charset=utf-8", "User-Agent": user_agent()},
            timeout=self.timeout,
            channel=self.channel,
        )
