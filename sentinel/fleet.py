"""The seam between the library and a distributed engine (the ``workers`` package).

``sentinel`` never imports ``workers``: the fleet registers itself under the ``sqlsentinel.fleet``
entry point, and commands that need a broker (``scheduler`` with a broker, ``enqueue``, queue
depths in ``status``) find it here. With no broker configured everything runs in this process.
"""

from __future__ import annotations

import os
import threading
from importlib.metadata import entry_points
from typing import Protocol

from sentinel import defaults
from sentinel.errors import SQLSentinelError

ENTRY_POINT_GROUP = "sqlsentinel.fleet"


def broker_url() -> str | None:
    """``BROKER_URL``, else ``REDIS_URL`` (``redis://`` or ``amqp://``); ``None`` runs embedded."""
    return os.environ.get("BROKER_URL") or os.environ.get("REDIS_URL") or None


def namespace() -> str:
    """``SENTINEL_NAMESPACE``: prefixes every queue name and Redis key of one deployment."""
    return os.environ.get("SENTINEL_NAMESPACE") or defaults.NAMESPACE


class Fleet(Protocol):
    """What the CLI asks of the distributed engine."""

    def enqueue(self, config_path: str, alert_names: list[str], triggered_by: str) -> list[str]:
        """Send manual runs; returns the broker's message ids."""
        ...

    def queue_depths(self) -> dict[str, int]:
        """Messages waiting per queue."""
        ...

    def run_scheduler(
        self, config_path: str, stop: threading.Event, state_db_url: str | None = None
    ) -> None:
        """The clock process: blocks until ``stop`` is set (SIGTERM/SIGINT). ``state_db_url``
        is ``--state-db`` (else ``STATE_DB_URL``, else the config's database)."""
        ...


def load_fleet() -> Fleet | None:
    """The installed fleet when a broker is configured, else ``None``."""
    if broker_url() is None:
        return None
    found = entry_points(group=ENTRY_POINT_GROUP)
    if not found:
        raise SQLSentinelError(
            "a broker is configured (BROKER_URL/REDIS_URL) but the fleet is not installed"
        )
    try:
        factory = next(iter(found)).load()
        fleet: Fleet = factory()
    except ImportError as exc:
        raise SQLSentinelError(
            f"the fleet needs its extra: pip install 'sql-sentinel[fleet]' ({exc.name} is missing)"
        ) from None
    return fleet
