"""Turning an alert event into text: Jinja2 templates, the variables they see, the webhook payload.

The rows of a ``details_query`` are laid out here for every channel alike: one value per cell, on
one line, clipped (:func:`cell_text`), and aligned into a monospace table (:func:`text_table`, also
a template filter), because a notification is read at a glance and must survive any data.

User templates come from the alert file, which is not always written by whoever runs the process,
so they run in Jinja2's sandbox: no attribute starting with ``_``, no access to Python internals.
Undefined names render empty rather than failing, because a column that is missing from today's
result must not stop the alert from going out; only syntax errors are refused, and those are
caught by ``validate`` through :func:`check_template`. A template that still fails at run time
falls back to the default text, with a note: a plain notification beats none.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import UTC, datetime
from decimal import Decimal
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

from sentinel.durations import format_duration
from sentinel.redact import redact
from sentinel.serialization import to_jsonable

if TYPE_CHECKING:
    from sentinel.config import AlertConfig, NotificationConfig
    from sentinel.models import AlertEvent

#: Version of the webhook payload shape; bumped only for incompatible changes.
PAYLOAD_VERSION = 1

_MAX_SUBJECT = 200
# A details cell longer than this is clipped, so one long text column cannot push a table apart.
_MAX_CELL = 60


def _blank_none(value: Any) -> Any:
    # "None" in a subject line reads like a bug; an absent value should simply be absent.
    return "" if value is None else value


def slack_escape(value: Any) -> str:
    """Escape the characters Slack's mrkdwn reads as markup (``<`` starts a link or mention)."""
    text = "" if value is None else str(value)
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def is_web_url(value: Any) -> bool:
    """Whether ``value`` may become a link: http(s) only, so a runbook URL cannot run script."""
    text = str(value or "")
    return text.lower().startswith(("http://", "https://")) and not any(
        c.isspace() or c in "<>|\"'" for c in text
    )


def cell_text(value: Any, width: int = _MAX_CELL) -> str:
    """One details value as table text: on one line, blank for NULL, bytes as hex, clipped."""
    if value is None:
        return ""
    raw = bytes(value).hex() if isinstance(value, bytes | bytearray | memoryview) else str(value)
    text = " ".join(raw.split())  # a newline or tab inside a value would break the table apart
    return text if len(text) <= width else text[: width - 1] + "…"


def details_columns(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """The column names of a details result, in order: the first row's keys."""
    return [str(name) for name in rows[0]] if rows else []


def _is_number(value: Any) -> bool:
    return isinstance(value, int | float | Decimal) and not isinstance(value, bool)


def text_table(rows: Sequence[Mapping[str, Any]]) -> str:
    """Rows as an aligned plain-text table (header, rule, a line per row) for monospace text.

    Numeric columns are right-aligned so their digits line up; everything else left-aligned.
    """
    columns = details_columns(rows)
    if not columns:
        return ""
    cells = [[cell_text(row.get(name)) for name in columns] for row in rows]
    widths = [
        max([len(cell_text(name))] + [len(line[i]) for line in cells])
        for i, name in enumerate(columns)
    ]
    numeric = [
        all(_is_number(row.get(name)) for row in rows if row.get(name) is not None)
        for name in columns
    ]

    def line(values: Sequence[str]) -> str:
        padded = (
            v.rjust(w) if right else v.ljust(w)
            for v, w, right in zip(values, widths, numeric, strict=True)
        )
        return "  ".join(padded).rstrip()

    header = line([cell_text(name) for name in columns])
    rule = "  ".join("-" * w for w in widths)
    return "\n".join([header, rule, *(line(values) for values in cells)])


def _as_utc(moment: datetime) -> datetime:
    # Sentinel's own timestamps are naive UTC; a driver may hand back an aware one.
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


def firing_for(event: AlertEvent) -> str:
    """How long the alert was firing, like ``2h15m`` (seconds only under an hour), or ``""``."""
    if event.firing_since is None or event.executed_at is None:
        return ""
    seconds = int((_as_utc(event.executed_at) - _as_utc(event.firing_since)).total_seconds())
    if seconds >= 3600:
        seconds -= seconds % 60  # "2h15m" reads better than "2h15m7s"
    return format_duration(seconds)


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
    environment.filters["cell"] = cell_text
    environment.filters["text_table"] = text_table
    environment.tests["web_url"] = is_web_url
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
        "severity": event.severity,
        "owner": event.owner,
        "runbook_url": event.runbook_url,
        "firing_since": event.firing_since,
        "firing_for": firing_for(event),
        "details": [dict(row) for row in event.details],
        "details_columns": details_columns(event.details),
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


def _message(
    event: AlertEvent, config: NotificationConfig, alert: AlertConfig | None, default: str
) -> str:
    """The notification's own ``template``, else the channel's ``default`` one, with any note."""
    variables = template_variables(event, alert)
    return _with_note(_render(config.template, default, variables, "template"))


def render_text(
    event: AlertEvent, config: NotificationConfig, alert: AlertConfig | None = None
) -> str:
    """The plain-text message: the notification's ``template`` or the default body."""
    return _message(event, config, alert, "email_body.txt")


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
    return _message(event, config, alert, "slack_text.txt")


def render_message(
    event: AlertEvent, config: NotificationConfig, alert: AlertConfig | None = None
) -> str | None:
    """The notification's own ``template`` rendered, or None when it has none."""
    if not config.template:
        return None
    return render_text(event, config, alert)


def _utc_iso(moment: datetime | None) -> str | None:
    # Saying UTC explicitly spares every receiver a guess.
    return None if moment is None else _as_utc(moment).isoformat()


def webhook_payload(
    event: AlertEvent, alert: AlertConfig | None = None, message: str | None = None
) -> dict[str, Any]:
    """The documented, stable JSON body of a webhook notification (payload version 1).

    Fields are only ever added within a version (``details`` .. ``firing_since`` were), so a
    receiver written against version 1 keeps working.
    """
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
        "details": [to_jsonable(dict(row)) for row in event.details],
        "severity": event.severity,
        "owner": event.owner,
        "runbook_url": event.runbook_url,
        "firing_since": _utc_iso(event.firing_since),
    }
