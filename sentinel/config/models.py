"""The configuration's shape: pydantic models of alerts, channels, the database and defaults."""

from __future__ import annotations

import dataclasses
import functools
import re
from dataclasses import dataclass, field
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from sentinel import defaults
from sentinel.durations import parse_duration
from sentinel.enums import Channel
from sentinel.errors import Issue

_NAME = re.compile(r"^[A-Za-z0-9_-]+$")


def _seconds(value: Any) -> float:
    return parse_duration(value).total_seconds()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NotificationConfig(_Strict):
    """Where and how one alert notifies."""

    channel: Channel = Field(..., description="email, slack, webhook")
    recipients: list[str] | None = Field(None, description="Email recipients")
    webhook_url: str | None = Field(None, description="Webhook URL for slack/webhook channels")
    subject: str | None = Field(None, description="Email subject template (Jinja2)")
    template: str | None = Field(None, description="Message body template (Jinja2)")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers")
    secret: str | None = Field(None, description="HMAC-SHA256 signing secret (webhook)")

    @field_validator("channel", mode="before")
    @classmethod
    def validate_channel(cls, v: object) -> object:
        if isinstance(v, str) and v not in set(Channel):
            raise ValueError(
                f"unsupported notification channel '{v}' (use email, slack or webhook)"
            )
        return v

    @field_validator("recipients")
    @classmethod
    def validate_recipients(cls, v: list[str] | None) -> list[str] | None:
        for address in v or []:
            if "@" not in address or any(c.isspace() for c in address.strip()):
                raise ValueError(f"not an email address: '{address}'")
        return v

    @model_validator(mode="after")
    def check_target(self) -> NotificationConfig:
        if self.channel == Channel.EMAIL and not self.recipients:
            raise ValueError("email needs at least one address in 'recipients'")
        if self.channel in (Channel.SLACK, Channel.WEBHOOK):
            url = (self.webhook_url or "").strip()
            if not url:
                raise ValueError(f"{self.channel} needs 'webhook_url'")
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{self.channel} 'webhook_url' must be an http(s) URL")
        return self


class DatabaseConfig(_Strict):
    """The database the alert queries run against."""

    url: str = Field(..., min_length=1, description="SQLAlchemy database URL")
    pool_size: int = Field(defaults.POOL_SIZE, ge=1, description="Connection pool size")
    timeout: float = Field(
        defaults.QUERY_TIMEOUT_SECONDS, gt=0, description="Seconds for connecting and each query"
    )

    _parse_timeout = field_validator("timeout", mode="before")(
        classmethod(lambda c, v: _seconds(v))
    )


_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")
_CLOCK = re.compile(r"^([01]?\d|2[0-3]):([0-5]\d)$")


class MuteWindow(_Strict):
    """When notifications are held: ``cron`` + ``duration``, or ``start``-``end`` on weekdays."""

    cron: str | None = None
    duration: float | None = Field(None, gt=0)
    start: str | None = None  # "22:00"
    end: str | None = None  # "06:00" (may wrap past midnight)
    weekdays: list[str] | None = None  # mon..sun; all days when omitted
    timezone: str = "UTC"

    _parse_duration = field_validator("duration", mode="before")(
        classmethod(lambda c, v: None if v is None else _seconds(v))
    )

    @field_validator("timezone")
    @classmethod
    def validate_timezone(cls, v: str) -> str:
        return AlertConfig.validate_timezone(v)

    @field_validator("cron")
    @classmethod
    def validate_cron(cls, v: str | None) -> str | None:
        return None if v is None else AlertConfig.validate_schedule(v)

    @field_validator("start", "end")
    @classmethod
    def validate_clock(cls, v: str | None) -> str | None:
        if v is not None and not _CLOCK.match(v):
            raise ValueError(f"'{v}' is not a time of day like 22:00")
        return v

    @field_validator("weekdays")
    @classmethod
    def validate_weekdays(cls, v: list[str] | None) -> list[str] | None:
        if v is None:
            return None
        days = [d.lower()[:3] for d in v]
        for day in days:
            if day not in _WEEKDAYS:
                raise ValueError(f"'{day}' is not a weekday (mon, tue, ... sun)")
        return days

    @model_validator(mode="after")
    def check_shape(self) -> MuteWindow:
        by_cron = self.cron is not None or self.duration is not None
        by_clock = self.start is not None or self.end is not None
        if by_cron == by_clock:
            raise ValueError("a mute window is either 'cron' + 'duration' or 'start' + 'end'")
        if by_cron and (self.cron is None or self.duration is None):
            raise ValueError("a cron mute window needs both 'cron' and 'duration'")
        if by_clock and (self.start is None or self.end is None):
            raise ValueError("a daily mute window needs both 'start' and 'end'")
        return self


class AlertConfig(_Strict):
    """One alert: a query, a schedule and where to notify."""

    name: str = Field(..., min_length=1, description="Alert name")
    description: str | None = Field(None, description="Alert description")
    query: str = Field(..., min_length=1, description="SQL query to execute")
    schedule: str = Field(..., description="Five-field cron schedule")
    timezone: str = Field("UTC", description="IANA time zone of the schedule")
    enabled: bool = Field(True, description="Whether the alert is enabled")
    notify: list[NotificationConfig] = Field(default_factory=list)
    timeout: float | None = Field(None, gt=0, description="Query timeout in seconds")
    min_interval: float = Field(0.0, ge=0, description="Minimum seconds between notifications")
    # -- on-call behaviour (all optional; the defaults are the spec's behaviour) -----------------
    notify_on_recovery: bool = Field(False, description="Notify when a notified alert resolves")
    fire_after: int = Field(1, ge=1, description="Consecutive ALERT results before firing")
    resolve_after: int = Field(1, ge=1, description="Consecutive OK results before resolving")
    repeat_interval: float | None = Field(None, gt=0, description="Re-notify while firing")
    on_no_data: Literal["ok", "alert", "error", "keep"] = Field("error")
    on_error: Literal["notify", "ignore"] = Field("ignore")
    error_after: int = Field(1, ge=1, description="Consecutive errors before an error notice")
    severity: Literal["info", "warning", "critical"] = Field("warning")
    labels: dict[str, str] = Field(default_factory=dict)
    owner: str | None = None
    runbook_url: str | None = None
    mute: list[MuteWindow] = Field(default_factory=list)
    details_query: str | None = Field(None, description="Rows shown in notifications (guarded)")
    details_limit: int = Field(10, ge=1, le=100, description="How many details rows to show")

    @field_validator("name")
    @classmethod
    def validate_name(cls, v: str) -> str:
        if not _NAME.match(v):
            raise ValueError(f"'{v}' may only contain letters, digits, '_' and '-'")
        return v

    @field_validator("query")
    @classmethod
    def validate_query(cls, v: str) -> str:
        if not v.strip():
            raise ValueError("Query cannot be empty")
        return v.strip()

    @field_validator("schedule")
    @classmethod
    def validate_schedule(cls, v: str) -> str:
        return _checked_schedule(v)

    @field_validator("timezone")
    @classmethod
    def validate_timezone(cls, v: str) -> str:
        return _checked_timezone(v)

    _parse_durations = field_validator("timeout", "min_interval", "repeat_interval", mode="before")(
        classmethod(lambda c, v: None if v is None else _seconds(v))
    )

    @field_validator("labels")
    @classmethod
    def validate_labels(cls, v: dict[str, str]) -> dict[str, str]:
        for key in v:
            if not _NAME.match(key):
                raise ValueError(
                    f"label name '{key}' may only contain letters, digits, '_' and '-'"
                )
        return {k: str(value) for k, value in v.items()}


@functools.lru_cache(maxsize=4096)
def _checked_schedule(v: str) -> str:
    """A schedule in five fields, or ValueError; memoised, since a large config has many alerts
    on few schedules and croniter's parse of one costs more than the rest of an alert's checks.
    (A refused schedule raises, so it is not memoised and is checked again, as before.)"""
    from croniter import croniter

    from sentinel.scheduling.cron import five_fields

    v = five_fields(v)
    try:  # croniter accepts dates that never come, like 30 February
        croniter(v).get_next(float)
    except (ValueError, KeyError):
        raise ValueError(f"cron schedule '{v}' never fires") from None
    return v


@functools.lru_cache(maxsize=1024)
def _checked_timezone(v: str) -> str:
    """An IANA zone name, or ValueError; memoised because ZoneInfo's own cache keeps only the
    last few zones strongly, and a config with more zones than that read the tz file per alert."""
    try:
        ZoneInfo(v)
    except (ZoneInfoNotFoundError, ValueError):
        raise ValueError(f"unknown time zone '{v}' (use an IANA name like Europe/Berlin)") from None
    return v


#: The alert fields a top-level ``defaults:`` block may set; every alert inherits them. The
#: block is validated by AlertConfig itself (its fields, its validators), not by a copy of them.
INHERITED = frozenset(
    {
        "min_interval", "timeout", "enabled", "timezone", "notify", "notify_on_recovery",
        "fire_after", "resolve_after", "repeat_interval", "on_no_data", "on_error",
        "error_after", "severity", "labels", "owner", "runbook_url", "mute", "details_limit",
    }
)  # fmt: skip
#: What a probe alert needs besides the defaults, so that only the defaults can be wrong.
DEFAULTS_PROBE = {"name": "defaults", "query": "SELECT 'OK' AS status", "schedule": "0 0 1 1 *"}


_TOP_LEVEL = {"database", "alerts", "defaults"}


@dataclass
class SentinelConfig:
    """A validated configuration file."""

    database: DatabaseConfig
    alerts: list[AlertConfig]
    path: str | None = None
    raw_text: str | None = None  # the file as written, before ${VAR} substitution
    warnings: list[Issue] = field(default_factory=list)
    _by_name: dict[str, AlertConfig] | None = field(default=None, repr=False, compare=False)

    def without_alerts(self) -> SentinelConfig:
        """The same file's settings with no alerts (what a process that keeps its alerts in
        another form still reads: the database, the path, the text)."""
        return dataclasses.replace(self, alerts=[], _by_name=None)

    def alerts_by_name(self) -> dict[str, AlertConfig]:
        if self._by_name is None or len(self._by_name) != len(self.alerts):
            self._by_name = {a.name: a for a in self.alerts}
        return self._by_name

    def alert(self, name: str) -> AlertConfig:
        """The alert called ``name`` (workers look one up per message: a dict, not a scan)."""
        from sentinel.errors import UsageError

        found = self.alerts_by_name().get(name)
        if found is None:
            known = ", ".join(a.name for a in self.alerts) or "none"
            raise UsageError(f"unknown alert '{name}' (known alerts: {known})")
        return found
