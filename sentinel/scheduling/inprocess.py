"""The embedded scheduler: with no broker, due runs execute in this process, one after another.

This is what makes ``sqlsentinel scheduler examples/alerts.yaml`` work on a laptop with nothing
else installed; the same claims make it safe to run next to a fleet or a second copy of itself.

An outage of the state database does not end it: a run that cannot be claimed or recorded is held
and tried again at each tick until the database is back (one log line for the outage), and held
runs whose slot has fallen out of the catch-up window are given up with a log line, as missed
slots are. A run of this process's that was killed mid-query is found by :class:`RunRecovery`
when its deadline passes, and run again.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime

from sentinel import defaults
from sentinel.deployment import Deployment
from sentinel.errors import StateStoreError
from sentinel.models import utcnow
from sentinel.outages import Dependency, outages
from sentinel.recovery import RunRecovery
from sentinel.scheduling.due import DueRun
from sentinel.scheduling.loop import ScheduleLoop
from sentinel.store.runs import recorded_slots
from sentinel.store.schema import ensure_schema

log = logging.getLogger("sentinel.scheduler")


class EmbeddedScheduler:
    """The clock loop, with each due run executed here."""

    def __init__(
        self,
        deployment: Deployment,
        stop: threading.Event,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.deployment = deployment
        self.stop = stop
        self.clock = clock
        self.executor = deployment.executor()
        self.held: list[DueRun] = []
        self.loop = ScheduleLoop(
            deployment.config.path or "",
            self.submit,
            clock=clock,
            recorded=self.recorded,
            config=deployment.config,
        )
        self.recovery = RunRecovery(
            deployment.state_engine,
            lambda: self.loop.config.alerts_by_name(),  # noqa: PLW0108 - the config is reloaded
            lambda: self.loop.config.database.timeout,
            resend_messages=False,
        )
        self._prepared = False
        self._swept_at = 0.0

    def submit(self, runs: list[DueRun]) -> None:
        """Run each due run; from the first the state database refuses, hold the rest."""
        pending, self.held = self.held + runs, []
        oldest = self.clock() - self.loop.grace
        for index, run in enumerate(pending):
            if self.stop.is_set():
                return
            if run.slot < oldest:
                log.warning(
                    "skipped alert=%s scheduled_for=%s: the state database was unavailable until "
                    "the slot was past the catch-up window",
                    run.alert.name,
                    run.slot.isoformat(),
                )
                continue
            # The loop schedules what it read of the alert; the run is of the whole alert, as
            # the current config has it.
            alert = self.loop.config.alerts_by_name().get(run.alert.name)
            if alert is None:
                continue  # left the config since it fell due
            try:
                self.executor.execute_alert(
                    alert, self.deployment.adapter, triggered_by="CRON", scheduled_for=run.slot
                )
            except StateStoreError as exc:
                outages.failed(Dependency.STATE_DB, exc)
                self.held = [r for r in pending[index:] if r.slot >= oldest]
                return
            except Exception:  # a bug in one run must not stop the clock for every alert
                log.exception("run of alert=%s failed unexpectedly", run.alert.name)
                continue
            outages.ok(Dependency.STATE_DB)

    def recorded(self, runs: list[DueRun]) -> set[tuple[str, datetime]]:
        try:
            self.prepare()
            return recorded_slots(
                self.deployment.state_engine, [(r.alert.name, r.slot) for r in runs]
            )
        except StateStoreError as exc:
            outages.failed(Dependency.STATE_DB, exc)
            return set()  # run them all: a slot that already ran is found by its claim

    def prepare(self) -> None:
        if not self._prepared:
            ensure_schema(self.deployment.state_engine)
            self.deployment.remember_config()
            self._prepared = True

    def sweep(self) -> None:
        """Run again what the state database says is owed; retry notifications left pending."""
        try:
            self.prepare()
            owed = self.recovery.owed(self.clock())
        except StateStoreError as exc:
            outages.failed(Dependency.STATE_DB, exc)
            return
        for run in owed:
            log.warning(
                "running again alert=%s scheduled_for=%s: %s",
                run.alert.name,
                run.scheduled_for.isoformat() if run.scheduled_for else "-",
                run.reason,
            )
            if run.scheduled_for is not None:
                self.submit([DueRun(run.alert, run.scheduled_for)])
        try:
            self.executor.deliver_pending(self.loop.config.alerts)
        except StateStoreError as exc:
            outages.failed(Dependency.STATE_DB, exc)

    def run(self) -> ScheduleLoop:
        self.loop.start()
        while not self.stop.is_set():
            wait = self.loop.tick()
            if self.held:
                self.submit([])
            if time.monotonic() - self._swept_at >= defaults.SWEEP_INTERVAL_SECONDS:
                self._swept_at = time.monotonic()
                self.sweep()
            self.stop.wait(min(wait, defaults.SCHEDULER_MAX_SLEEP_SECONDS))
        return self.loop


def run_embedded(
    deployment: Deployment, stop: threading.Event, clock: Callable[[], datetime] = utcnow
) -> ScheduleLoop:
    """Run the clock loop until ``stop`` is set; returns the loop (for tests)."""
    scheduler = EmbeddedScheduler(deployment, stop, clock)
    log.info("embedded scheduler started: %d alerts, no broker", len(scheduler.loop.due))
    return scheduler.run()


__all__ = ["EmbeddedScheduler", "run_embedded"]
