"""The Dramatiq broker, chosen from the environment, with middleware picked for alerting.

Dramatiq's defaults suit batch jobs, not alerts: 20 retries with back-off up to a week, a
10-minute time limit and a 10-minute shutdown. Here a run's time limit follows its alert's
timeout, only infrastructure errors are retried (a query error is an outcome, recorded once), a
due run that waited too long is recorded as skipped, and the worker shutdown (set in the Procfile)
fits Heroku's 30 seconds between SIGTERM and SIGKILL.
"""

from __future__ import annotations

import os
from typing import Any

import dramatiq
from dramatiq.middleware import CurrentMessage, Middleware, Retries, TimeLimit

from sentinel import environment
from sentinel.errors import SQLSentinelError, StateStoreError
from sentinel.fleet import broker_url, namespace
from workers.faults import broker_faults
from workers.middleware.alert_time_limit import AlertTimeLimit
from workers.middleware.connection_budget import ConnectionBudget
from workers.middleware.stale_runs import RecordStaleRuns

#: Retries of one message for infrastructure errors (state database or broker unreachable).
MAX_RETRIES = 5
MIN_BACKOFF_MS = 1_000
MAX_BACKOFF_MS = 30_000
#: Time limit of a message that is not an alert's run (each run's follows its alert's timeout).
DEFAULT_TIME_LIMIT_MS = 60_000


def is_infrastructure_error(retries: int, exc: BaseException) -> bool:
    """Retry what a later attempt may fix; everything else is already recorded as an outcome."""
    if retries >= MAX_RETRIES:
        return False
    if isinstance(exc, (StateStoreError, dramatiq.Retry)):
        return True
    if isinstance(exc, SQLSentinelError):
        return False
    from sentinel.store.engine import is_connection_fault

    return isinstance(exc, broker_faults()) or is_connection_fault(exc)


def middleware() -> list[Middleware]:
    # A due run still queued after this long is recorded as skipped, not run late
    # (``SENTINEL_MAX_LATENESS_SECONDS``; the same as the scheduler's catch-up grace by default).
    max_age_ms = int(environment.max_lateness_seconds() * 1000)
    chosen: list[Middleware] = [
        ConnectionBudget(),
        RecordStaleRuns(max_age=max_age_ms),
        AlertTimeLimit(),  # before TimeLimit, which reads the limit it sets
        TimeLimit(time_limit=DEFAULT_TIME_LIMIT_MS),
        CurrentMessage(),
        Retries(
            max_retries=MAX_RETRIES,
            min_backoff=MIN_BACKOFF_MS,
            max_backoff=MAX_BACKOFF_MS,
            retry_when=is_infrastructure_error,
        ),
    ]
    if os.environ.get("SENTINEL_METRICS", "on").lower() not in ("0", "off", "false", "no"):
        try:
            import prometheus_client  # noqa: F401 - Dramatiq's exporter needs it at run time
        except ImportError:
            pass
        else:
            # Dramatiq binds 0.0.0.0 by default; expose metrics on loopback unless told otherwise.
            os.environ.setdefault("dramatiq_prom_host", "127.0.0.1")
            from dramatiq.middleware.prometheus import Prometheus

            chosen.append(Prometheus())
    return chosen


def create_broker(url: str | None = None, ns: str | None = None) -> dramatiq.Broker:
    """A broker for ``url`` (default ``BROKER_URL``/``REDIS_URL``): Redis, or RabbitMQ for amqp."""
    url = url or broker_url()
    ns = ns or namespace()
    if not url:
        raise SQLSentinelError("no broker configured: set REDIS_URL or BROKER_URL")
    kwargs: dict[str, Any] = {"url": url, "middleware": middleware()}
    if url.startswith(("amqp://", "amqps://")):
        from dramatiq.brokers.rabbitmq import RabbitmqBroker

        return RabbitmqBroker(**kwargs)
    from dramatiq.brokers.redis import RedisBroker

    return RedisBroker(namespace=ns, **kwargs)  # type: ignore[no-untyped-call]


_configured: dramatiq.Broker | None = None


def configured_broker() -> dramatiq.Broker:
    """The process's broker, made once from the environment and set as Dramatiq's global one.

    A broker set before the actors are declared (Dramatiq's ``StubBroker`` in unit tests, the way
    dramatiq's own suite does it) is kept instead."""
    global _configured  # noqa: PLW0603 - one broker per process is Dramatiq's own model
    if _configured is None:
        from dramatiq import broker as dramatiq_broker

        existing = dramatiq_broker.global_broker
        _configured = existing if existing is not None else create_broker()
        dramatiq.set_broker(_configured)
    return _configured


def queue_depths(broker: dramatiq.Broker, queues: list[str]) -> dict[str, int]:
    """Messages waiting in each queue (not counting those a worker holds)."""
    depths = {}
    for queue in queues:
        client = getattr(broker, "client", None)
        if client is not None:  # Redis: the queue is a list under the namespace
            depths[queue] = int(client.llen(f"{broker.namespace}:{queue}"))  # type: ignore[attr-defined]
        else:
            depths[queue] = int(broker.get_queue_message_counts(queue)[0])  # type: ignore[attr-defined]
    return depths
