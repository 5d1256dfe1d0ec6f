"""Slack through an incoming webhook: a ``text`` fallback plus Block Kit ``blocks``.

``text`` is what Slack shows in push notifications and to clients that cannot draw blocks, so it
carries the whole message on its own; the blocks add the numbers, the details rows (a monospace
table in a code block), severity, owner and runbook, and the context columns laid out.
Block Kit limits (150 characters in a header, 3000 in a section, 10 fields) are enforced here by
truncation, because Slack rejects an oversized message outright and the alert would be lost.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any, ClassVar

from sentinel.enums import Channel, Event
from sentinel.notifications.http import HTTPNotificationService, post, user_agent
from sentinel.notifications.render import (
    firing_for,
    is_web_url,
    render_slack_text,
    slack_escape,
    text_table,
)

if TYPE_CHECKING:
    from sentinel.config import AlertConfig, NotificationConfig
    from sentinel.models import AlertEvent

_FENCE = "```"
# A value holding ``` would end the code block early; modifier grave accents look the same.
_FENCE_LOOKALIKE = "\u02cb" * 3
_MAX_HEADER = 150
_MAX_SECTION = 3000
_MAX_FIELD = 2000
_MAX_FIELDS = 10


def _clip(text: str, limit: int) -> str:
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _field(name: str, value: object) -> dict[str, str]:
    return {"type": "mrkdwn", "text": _clip(f"*{name}*\n{slack_escape(value)}", _MAX_FIELD)}


def _headline(event: AlertEvent) -> str:
    if event.event == Event.FIRING:
        return f"Firing: {event.alert_name}"
    if event.event == Event.RESOLVED:
        duration = firing_for(event)
        return f"Resolved: {event.alert_name}" + (f" (firing for {duration})" if duration else "")
    return f"Error: {event.alert_name} could not be checked"


def details_code_block(rows: list[dict[str, Any]], limit: int = _MAX_SECTION) -> str:
    """The rows as a monospace table in a code block, within ``limit`` characters.

    Rows that do not fit are dropped from the end and counted in a note ("… 12 more rows"), so
    the table stays whole instead of being cut mid-line; lines too wide are clipped.
    """
    lines = [
        _clip(slack_escape(line).replace(_FENCE, _FENCE_LOOKALIKE), limit // 4)
        for line in text_table(rows).split("\n")
    ]
    head, body = lines[:2], lines[2:]

    def block(shown: list[str], note: str) -> str:
        return "\n".join([_FENCE, *head, *shown, _FENCE]) + (f"\n{note}" if note else "")

    if len(whole := block(body, "")) <= limit:
        return whole
    room = limit - len(block([], f"_… {len(body)} more rows_"))
    shown: list[str] = []
    for line in body:
        if len(line) + 1 > room:
            break
        shown.append(line)
        room -= len(line) + 1
    hidden = len(body) - len(shown)
    return block(shown, f"_… {hidden} more row{'s' if hidden != 1 else ''}_")


def _on_call_line(event: AlertEvent) -> str:
    parts = []
    if event.severity:
        parts.append(f"*Severity:* {slack_escape(event.severity)}")
    if event.owner:
        parts.append(f"*Owner:* {slack_escape(event.owner)}")
    if event.runbook_url:
        url = slack_escape(event.runbook_url)
        parts.append(f"<{url}|Runbook>" if is_web_url(event.runbook_url) else f"Runbook: {url}")
    return " · ".join(parts)


def slack_blocks(event: AlertEvent, text: str) -> list[dict[str, Any]]:
    """The Block Kit layout: headline, message, severity/owner/runbook, numbers, details rows,
    context columns, a footer. Details come before the columns so the 50-block cap spares them."""
    headline = _headline(event)
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _clip(headline, _MAX_HEADER)}}
    ]
    if text.strip():  # Slack rejects a section with empty text, and the whole message with it
        blocks.append(
            {"type": "section", "text": {"type": "mrkdwn", "text": _clip(text, _MAX_SECTION)}}
        )
    if on_call := _on_call_line(event):
        blocks.append({"type": "context", "elements": [{"type": "mrkdwn", "text": on_call}]})
    numbers = [_field("Status", event.status)]
    if event.actual_value is not None:
        numbers.append(_field("Actual value", event.actual_value))
    if event.threshold is not None:
        numbers.append(_field("Threshold", event.threshold))
    if event.error:
        numbers.append(_field("Error", event.error))
    blocks.append({"type": "section", "fields": numbers})
    if event.details:
        table = details_code_block(event.details)
        blocks.append({"type": "section", "text": {"type": "mrkdwn", "text": table}})
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

    channel: ClassVar[Channel] = Channel.SLACK

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
