"""Every Redis key and queue name the fleet uses, in one place, each under the namespace.

``SENTINEL_NAMESPACE`` (default ``sqlsentinel``) prefixes all of them, so two deployments can share
one Redis. Dramatiq's own keys live under the same prefix (the broker's ``namespace``).
"""

from __future__ import annotations

from datetime import datetime

#: Queue of ``execute-alert`` messages (``{ns}.alerts``).
ALERTS = "alerts"
#: Queue of ``deliver-notification`` messages (``{ns}.notifications``).
NOTIFICATIONS = "notifications"


def queue_name(namespace: str, queue: str) -> str:
    return f"{namespace}.{queue}"


def lease(namespace: str) -> str:
    """String: the active scheduler's lease, ``{epoch}:{owner}``, with a TTL (``SET NX PX``)."""
    return f"{namespace}:scheduler:lease"


def epoch(namespace: str) -> str:
    """Counter: incremented by each scheduler that takes the lease (its fencing token)."""
    return f"{namespace}:scheduler:epoch"


def slot(namespace: str, alert: str, scheduled_for: datetime) -> str:
    """String with TTL: set (``NX``) when ``(alert, slot)`` is enqueued, so it is enqueued once."""
    return f"{namespace}:slot:{alert}:{scheduled_for.isoformat()}"
