"""The API's response and request bodies (what ``/openapi.json`` documents)."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Annotated, Any

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, model_validator


def _as_utc(moment: datetime) -> datetime:
    """Stored times are naive UTC; the API says so (RFC 3339 needs the offset)."""
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


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
    state: str | None = Field(description="OK, PENDING or ALERT; null if it never ran")
    since: Timestamp | None
    pending: str | None = Field(description="consecutive ALERT results / fire_after, if pending")
    last_value: float | str | None
    threshold: float | str | None
    last_run_at: Timestamp | None
    last_result: str | None = Field(description="success, failure, error or skipped")
    next_run: Timestamp | None
    silenced_until: Timestamp | None
    muted: bool


class Channel(BaseModel):
    channel: str
    target: str = Field(description="recipients, or the endpoint's scheme://host (no token)")


class AlertDetail(AlertSummary):
    query: str
    timeout: float | None
    min_interval: float
    notify: list[Channel]
    rules: dict[str, Any]
    runbook_url: str | None


class AlertStatusBody(BaseModel):
    name: str
    state: str | None
    since: Timestamp | None
    last_outcome: str | None
    last_error: str | None
    consecutive_alerts: int
    consecutive_successes: int
    consecutive_errors: int
    last_execution_at: Timestamp | None
    last_notified_at: Timestamp | None
    silenced_until: Timestamp | None
    muted: bool
    held: str | None
    next_run: Timestamp | None


class Notification(BaseModel):
    id: int | None
    channel: str
    event: str
    status: str
    error: str | None
    attempts: int


class Execution(BaseModel):
    id: int
    alert_name: str
    executed_at: Timestamp
    scheduled_for: Timestamp | None
    triggered_by: str
    status: str
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
    result: str | None = Field(None, description="success, failure or error, when finished")


_DURATION = r"^\s*\d+(\.\d+)?\s*[smhdwSMHDW]?\s*$"


def _one_of_duration_or_until(schema: dict[str, Any]) -> None:
    """Document what the validator enforces: exactly one of the two, never null."""
    props = schema["properties"]
    props["duration"] = {"type": "string", "pattern": _DURATION, "examples": ["2h"],
                         "description": "how long, e.g. 30m, 4h, 2d"}  # fmt: skip
    props["until"] = {"type": "string", "format": "date-time",
                      "description": "ISO 8601 end; no offset means UTC"}  # fmt: skip
    schema["oneOf"] = [
        {"required": ["duration"], "not": {"required": ["until"]}},
        {"required": ["until"], "not": {"required": ["duration"]}},
    ]


class SilenceRequest(BaseModel):
    model_config = ConfigDict(json_schema_extra=_one_of_duration_or_until)

    duration: str | None = Field(None, pattern=_DURATION)
    until: Timestamp | None = None
    reason: str | None = Field(None, max_length=2000)
    created_by: str | None = Field(None, max_length=200)

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
