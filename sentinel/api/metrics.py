"""``GET /metrics``: Prometheus text, computed from the state database at scrape time."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Depends
from fastapi.responses import Response

from sentinel.api import views
from sentinel.api.context import ApiContext, context, require_read

router = APIRouter()


@router.get(
    "/metrics",
    dependencies=[Depends(require_read)],
    tags=["operations"],
    response_class=Response,
    responses={200: {"content": {"text/plain": {"schema": {"type": "string"}}}}},
)
def metrics(ctx: ApiContext = Depends(context)) -> Response:  # noqa: B008 - FastAPI's idiom
    from prometheus_client import CollectorRegistry, Gauge, generate_latest
    from prometheus_client.exposition import CONTENT_TYPE_LATEST

    from sentinel.errors import StateStoreError
    from sentinel.health import check_dependencies
    from sentinel.outages import outages

    health = check_dependencies(ctx.deployment, outages)
    registry = CollectorRegistry()
    up = Gauge(
        "sqlsentinel_dependency_up",
        "Whether a dependency answers (1) or not (0), as /ready reports it",
        ["dependency"],
        registry=registry,
    )
    for check in health.checks:
        up.labels(check.name).set(1 if check.ok else 0)
    depth = Gauge("sqlsentinel_queue_depth", "Messages waiting", ["queue"], registry=registry)
    for queue, count in health.queue_depths.items():
        depth.labels(queue).set(count)
    try:
        now = ctx.clock()
        items = ctx.alert_list.summaries(now)
        data = views.stats(ctx.deployment, items, now, health.queue_depths)
    except StateStoreError:  # the outage is the one figure left to report
        return Response(generate_latest(registry), media_type=CONTENT_TYPE_LATEST)
    alerts = Gauge("sqlsentinel_alerts", "Alerts by state", ["state"], registry=registry)
    for state, count in data.by_state.items():
        alerts.labels(state).set(count)
    runs = Gauge(
        "sqlsentinel_executions", "Executions in the window", ["window"], registry=registry
    )
    runs.labels("1h").set(data.executions_last_hour)
    runs.labels("1d").set(data.executions_last_day)
    Gauge("sqlsentinel_failure_rate_percent", "Share of runs that fired, last day",
          registry=registry).set(data.failure_rate_last_day)  # fmt: skip
    notes = Gauge(
        "sqlsentinel_notifications",
        "Notifications by status",
        ["window", "status"],
        registry=registry,
    )
    for window, counts in (
        ("1h", data.notifications_last_hour),
        ("1d", data.notifications_last_day),
    ):
        for status, count in counts.items():
            notes.labels(window, status).set(count)
    body: Any = generate_latest(registry)
    return Response(body, media_type=CONTENT_TYPE_LATEST)
