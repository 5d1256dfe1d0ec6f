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


def lease(namespace: str, shard: int | None = None) -> str:
    """String: the active scheduler's lease, ``{epoch}:{owner}``, with a TTL (``SET NX PX``).
    With several shards, one per shard (``…:lease:{shard}``); unsharded, the key is unchanged."""
    if shard is None:
        return f"{namespace}:scheduler:lease"
    return f"{namespace}:scheduler:lease:{shard}"


def epoch(namespace: str, shard: int | None = None) -> str:
    """Counter: incremented by each scheduler that takes the lease (its fencing token)."""
    if shard is None:
        return f"{namespace}:scheduler:epoch"
    return f"{namespace}:scheduler:epoch:{shard}"


def replicas(namespace: str) -> str:
    """Sorted set: each scheduler replica, scored by when its heartbeat expires (Redis time,
    ms), so a replica knows how many share the shards."""
    return f"{namespace}:scheduler:replicas"


def slot(namespace: str, alert: str, scheduled_for: datetime) -> str:
    """String with TTL: set (``NX``) when ``(alert, slot)`` is enqueued, so it is enqueued once."""
    return f"{namespace}:slot:{alert}:{scheduled_for.isoformat()}"
