"""The clock loop shared by the embedded scheduler and the fleet's: due runs, catch-up, reloads.

What happens to a due run is the caller's ``submit``: run it here (embedded) or enqueue it (fleet).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable, Mapping
from datetime import datetime, timedelta

from sentinel import defaults, environment
from sentinel.config import SentinelConfig, load_config
from sentinel.errors import SQLSentinelError
from sentinel.memory import release_free_memory
from sentinel.models import utcnow
from sentinel.redact import redact
from sentinel.scheduling.due import DueRun, DueRuns, Schedulable, ScheduledAlert

log = logging.getLogger("sentinel.scheduler")

Submit = Callable[[list[DueRun]], None]


class ScheduleLoop:
    """Keeps every enabled alert's next slot and submits runs as they fall due."""

    def __init__(
        self,
        config_path: str,
        submit: Submit,
        *,
        clock: Callable[[], datetime] = utcnow,
        grace: timedelta | None = None,
        recorded: Callable[[list[DueRun]], set[tuple[str, datetime]]] | None = None,
        config: SentinelConfig | None = None,
        owns: Callable[[str], bool] | None = None,
        slim: bool = False,
    ):
        """``owns`` (by alert name) narrows the alerts scheduled here (a sharded fleet
        scheduler's shards); it is asked again at each ``start`` and reload. With ``slim`` the
        loop keeps only what scheduling reads of each alert (:class:`ScheduledAlert`), and
        ``config`` without its alerts: a process that only enqueues needs no more, and the whole
        alert is most of its memory."""
        if grace is None:
            grace = timedelta(seconds=environment.catch_up_grace_seconds())
        self.config_path = config_path
        self.submit = submit
        self.clock = clock
        #: How old a missed slot may be and still be caught up (default: the configured grace).
        self.grace = grace
        self.recorded = recorded
        self.owns = owns
        self.slim = slim
        self._keep(config or load_config(config_path))
        self._mtime = _mtime(config_path)
        self.last_tick: datetime = clock()
        self.due = DueRuns(self.scheduled(), self.last_tick)

    def _keep(self, config: SentinelConfig) -> None:
        alerts: list[Schedulable]
        if self.slim:
            alerts = [ScheduledAlert.of(alert) for alert in config.alerts]
            config = config.without_alerts()
        else:
            alerts = list(config.alerts)
        self.config = config
        self.alerts = alerts
        self._by_name: dict[str, Schedulable] | None = None

    def alerts_by_name(self) -> Mapping[str, Schedulable]:
        """Every alert of the current config (recovery looks runs up here)."""
        if self._by_name is None:
            self._by_name = {alert.name: alert for alert in self.alerts}
        return self._by_name

    def scheduled(self) -> list[Schedulable]:
        """The alerts this loop schedules."""
        if self.owns is None:
            return self.alerts
        return [alert for alert in self.alerts if self.owns(alert.name)]

    def start(self, now: datetime | None = None) -> list[DueRun]:
        """Begin at ``now``: catch up each alert's latest missed slot (within the grace window)."""
        now = now or self.clock()
        self.due = DueRuns(self.scheduled(), now)
        recent, stale = self.due.latest_slots(now, self.grace)
        done = self.recorded(recent + stale) if self.recorded else set()
        catch_up = [r for r in recent if (r.alert.name, r.slot) not in done]
        for run in stale:
            if (run.alert.name, run.slot) not in done:
                log.warning(
                    "skipped alert=%s scheduled_for=%s: missed by more than the %ss grace window",
                    run.alert.name,
                    run.slot.isoformat(),
                    int(self.grace.total_seconds()),
                )
        if catch_up:
            log.info("catching up %d missed runs", len(catch_up))
            self.submit(catch_up)
        self.last_tick = now
        return catch_up

    def tick(self, now: datetime | None = None) -> float:
        """Submit what is due; returns how long to sleep before the next tick (seconds)."""
        now = now or self.clock()
        self.reload_if_changed()
        due = self.due.pop_due(now)
        if due:
            self.submit(due)
        self.last_tick = now
        upcoming = self.due.next_fire()
        wait = (upcoming - self.clock()).total_seconds() if upcoming else 60.0
        return max(0.0, min(wait, defaults.SCHEDULER_MAX_SLEEP_SECONDS))

    def reload_if_changed(self) -> bool:
        """Pick up an edited config file; an invalid one is logged and the old one kept."""
        mtime = _mtime(self.config_path)
        if mtime == self._mtime:
            return False
        self._mtime = mtime
        try:
            config = load_config(self.config_path)
        except SQLSentinelError as exc:
            log.error(
                "config %s not reloaded, keeping the previous one: %s",
                self.config_path,
                redact(exc),
            )
            return False
        self._keep(config)
        if self.slim:
            del config  # and with it the whole alerts: their memory can go back
            release_free_memory()
        # Rebuild from the last tick, so a slot between that tick and now is not lost.
        self.due = DueRuns(self.scheduled(), self.last_tick)
        log.info("config %s reloaded: %d alerts scheduled", self.config_path, len(self.due))
        return True

    def run(self, stop: threading.Event) -> None:
        """Catch up, then tick until ``stop`` is set."""
        self.start()
        while not stop.is_set():
            stop.wait(self.tick())


def _mtime(path: str) -> float | None:
    try:
        return os.stat(path).st_mtime
    except OSError:
        return None
