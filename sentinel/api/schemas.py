"""The API's response and request bodies (what ``/openapi.json`` documents)."""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    ValidationInfo,
    field_validator,
    model_validator,
)

from sentinel import enums
from sentinel.durations import duration_pattern, parse_duration, utc_naive


def _as_utc(moment: datetime) -> datetime:
    """Stored times are naive UTC; the API says so (RFC 3339 needs the offset). A time that is
    not a date in UTC (``9999-12-31T23:00:00-05:00``) is a ``ValueError``: a 422 naming it."""
    return utc_naive(moment).replace(tzinfo=UTC)


Timestamp = Annotated[datetime, AfterValidator(_as_utc)]


class AlertSummary(BaseModel):
    name: str
    description: str | None
    schedule: str
    timezone: str
    enabled: bool
    severity: str
    labels: dict[str, str]
    owner: str | None
    state: enums.AlertStatus | None = Field(description="null if it never ran")
    since: Timestamp | None
    pending: str | None = Field(description="consecutive ALERT results / fire_after, if pending")
    last_value: float | str | None
    threshold: float | str | None
    last_run_at: Timestamp | None
    last_result: enums.ExecutionStatus | None = Field(description="the last finished run's")
    next_run: Timestamp | None
    silenced_until: Timestamp | None
    muted: bool


class NotifyTarget(BaseModel):
    channel: enums.Channel
    target: str = Field(description="recipients, or the endpoint's scheme://host (no token)")


class AlertDetail(AlertSummary):
    query: str
    timeout: float | None
    min_interval: float
    notify: list[NotifyTarget]
    rules: dict[str, Any]
    runbook_url: str | None


class AlertStatusBody(BaseModel):
    name: str
    state: enums.AlertStatus | None
    since: Timestamp | None
    last_outcome: enums.Outcome | None
    last_error: str | None
    consecutive_alerts: int
    consecutive_successes: int
    consecutive_errors: int
    last_execution_at: Timestamp | None
    last_notified_at: Timestamp | None
    silenced_until: Timestamp | None
    muted: bool
    held: enums.Event | None
    next_run: Timestamp | None


class Notification(BaseModel):
    id: int | None
    channel: enums.Channel
    event: enums.Event
    status: enums.DeliveryStatus
    error: str | None
    attempts: int


class Execution(BaseModel):
    id: int
    alert_name: str
    executed_at: Timestamp
    scheduled_for: Timestamp | None
    triggered_by: str
    status: enums.ExecutionStatus
    duration_ms: float
    actual_value: float | None
    threshold: float | None
    error: str | None
    context: dict[str, Any] | None
    notifications: list[Notification]


class HistoryPage(BaseModel):
    items: list[Execution]
    next_before: int | None = Field(description="pass as ?before= for the next (older) page")


class ExecuteAccepted(BaseModel):
    status: str = Field(description="queued (through the broker) or finished (in-process)")
    message_id: str | None = None
    execution_id: int | None = None
    result: enums.ExecutionStatus | None = Field(None, description="when finished")


#: Exactly the durations a silence may have (at most ten years), so the schema tells the truth.
_DURATION = duration_pattern()
_DURATION_RE = re.compile(_DURATION)


def _one_of_duration_or_until(schema: dict[str, Any]) -> None:
    """Document what the validator enforces: exactly one of the two, never null."""
    props = schema["properties"]
    props["duration"] = {"type": "string", "pattern": _DURATION, "examples": ["2h"],
                         "description": "how long, e.g. 30m, 4h, 2d: at most 10 years"}  # fmt: skip
    props["until"] = {"type": "string", "format": "date-time",
                      "description": "ISO 8601 end; no offset means UTC"}  # fmt: skip
    schema["oneOf"] = [
        {"required": ["duration"], "not": {"required": ["until"]}},
        {"required": ["until"], "not": {"required": ["duration"]}},
    ]


#: Text PostgreSQL can store: no NUL character (the validator below says so by name).
_NO_NUL: dict[str, Any] = {"pattern": "^[^\\u0000]*$"}


class SilenceRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra=_one_of_duration_or_until)

    duration: str | None = None  # checked below, with a reason rather than the long pattern
    until: Timestamp | None = None
    reason: str | None = Field(None, max_length=2000, json_schema_extra=_NO_NUL)
    created_by: str | None = Field(None, max_length=200, json_schema_extra=_NO_NUL)

    @field_validator("duration", "until", mode="before")
    @classmethod
    def a_string(cls, value: Any, info: ValidationInfo) -> Any:
        if value is None:  # left out, it is not validated; given, it is one of the two ends
            raise ValueError("give a value or leave the field out (not null)")
        if not isinstance(value, str | datetime):  # a number is not a time (nor seconds here)
            example = "2h" if info.field_name == "duration" else "2026-12-01T09:00:00Z"
            raise ValueError(f"a string, e.g. {example}")
        return value

    @field_validator("duration")
    @classmethod
    def sane_duration(cls, value: str | None) -> str | None:
        if value is not None:
            parse_duration(value)  # its ValueError says what is wrong: a 422 naming the field
            if not _DURATION_RE.fullmatch(value):  # e.g. 521.4w, or digits other than 0-9
                raise ValueError("at most 10 years (3650d), in digits 0-9: e.g. 30m, 4h, 2d")
        return value

    @field_validator("reason", "created_by")
    @classmethod
    def no_nul(cls, value: str | None) -> str | None:
        if value is not None and "\x00" in value:
            raise ValueError("must not contain NUL characters")  # PostgreSQL cannot store them
        return value

    @model_validator(mode="after")
    def one_end(self) -> SilenceRequest:
        if (self.duration is None) == (self.until is None):
            raise ValueError("give exactly one of 'duration' or 'until'")
        return self


class SilenceBody(BaseModel):
    id: int
    alert_name: str | None
    matchers: dict[str, str]
    created_by: str | None
    reason: str | None
    starts_at: Timestamp | None
    ends_at: Timestamp | None


class Unsilenced(BaseModel):
    ended: int = Field(description="how many of the alert's own silences (by name) ended")
    still_silenced_by: list[SilenceBody] = Field(
        default_factory=list,
        description="silences by label matchers that still cover the alert (they cover every "
        "alert they match, so unsilencing one alert by name leaves them); present only when "
        "there are some: end one by its id with 'sqlsentinel unsilence CONFIG --id ID'",
    )


class Check(BaseModel):
    ok: bool
    target: str | None = None
    error: str | None = None
    #: Whether readiness depends on it (the data database does not: its alerts record the error).
    required: bool = True
    #: Since when this process has seen it failing, if it has.
    down_since: Timestamp | None = None


class Ready(BaseModel):
    ready: bool
    checks: dict[str, Check]


class Health(BaseModel):
    status: str


class Stats(BaseModel):
    alerts: int
    by_state: dict[str, int]
    executions_last_hour: int
    executions_last_day: int
    failures_last_day: int
    errors_last_day: int
    failure_rate_last_day: float = Field(description="percent of runs in the last day that fired")
    notifications_last_hour: dict[str, int]
    notifications_last_day: dict[str, int]
    queue_depths: dict[str, int]


class ErrorDetail(BaseModel):
    status: int
    code: str
    message: str
    fields: list[dict[str, str]]


class ErrorBody(BaseModel):
    error: ErrorDetail
