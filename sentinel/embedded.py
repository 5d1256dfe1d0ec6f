"""The embedded scheduler: with no broker, due runs execute in this process, one after another.

This is what makes ``sqlsentinel scheduler examples/alerts.yaml`` work on a laptop with nothing
else installed; the same claims make it safe to run next to a fleet or a second copy of itself.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable
from datetime import datetime

from sentinel.due import DueRun
from sentinel.models import utcnow
from sentinel.scheduling import ScheduleLoop
from sentinel.service import SentinelService
from sentinel.store.runs import recorded_slots
from sentinel.store.schema import ensure_schema

log = logging.getLogger("sentinel.scheduler")


def run_embedded(
    service: SentinelService, stop: threading.Event, clock: Callable[[], datetime] = utcnow
) -> ScheduleLoop:
    """Run the clock loop until ``stop`` is set; returns the loop (for tests)."""
    engine = service.state_engine
    ensure_schema(engine)
    service.remember_config()
    executor = service.executor()

    def submit(runs: list[DueRun]) -> None:
        for run in runs:
            if stop.is_set():
                return
            executor.execute_alert(
                run.alert, service.adapter, triggered_by="CRON", scheduled_for=run.slot
            )
        executor.deliver_pending(loop.config.alerts)

    def recorded(runs: list[DueRun]) -> set[tuple[str, datetime]]:
        return recorded_slots(engine, [(r.alert.name, r.slot) for r in runs])

    loop = ScheduleLoop(
        service.config.path or "", submit, clock=clock, recorded=recorded, config=service.config
    )
    log.info("embedded scheduler started: %d alerts, no broker", len(loop.due))
    loop.run(stop)
    return loop
