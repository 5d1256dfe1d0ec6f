"""An operator's overrides of :mod:`sentinel.defaults`, read from ``SENTINEL_<NAME>`` variables.

Nothing reads them at import: each is read where it is used, when the object that uses it is built
(the executor, the deliverer, recovery, the scheduler loop, the broker) or when a function is
called without an explicit value. So a process, or a test, that sets one before it builds those
objects gets it, and importing a module never fails because of the environment.

A value that cannot be used is a :class:`~sentinel.errors.ConfigurationError` naming the variable:
the CLI prints it as one line (exit 2), as it does a bad configuration file.
"""

from __future__ import annotations

import math
import os
from typing import TypeVar

from sentinel import defaults
from sentinel.errors import ConfigurationError

#: What a setting can be: a count, seconds, or a comma-separated list of seconds.
Value = TypeVar("Value", int, float, tuple[float, ...])


def setting(name: str, default: Value) -> Value:
    """``SENTINEL_<name>`` parsed as ``default`` is typed, else ``default`` (unset or empty)."""
    variable = f"SENTINEL_{name}"
    raw = os.environ.get(variable, "").strip()
    if not raw:
        return default
    if isinstance(default, tuple):
        parts = raw.split(",")
        listed = tuple(s for s in map(_seconds, parts) if s is not None)
        if len(listed) == len(parts):
            return listed
        expected = "numbers of seconds (each at least 0) separated by commas"
    elif isinstance(default, int):
        count = _number(raw)
        if count is not None and count.is_integer() and count >= 1:
            return int(count)
        expected = "a whole number of at least 1"
    else:
        seconds = _seconds(raw)
        if seconds is not None:
            return seconds
        expected = "a number of seconds of at least 0"
    raise ConfigurationError(f"{variable} must be {expected}, not {raw!r}")


def stale_claim_grace_seconds() -> float:
    return setting("STALE_CLAIM_GRACE_SECONDS", defaults.STALE_CLAIM_GRACE_SECONDS)


def delivery_lease_seconds() -> float:
    return setting("DELIVERY_LEASE_SECONDS", defaults.DELIVERY_LEASE_SECONDS)


def delivery_max_rounds() -> int:
    return setting("DELIVERY_MAX_ROUNDS", defaults.DELIVERY_MAX_ROUNDS)


def delivery_round_backoff_seconds() -> tuple[float, ...]:
    return setting("DELIVERY_ROUND_BACKOFF_SECONDS", defaults.DELIVERY_ROUND_BACKOFF_SECONDS)


def delivery_initial_wait_seconds() -> float:
    return setting("DELIVERY_INITIAL_WAIT_SECONDS", defaults.DELIVERY_INITIAL_WAIT_SECONDS)


def catch_up_grace_seconds() -> float:
    return setting("CATCH_UP_GRACE_SECONDS", defaults.CATCH_UP_GRACE_SECONDS)


def max_lateness_seconds() -> float:
    """How long a due run may wait in the queue: the catch-up grace unless set on its own."""
    return setting("MAX_LATENESS_SECONDS", catch_up_grace_seconds())


def scheduler_shards() -> int:
    return setting("SCHEDULER_SHARDS", defaults.SCHEDULER_SHARDS)


def _seconds(text: str) -> float | None:
    seconds = _number(text)
    return seconds if seconds is not None and math.isfinite(seconds) and seconds >= 0 else None


def _number(text: str) -> float | None:
    try:
        return float(text)
    except ValueError:
        return None
