"""Turning an alert event into text: Jinja2 templates, the variables they see, the webhook payload.

User templates come from the alert file, which is not always written by whoever runs the process,
so they run in Jinja2's sandbox: no attribute starting with ``_``, no access to Python internals.
Undefined names render empty rather than failing, because a column that is missing from today's
result must not stop the alert from going out; only syntax errors are refused, and those are
caught by ``validate`` through :func:`check_template`. A template that still fails at run time
falls back to the default text, with a note: a plain notification beats none.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from functools import cache, lru_cache
from typing import TYPE_CHECKING, Any

from jinja2 import (
    ChainableUndefined,
    PackageLoader,
    Template,
    TemplateSyntaxError,
    select_autoescape,
)
from jinja2.sandbox import SandboxedEnvironment

from sentinel.redact import redact
from sentinel.serialization import to_jsonable

if TYPE_CHECKING:
    from sentinel.config import AlertConfig, NotificationConfig
    from sentinel.models import AlertEvent

#: Version of the webhook payload shape; bumped only for incompatible changes.
PAYLOAD_VERSION = 1

_MAX_SUBJECT = 200


def _blank_none(value: Any) -> Any:
    # "None" in a subject line reads like a bug; an absent value should simply be absent.
    return "" if value is None else value


def slack_escape(value: Any) -> str:
    """Escape the characters Slack's mrkdwn reads as markup (``<`` starts a link or mention)."""
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


@cache
def _environment() -> SandboxedEnvironment:
    environment = SandboxedEnvironment(
        loader=PackageLoader("sentinel.notifications", "templates"),
        autoescape=select_autoescape(("html",), default_for_string=False, default=False),
        undefined=ChainableUndefined,
        finalize=_blank_none,
        trim_blocks=True,
        lstrip_blocks=True,
    )
    environment.filters["slack_escape"] = slack_escape
    return environment


@lru_cache(maxsize=256)
def _compile(source: str) -> Template:
    return _environment().from_string(source)


def check_template(source: str) -> str | None:
    """Return a one-line description of a syntax error in ``source``, or None if it parses."""
    try:
        _environment().parse(source)
    except TemplateSyntaxError as exc:
        return f"line {exc.lineno}: {exc.message}"
    return None


def template_variables(event: AlertEvent, alert: AlertConfig | None = None) -> dict[str, Any]:
    """The names a template can use; context columns are also top-level unless they clash."""
    named: dict[str, Any] = {
        "alert_name": event.alert_name,
        "description": event.description or (alert.description if alert else None),
        "event": event.event,
        "status": event.status,
        "actual_value": event.actual_value,
        "threshold": event.threshold,
        "context": dict(event.context),
        "executed_at": event.executed_at,
        "scheduled_for": event.scheduled_for,
        "execution_id": event.execution_id,
        "notification_id": event.notification_id,
        "triggered_by": event.triggered_by,
        "error": event.error,
        "labels": dict(event.labels),
    }
    columns = {str(k): v for k, v in event.context.items() if str(k) not in named}
    return {**columns, **named}


def _render_default(name: str, variables: Mapping[str, Any]) -> str:
    return _environment().get_template(name).render(variables).strip()


def _render_custom(source: str, variables: Mapping[str, Any]) -> str:
    return _compile(source).render(variables).strip()


def _render(
    source: str | None, default: str, variables: dict[str, Any], what: str
) -> tuple[str, str | None]:
    """Render ``source`` or the default; the second item explains a custom template's failure."""
    if source:
        try:
            return _render_custom(source, variables), None
        except Exception as exc:  # any error a user template can raise
            reason = str(exc).rstrip(".") or type(exc).__name__
            note = f"(The custom {what} could not be rendered: {reason}; the default was used.)"
            return _render_default(default, variables), redact(note)
    return _render_default(default, variables), None


def render_subject(
    event: AlertEvent, config: NotificationConfig, alert: AlertConfig | None = None
) -> str:
    """The email subject: one line (a header cannot hold more), the default if it came out empty."""
    variables = template_variables(event, alert)
    rendered, _ = _render(config.subject, "email_subject.txt", variables, "subject")
    subject = " ".join(rendered.split())
    if not subject:
        subject = " ".join(_render_default("email_subject.txt", variables).split())
    return subject[:_MAX_SUBJECT]


def _with_note(rendered: tuple[str, str | None]) -> str:
    text, note = rendered
    return f"{text}\n\n{note}" if note else text


def render_text(
    event: AlertEvent, config: NotificationConfig, alert: AlertConfig | None = None
) -> str:
    """The plain-text message: the notification's ``template`` or the default body."""
    variables = template_variables(event, alert)
    return _with_note(_render(config.template, "email_body.txt", variables, "template"))


def render_html(
    event: AlertEvent, config: NotificationConfig, alert: AlertConfig | None = None
) -> str:
    """The HTML email body; a custom ``template`` appears in it as the (escaped) message."""
    variables = template_variables(event, alert)
    message = render_message(event, config, alert)
    return _render_default("email_body.html", {**variables, "message": message})


def render_slack_text(
    event: AlertEvent, config: NotificationConfig, alert: AlertConfig | None = None
) -> str:
    """Slack's message text (also its notification fallback)."""
    variables = template_variables(event, alert)
    return _with_note(_render(config.template, "slack_text.txt", variables, "template"))


def render_message(
    event: AlertEvent, config: NotificationConfig, alert: AlertConfig | None = None
) -> str | None:
    """The notification's own ``template`` rendered, or None when it has none."""
    if not config.template:
        return None
    return render_text(event, config, alert)


def _utc_iso(moment: datetime | None) -> str | None:
    # Sentinel's own timestamps are naive UTC; saying so spares every receiver a guess.
    if moment is None:
        return None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=UTC)
    return moment.isoformat()


def webhook_payload(
    event: AlertEvent, alert: AlertConfig | None = None, message: str | None = None
) -> dict[str, Any]:
    """The documented, stable JSON body of a webhook notification (payload version 1)."""
    return {
        "version": PAYLOAD_VERSION,
        "event": event.event,
        "alert_name": event.alert_name,
        "description": event.description or (alert.description if alert else None),
        "status": event.status,
        "actual_value": to_jsonable(event.actual_value),
        "threshold": to_jsonable(event.threshold),
        "context": to_jsonable(dict(event.context)),
        "executed_at": _utc_iso(event.executed_at),
        "scheduled_for": _utc_iso(event.scheduled_for),
        "execution_id": event.execution_id,
        "notification_id": event.notification_id,
        "triggered_by": event.triggered_by,
        "labels": {str(k): str(v) for k, v in event.labels.items()},
        "error": event.error,
        "message": message,
    }
