"""One HTTP POST with the failure classification Slack and webhooks share.

Whether a failed POST is worth retrying is the same question for both channels: the network, a
timeout, 408, 429 and 5xx may clear up; any other 4xx (a revoked Slack hook, a bad payload) will
not. Messages show only ``scheme://host:port`` of the URL, because webhook paths and query strings
are credentials (Slack's ``/services/T…/B…/token`` in particular).
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from functools import cache

import httpx

from sentinel import defaults
from sentinel.errors import NotificationError
from sentinel.notifications.base import NotificationService
from sentinel.notifications.retry import RetryPolicy
from sentinel.redact import redact, safe_url

_RETRYABLE_STATUS = frozenset({408, 425, 429})
_MAX_BODY_IN_MESSAGE = 200


@cache
def user_agent() -> str:
    """``sql-sentinel/<version>``, so receivers can tell which release is calling them."""
    from importlib.metadata import PackageNotFoundError, version

    try:
        return f"sql-sentinel/{version('sql-sentinel')}"
    except PackageNotFoundError:  # running from a source tree that was never installed
        return "sql-sentinel/unknown"


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a ``Retry-After`` header (HTTP-date); None if absent."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def _describe(exc: Exception, url: str, where: str) -> str:
    # Transport errors rarely quote the URL, but when one does it must not carry the token along.
    text = str(exc).replace(url, where) or type(exc).__name__
    return redact(text)


def post(
    url: str, body: bytes, headers: Mapping[str, str], *, timeout: float, channel: str
) -> httpx.Response:
    """POST ``body`` once; return the 2xx response or raise a classified NotificationError."""
    where = safe_url(url)
    prefix = f"{channel} {where}"
    try:
        # A fresh client per attempt: nothing to close or leak between deliveries, and a retry
        # never reuses a connection the previous failure may have left half-broken.
        with httpx.Client(timeout=timeout, follow_redirects=False) as client:
            response = client.post(url, content=body, headers=dict(headers))
    except httpx.TimeoutException:
        raise NotificationError(f"{prefix}: timed out after {timeout:g}s", retryable=True) from None
    except (httpx.InvalidURL, httpx.UnsupportedProtocol) as exc:
        # ``from None``: the chained httpx error would print the full URL in a traceback.
        raise NotificationError(f"{prefix}: invalid URL: {_describe(exc, url, where)}") from None
    except httpx.TransportError as exc:
        message = f"{prefix}: {_describe(exc, url, where)}"
        raise NotificationError(message, retryable=True) from None
    return _check_status(response, prefix, url)


def _check_status(response: httpx.Response, prefix: str, url: str) -> httpx.Response:
    status = response.status_code
    if 200 <= status < 300:
        return response
    snippet = " ".join(response.text[:_MAX_BODY_IN_MESSAGE].replace(url, "").split())
    message = f"{prefix}: HTTP {status} {response.reason_phrase}".rstrip()
    if 300 <= status < 400:
        message += " (redirects are not followed; use the final URL)"
    elif snippet:
        message += f": {snippet}"
    retryable = status >= 500 or status in _RETRYABLE_STATUS
    retry_after = parse_retry_after(response.headers.get("Retry-After")) if retryable else None
    raise NotificationError(redact(message), retryable=retryable, retry_after=retry_after)


class HTTPNotificationService(NotificationService):
    """A channel that POSTs to an HTTP endpoint, each request bounded by ``timeout``."""

    def __init__(
        self,
        timeout: float = defaults.NOTIFY_TIMEOUT_SECONDS,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(retry_policy)
        self.timeout = timeout
