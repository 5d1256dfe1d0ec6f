"""The one error tree of SQL Sentinel.

Every error the library raises on purpose derives from :class:`SQLSentinelError`, so a caller can
catch "any Sentinel error" in one place; the CLI maps each class to a one-line message and an exit
code through :attr:`SQLSentinelError.exit_code` instead of a table of its own.
"""

from __future__ import annotations

from dataclasses import dataclass


class SQLSentinelError(Exception):
    """Base of every error SQL Sentinel raises on purpose."""

    #: Process exit code the CLI uses when this error ends a command.
    exit_code: int = 1


class ConfigurationError(SQLSentinelError):
    """The configuration file cannot be read: missing, malformed YAML, undefined ${VAR}."""

    exit_code = 2


@dataclass(frozen=True)
class Issue:
    """One problem found in a configuration file, located as precisely as it can be."""

    file: str | None
    alert: str | None
    field: str | None
    message: str
    severity: str = "error"  # "error" or "warning"

    def __str__(self) -> str:
        where = [self.file or "<config>"]
        if self.alert:
            where.append(f"alert '{self.alert}'")
        if self.field:
            where.append(self.field)
        prefix = "warning: " if self.severity == "warning" else ""
        return f"{prefix}{': '.join(where)}: {self.message}"


class ValidationError(SQLSentinelError):
    """The configuration was read but breaks the rules; ``issues`` lists every problem at once."""

    exit_code = 2

    def __init__(self, issues: list[Issue]) -> None:
        self.issues = [i for i in issues if i.severity == "error"]
        self.warnings = [i for i in issues if i.severity == "warning"]
        super().__init__("\n".join(str(i) for i in self.issues) or "invalid configuration")


class UsageError(SQLSentinelError):
    """The command was asked for something that does not exist (an unknown alert name, say)."""

    exit_code = 2


class UnsafeQueryError(ValidationError):
    """An alert query is not a single read-only statement; raised before it reaches a database."""

    def __init__(self, message: str, *, alert: str | None = None, file: str | None = None) -> None:
        self.reason = message
        super().__init__([Issue(file=file, alert=alert, field="query", message=message)])


class ExecutionError(SQLSentinelError):
    """A query could not run, or its result broke the result contract."""


class QueryTimeoutError(ExecutionError):
    """The alert query ran longer than its timeout and was cancelled by the database."""


class DatabaseUnavailableError(ExecutionError):
    """A database (the data one or the state one) could not be reached or refused the login."""


class ResultContractError(ExecutionError):
    """The query ran but returned no row, no ``status`` column, or a status other than ALERT/OK."""


class NoDataError(ResultContractError):
    """The query returned no row: handled as ``on_no_data`` says (an error by default)."""


class StateStoreError(SQLSentinelError):
    """The state database could not be read or written (not reachable, not migrated, locked)."""

    #: The database chose this transaction as a deadlock victim (or a lock wait timed out): it
    #: was rolled back whole, and running it again is safe.
    deadlock: bool = False


class NotificationError(SQLSentinelError):
    """A notification could not be delivered. Never fails a run: it is recorded instead."""

    #: Whether trying again later may succeed (network error, 5xx, 429) or not (4xx, bad config).
    retryable: bool = False
    #: How many delivery attempts were made before giving up: one for a single try, what
    #: :func:`~sentinel.notifications.retry.call_with_retry` counted after retries, none when
    #: nothing was sent. The outbox adds it to the row's ``attempts``.
    attempts: int = 1

    def __init__(
        self,
        message: str,
        *,
        retryable: bool = False,
        retry_after: float | None = None,
        attempts: int = 1,
    ):
        super().__init__(message)
        self.retryable = retryable
        self.retry_after = retry_after
        self.attempts = attempts


__all__ = [
    "ConfigurationError",
    "DatabaseUnavailableError",
    "ExecutionError",
    "Issue",
    "NoDataError",
    "NotificationError",
    "QueryTimeoutError",
    "ResultContractError",
    "SQLSentinelError",
    "StateStoreError",
    "UnsafeQueryError",
    "UsageError",
    "ValidationError",
]
