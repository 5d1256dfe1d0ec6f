"""The one retry policy every channel delivers under.

Channels make a single attempt and say, through :class:`NotificationError`, whether trying again can
help; this module alone decides how often and how long to wait. Keeping the loop in one place means
a 429's ``Retry-After`` is honoured the same way for Slack and webhooks, and a permanent failure
(a 404, a bad SMTP password) is never hammered four times.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, TypeVar

from sentinel import defaults, environment
from sentinel.errors import NotificationError

if TYPE_CHECKING:
    from tenacity import RetryCallState

T = TypeVar("T")


@dataclass(frozen=True)
class RetryPolicy:
    """How hard one delivery tries before it is reported as failed.

    ``attempts`` counts the first try. Waits grow exponentially from ``initial_wait`` with full
    jitter (so many workers retrying one endpoint spread out) up to ``max_wait``; a server that
    says how long to wait (HTTP 429/503 ``Retry-After``) is obeyed up to ``max_retry_after``.
    A policy made without ``initial_wait`` has the configured one
    (``SENTINEL_DELIVERY_INITIAL_WAIT_SECONDS``).
    """

    attempts: int = defaults.DELIVERY_ATTEMPTS
    initial_wait: float = field(default_factory=environment.delivery_initial_wait_seconds)
    max_wait: float = defaults.DELIVERY_MAX_WAIT_SECONDS
    max_retry_after: float = 120.0


def _is_retryable(exc: BaseException) -> bool:
    return isinstance(exc, NotificationError) and exc.retryable


def call_with_retry(attempt: Callable[[], T], policy: RetryPolicy) -> tuple[T, int]:
    """Run ``attempt`` until it succeeds, fails permanently or runs out of attempts.

    Returns what ``attempt`` returned and how many attempts it took, so a success after retries is
    recorded as the four tries it was. Only a retryable :class:`NotificationError` is retried;
    anything else propagates at once. The error that ends the delivery carries the count in its
    ``attempts`` and, after retries, in front of its message, so history shows
    "after 4 attempts: HTTP 503" rather than a bare status that hides the retries.
    """
    # Imported here: the CLI loads this module on every start but rarely sends anything.
    from tenacity import (
        Retrying,
        retry_if_exception,
        stop_after_attempt,
        wait_random_exponential,
    )

    backoff = wait_random_exponential(multiplier=policy.initial_wait, max=policy.max_wait)

    def wait(state: RetryCallState) -> float:
        exc = state.outcome.exception() if state.outcome is not None else None
        if isinstance(exc, NotificationError) and exc.retry_after is not None:
            return min(max(exc.retry_after, 0.0), policy.max_retry_after)
        return float(backoff(state))

    made = 0

    def counted() -> T:
        nonlocal made
        made += 1
        return attempt()

    retrying = Retrying(
        stop=stop_after_attempt(max(1, policy.attempts)),
        wait=wait,
        retry=retry_if_exception(_is_retryable),
        reraise=True,
    )
    try:
        result = retrying(counted)
    except NotificationError as exc:
        if made <= 1:
            exc.attempts = made
            raise
        raise NotificationError(
            f"after {made} attempts: {exc}",
            retryable=exc.retryable,
            retry_after=exc.retry_after,
            attempts=made,
        ) from exc
    return result, made
