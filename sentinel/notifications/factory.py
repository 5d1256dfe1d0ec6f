"""Building the service for a channel from arguments or the ``SMTP_*`` environment.

Deployments configure SMTP through the environment (Heroku config vars, Kubernetes secrets), while
tests and embedding code pass arguments; an argument always wins over the variable. Problems are
found here, before anything is sent, and said in words an operator can act on, so ``validate`` can
warn about an email alert that could never be delivered.
"""

from __future__ import annotations

import os
import threading
from typing import TYPE_CHECKING

from sentinel import defaults
from sentinel.enums import Channel
from sentinel.errors import NotificationError
from sentinel.notifications.retry import RetryPolicy
from sentinel.redact import register_secret

if TYPE_CHECKING:
    from sentinel.notifications.base import NotificationService

DEFAULT_SMTP_PORT = 587
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})


def _env(name: str) -> str | None:
    value = os.environ.get(name, "").strip()
    return value or None


class NotificationFactory:
    """Creates (once per channel) the service that delivers to it."""

    def __init__(
        self,
        smtp_host: str | None = None,
        smtp_port: int | None = None,
        smtp_username: str | None = None,
        smtp_password: str | None = None,
        smtp_use_tls: bool | None = None,
        from_address: str | None = None,
        retry_policy: RetryPolicy | None = None,
        http_timeout: float = defaults.NOTIFY_TIMEOUT_SECONDS,
    ) -> None:
        self._problems: list[str] = []
        self.smtp_host = smtp_host or _env("SMTP_HOST")
        self.smtp_port = smtp_port if smtp_port is not None else self._env_port()
        self.smtp_username = smtp_username or _env("SMTP_USERNAME")
        self._smtp_password = smtp_password or os.environ.get("SMTP_PASSWORD") or None
        self.smtp_use_tls = smtp_use_tls if smtp_use_tls is not None else self._env_use_tls()
        self.from_address = from_address or _env("SMTP_FROM_ADDRESS")
        self.retry_policy = retry_policy or RetryPolicy()
        self.http_timeout = http_timeout
        register_secret(self._smtp_password)
        self._services: dict[str, NotificationService] = {}
        self._lock = threading.Lock()

    def _env_port(self) -> int:
        raw = _env("SMTP_PORT")
        if raw is None:
            return DEFAULT_SMTP_PORT
        if raw.isdigit() and 0 < int(raw) < 65536:
            return int(raw)
        self._problems.append(f"email channel: SMTP_PORT must be a port number, got {raw!r}")
        return DEFAULT_SMTP_PORT

    def _env_use_tls(self) -> bool:
        raw = (_env("SMTP_USE_TLS") or "true").lower()
        if raw in _TRUE or raw in _FALSE:
            return raw in _TRUE
        self._problems.append(f"email channel: SMTP_USE_TLS must be true or false, got {raw!r}")
        return True

    def missing_settings(self, channel: str) -> str | None:
        """Why ``channel`` cannot deliver with these settings, or None when it can."""
        if channel not in set(Channel):
            return f"unknown notification channel {channel!r} (use email, slack or webhook)"
        if channel != Channel.EMAIL:
            return None
        if not self.smtp_host:
            return "email channel: no SMTP host configured (set SMTP_HOST)"
        return self._problems[0] if self._problems else None

    def create_service(self, channel: str) -> NotificationService:
        """The service for ``channel``; raises a non-retryable NotificationError if it can't be."""
        problem = self.missing_settings(channel)
        if problem:
            raise NotificationError(problem, retryable=False)
        with self._lock:
            service = self._services.get(channel)
            if service is None:
                service = self._services[channel] = self._build(channel)
            return service

    def _build(self, channel: str) -> NotificationService:
        # Imported here so that loading the package never pays for smtplib, httpx or Jinja2.
        if channel == Channel.EMAIL:
            from sentinel.notifications.email import EmailNotificationService

            assert self.smtp_host is not None  # checked by missing_settings
            return EmailNotificationService(
                smtp_host=self.smtp_host,
                smtp_port=self.smtp_port,
                smtp_username=self.smtp_username,
                smtp_password=self._smtp_password,
                use_tls=self.smtp_use_tls,
                from_address=self.from_address,
                retry_policy=self.retry_policy,
            )
        if channel == Channel.SLACK:
            from sentinel.notifications.slack import SlackNotificationService

            return SlackNotificationService(self.http_timeout, self.retry_policy)
        from sentinel.notifications.webhook import WebhookNotificationService

        return WebhookNotificationService(self.http_timeout, self.retry_policy)
