"""Alert configuration: the YAML file, ``${VAR}`` substitution, pydantic models and validation.

Validation never stops at the first problem: every alert is checked and every problem is reported
together with the file, the alert and the field, so an analyst fixes a file in one pass.
"""

from __future__ import annotations

import contextlib
import os
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import yaml
from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator
from pydantic import ValidationError as PydanticValidationError

from sentinel.durations import parse_duration
from sentinel.errors import ConfigurationError, Issue, UnsafeQueryError, ValidationError
from sentinel.redact import register_secret

CHANNELS = ("email", "slack", "webhook")
_NAME = re.compile(r"^[A-Za-z0-9_-]+$")
# ${VAR} or ${VAR:-default}; $${ is an escaped literal "${". $VAR and $1 are never touched.
_ENV_REF = re.compile(r"\$\$\{|\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


def _seconds(value: Any) -> float:
    return parse_duration(value).total_seconds()


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class NotificationConfig(_Strict):
    """Where and how one alert notifies."""

    channel: Literal["email", "slack", "webhook"] = Field(..., description="email, slack, webhook")
    recipients: list[str] | None = Field(None, description="Email recipients")
    webhook_url: str | None = Field(None, description="Webhook URL for slack/webhook channels")
    subject: str | None = Field(None, description="Email subject template (Jinja2)")
    template: str | None = Field(None, description="Message body template (Jinja2)")
    headers: dict[str, str] = Field(default_factory=dict, description="Extra HTTP headers")
    secret: str | None = Field(None, description="HMAC-SHA256 signing secret (webhook)")

    @field_validator("channel", mode="before")
    @classmethod
    def validate_channel(cls, v: object) -> object:
        if isinstance(v, str) and v not in CHANNELS:
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
        if self.channel == "email" and not self.recipients:
            raise ValueError("email needs at least one address in 'recipients'")
        if self.channel in ("slack", "webhook"):
            url = (self.webhook_url or "").strip()
            if not url:
                raise ValueError(f"{self.channel} needs 'webhook_url'")
            if not url.startswith(("http://", "https://")):
                raise ValueError(f"{self.channel} 'webhook_url' must be an http(s) URL")
        return self


class DatabaseConfig(_Strict):
    """The database the alert queries run against."""

    url: str = Field(..., min_length=1, description="SQLAlchemy database URL")
    pool_size: int = Field(5, ge=1, description="Connection pool size")
    timeout: float = Field(30.0, gt=0, description="Seconds for connecting and for each query")

    _parse_timeout = field_validator("timeout", mode="before")(
        classmethod(lambda c, v: _seconds(v))
    )


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
        from croniter import croniter

        v = " ".join(v.split())
        if len(v.split(" ")) != 5 or not croniter.is_valid(v):
            raise ValueError(
                f"invalid cron schedule '{v}' (five fields: min hour day month weekday)"
            )
        try:  # croniter accepts dates that never come, like 30 February
            croniter(v).get_next(float)
        except (ValueError, KeyError):
            raise ValueError(f"cron schedule '{v}' never fires") from None
        return v

    @field_validator("timezone")
    @classmethod
    def validate_timezone(cls, v: str) -> str:
        try:
            ZoneInfo(v)
        except (ZoneInfoNotFoundError, ValueError):
            raise ValueError(
                f"unknown time zone '{v}' (use an IANA name like Europe/Berlin)"
            ) from None
        return v

    _parse_durations = field_validator("timeout", "min_interval", mode="before")(
        classmethod(lambda c, v: None if v is None else _seconds(v))
    )


class Defaults(_Strict):
    """Settings every alert inherits unless it sets its own."""

    min_interval: float | None = None
    timeout: float | None = None
    enabled: bool | None = None
    timezone: str | None = None
    notify: list[dict[str, Any]] | None = None

    _parse_durations = field_validator("timeout", "min_interval", mode="before")(
        classmethod(lambda c, v: None if v is None else _seconds(v))
    )


_TOP_LEVEL = {"database", "alerts", "defaults"}


@dataclass
class SentinelConfig:
    """A validated configuration file."""

    database: DatabaseConfig
    alerts: list[AlertConfig]
    path: str | None = None
    raw_text: str | None = None  # the file as written, before ${VAR} substitution
    warnings: list[Issue] = field(default_factory=list)

    def alert(self, name: str) -> AlertConfig:
        from sentinel.errors import UsageError

        for alert in self.alerts:
            if alert.name == name:
                return alert
        known = ", ".join(a.name for a in self.alerts) or "none"
        raise UsageError(f"unknown alert '{name}' (known alerts: {known})")


def substitute_env(
    value: str, where: str, issues: list[Issue], environ: dict[str, str] | None = None
) -> str:
    """Replace ``${VAR}`` and ``${VAR:-default}``; record a missing variable as an issue."""
    env = os.environ if environ is None else environ

    def replace(match: re.Match[str]) -> str:
        if match.group(0) == "$${":
            return "${"
        name, default = match.group(1), match.group(2)
        if name in env:
            return env[name]
        if default is not None:
            return default
        issues.append(Issue(None, None, where, f"environment variable {name} is not set"))
        return ""

    return _ENV_REF.sub(replace, value)


class ConfigLoader:
    """Reads a YAML configuration file and substitutes ``${VAR}`` references."""

    def __init__(self, path: str | os.PathLike[str], environ: dict[str, str] | None = None):
        self.path = str(path)
        self.environ = environ
        self.raw_text: str | None = None

    def load(self) -> dict[str, Any]:
        try:
            self.raw_text = Path(self.path).read_text(encoding="utf-8")
        except FileNotFoundError:
            raise ConfigurationError(f"{self.path}: file not found") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise ConfigurationError(f"{self.path}: cannot read: {exc}") from None
        try:
            data = yaml.safe_load(self.raw_text)
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            where = f":{mark.line + 1}:{mark.column + 1}" if mark else ""
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise ConfigurationError(f"{self.path}{where}: invalid YAML: {problem}") from None
        if not isinstance(data, dict):
            raise ConfigurationError(
                f"{self.path}: expected a mapping with 'database' and 'alerts'"
            )
        issues: list[Issue] = []
        result = self._substitute(data, "", issues, data)
        if issues:
            raise ValidationError([Issue(self.path, i.alert, i.field, i.message) for i in issues])
        return dict(result)

    def _substitute(self, node: Any, where: str, issues: list[Issue], root: dict[str, Any]) -> Any:
        if isinstance(node, str):
            found: list[Issue] = []
            value = substitute_env(node, where, found, self.environ)
            issues.extend(_locate(i, root) for i in found)
            return value
        if isinstance(node, dict):
            return {
                k: self._substitute(v, f"{where}.{k}" if where else str(k), issues, root)
                for k, v in node.items()
            }
        if isinstance(node, list):
            return [self._substitute(v, f"{where}[{i}]", issues, root) for i, v in enumerate(node)]
        return node


def _locate(issue: Issue, root: dict[str, Any]) -> Issue:
    """Turn a path like ``alerts[2].notify[0].webhook_url`` into alert name + field."""
    match = re.match(r"^alerts\[(\d+)\]\.?(.*)$", issue.field or "")
    if not match:
        return issue
    alerts = root.get("alerts")
    index = int(match.group(1))
    name = None
    if isinstance(alerts, list) and index < len(alerts) and isinstance(alerts[index], dict):
        name = alerts[index].get("name")
    return Issue(issue.file, str(name) if name else f"#{index + 1}", match.group(2), issue.message)


def _field_path(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


def _pydantic_issues(
    exc: PydanticValidationError, file: str | None, alert: str | None, prefix: str = ""
) -> list[Issue]:
    issues = []
    for err in exc.errors():
        loc = tuple(p for p in err["loc"] if not (isinstance(p, str) and p.startswith("function-")))
        path = _field_path(loc)
        if prefix:
            path = f"{prefix}.{path}" if path else prefix
        message = err["msg"].removeprefix("Value error, ")
        if err["type"] == "extra_forbidden":
            message = _unknown_field_message(str(loc[-1]) if loc else "", exc.title)
        issues.append(Issue(file, alert, path or None, message))
    return issues


_KNOWN_FIELDS = {
    "AlertConfig": set(AlertConfig.model_fields),
    "NotificationConfig": set(NotificationConfig.model_fields),
    "DatabaseConfig": set(DatabaseConfig.model_fields),
    "Defaults": set(Defaults.model_fields),
}


def _unknown_field_message(name: str, model: str) -> str:
    import difflib

    candidates = sorted(_KNOWN_FIELDS.get(model, set()) | set().union(*_KNOWN_FIELDS.values()))
    close = difflib.get_close_matches(name, candidates, n=1)
    hint = f" (did you mean '{close[0]}'?)" if close else ""
    return f"unknown field '{name}'{hint}"


class ConfigValidator:
    """Turns loaded data into validated models, collecting every problem before raising."""

    def __init__(self, source: str | None = None, check_sql: bool = True):
        self.source = source
        self.check_sql = check_sql

    def validate(self, data: dict[str, Any]) -> list[AlertConfig]:
        return self.validate_config(data).alerts

    def validate_config(self, data: dict[str, Any]) -> SentinelConfig:
        file = self.source
        issues: list[Issue] = []
        for key in data:
            if key not in _TOP_LEVEL:
                issues.append(Issue(file, None, str(key), _unknown_field_message(str(key), "")))

        database: DatabaseConfig | None = None
        raw_db = data.get("database")
        if not isinstance(raw_db, dict):
            issues.append(Issue(file, None, "database", "missing 'database' block with a 'url'"))
        else:
            try:
                database = DatabaseConfig.model_validate(raw_db)
            except PydanticValidationError as exc:
                issues.extend(_pydantic_issues(exc, file, None, "database"))

        defaults: dict[str, Any] = {}
        raw_defaults = data.get("defaults") or {}
        try:
            Defaults.model_validate(raw_defaults)
            defaults = dict(raw_defaults) if isinstance(raw_defaults, dict) else {}
        except PydanticValidationError as exc:
            issues.extend(_pydantic_issues(exc, file, None, "defaults"))

        alerts = self._validate_alerts(data.get("alerts"), defaults, file, issues)
        if database is not None and self.check_sql:
            issues.extend(self._check_queries(alerts, database.url, file))
        issues.extend(self._check_templates(alerts, file))
        if any(i.severity == "error" for i in issues):
            raise ValidationError(issues)
        assert database is not None
        register_config_secrets(database, alerts)
        return SentinelConfig(database=database, alerts=alerts, path=file, warnings=issues)

    def _validate_alerts(
        self, raw: Any, defaults: dict[str, Any], file: str | None, issues: list[Issue]
    ) -> list[AlertConfig]:
        if not isinstance(raw, list) or not raw:
            issues.append(Issue(file, None, "alerts", "expected a non-empty list of alerts"))
            return []
        alerts: list[AlertConfig] = []
        seen: set[str] = set()
        for index, item in enumerate(raw):
            if not isinstance(item, dict):
                issues.append(Issue(file, f"#{index + 1}", None, "an alert must be a mapping"))
                continue
            name = item.get("name")
            label = str(name) if name else f"#{index + 1}"
            try:
                alert = AlertConfig.model_validate({**defaults, **item})
            except PydanticValidationError as exc:
                issues.extend(_pydantic_issues(exc, file, label))
                continue
            if alert.name in seen:
                issues.append(Issue(file, alert.name, "name", "duplicate alert name"))
                continue
            seen.add(alert.name)
            alerts.append(alert)
        return alerts

    @staticmethod
    def _check_queries(alerts: list[AlertConfig], url: str, file: str | None) -> list[Issue]:
        from sentinel.sqlguard import check_query, dialect_for_url

        dialect = dialect_for_url(url)
        issues = []
        for alert in alerts:
            try:
                check_query(alert.query, dialect)
            except UnsafeQueryError as exc:
                issues.append(Issue(file, alert.name, "query", exc.reason))
        return issues

    @staticmethod
    def _check_templates(alerts: list[AlertConfig], file: str | None) -> list[Issue]:
        sources = [
            (alert.name, f"notify[{index}].{key}", text)
            for alert in alerts
            for index, target in enumerate(alert.notify)
            for key, text in (("subject", target.subject), ("template", target.template))
            if text
        ]
        if not sources:
            return []
        from sentinel.notifications.render import check_template

        issues = []
        for name, where, text in sources:
            problem = check_template(text)
            if problem:
                issues.append(Issue(file, name, where, f"template error: {problem}"))
        return issues


def register_config_secrets(database: DatabaseConfig, alerts: list[AlertConfig]) -> None:
    """Register every secret a config carries, so no later message can show it."""
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    with contextlib.suppress(ArgumentError):
        register_secret(make_url(database.url).password)
    register_secret(os.environ.get("SMTP_PASSWORD"))
    for alert in alerts:
        for channel in alert.notify:
            if channel.channel != "email":
                register_secret(channel.webhook_url)
            register_secret(channel.secret)
            for value in channel.headers.values():
                register_secret(value)


def load_config(path: str | os.PathLike[str], check_sql: bool = True) -> SentinelConfig:
    """Load, substitute and validate a file in one call: what every command starts with."""
    loader = ConfigLoader(path)
    data = loader.load()
    config = ConfigValidator(source=loader.path, check_sql=check_sql).validate_config(data)
    config.raw_text = loader.raw_text
    return config
