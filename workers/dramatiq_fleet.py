"""The fleet on Dramatiq, as the CLI sees it (the ``sqlsentinel.fleet`` entry point): enqueue, queue
depths, the clock."""

from __future__ import annotations

import threading
from typing import Any

import dramatiq
from dramatiq.brokers.redis import RedisBroker

from sentinel.fleet import namespace
from workers import keys
from workers.actors import execute_alert
from workers.broker import queue_depths
from workers.pipelined_enqueue import PipelinedEnqueue


class DramatiqFleet:
    def __init__(self) -> None:
        self.broker = dramatiq.get_broker()
        self.namespace = namespace()

    def enqueue(self, config_path: str, alert_names: list[str], triggered_by: str) -> list[str]:
        ids = []
        for name in alert_names:
            message = execute_alert.send_with_options(
                kwargs={"alert_name": name, "triggered_by": triggered_by}
            )
            ids.append(message.message_id)
        return ids

    def queue_depths(self) -> dict[str, int]:
        queues = [keys.queue_name(self.namespace, q) for q in (keys.ALERTS, keys.NOTIFICATIONS)]
        return queue_depths(self.broker, queues)

    def send_run(
        self, alert_name: str, scheduled_for: str | None, triggered_by: str, options: dict[str, Any]
    ) -> str:
        """One ``execute-alert`` message; ``options["message_id"]`` re-sends a manual run under
        its own id, so that its claim recognises it."""
        options = dict(options)
        message_id = options.pop("message_id", None)
        kwargs = {
            "alert_name": alert_name,
            "scheduled_for": scheduled_for,
            "triggered_by": triggered_by,
        }
        message = execute_alert.message_with_options(kwargs=kwargs, **options)
        if message_id is not None:
            message = message.copy(message_id=message_id)
        return str(self.broker.enqueue(message).message_id)

    def run_scheduler(
        self, config_path: str, stop: threading.Event, state_db_url: str | None = None
    ) -> None:
        from workers.scheduler import FleetScheduler

        client = getattr(self.broker, "client", None)
        if client is None:
            # With RabbitMQ as the broker, the lease and the idempotency keys still need Redis.
            import os

            import redis

            from sentinel.fleet import broker_url

            client = redis.Redis.from_url(os.environ.get("REDIS_URL") or broker_url() or "")
        FleetScheduler(
            config_path,
            client,
            self.send_run,
            self.namespace,
            state_db_url=state_db_url,
            pipeline=self.pipelined_enqueue(),
        ).run(stop)

    def pipelined_enqueue(self) -> PipelinedEnqueue | None:
        """On Redis, scheduled runs are built ahead and pushed in pipelined round trips; on
        RabbitMQ (no such script) each is sent on its own."""
        if isinstance(self.broker, RedisBroker):
            return PipelinedEnqueue(self.broker, execute_alert)
        return None


def create_fleet() -> DramatiqFleet:
    import workers.app  # noqa: F401 - sets the broker and declares the actors

    return DramatiqFleet()
