"""The clock loop shared by the embedded scheduler and the fleet's: due runs, catch-up, reloads.

What happens to a due run is the caller's ``submit``: run it here (embedded) or enqueue it (fleet).
"""

from __future__ import annotations

import logging
import os
import threading
from collections.abc import Callable
from datetime import datetime, timedelta

from sentinel import defaults, environment
from sentinel.config import AlertConfig, SentinelConfig, load_config
from sentinel.errors import SQLSentinelError
from sentinel.models import utcnow
from sentinel.redact import redact
from sentinel.scheduling.due import DueRun, DueRuns

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
        owns: Callable[[AlertConfig], bool] | None = None,
    ):
        """``owns`` narrows the alerts scheduled here (a sharded fleet scheduler's shards); it
        is asked again at each ``start`` and reload."""
        if grace is None:
            grace = timedelta(seconds=environment.catch_up_grace_seconds())
        self.config_path = config_path
        self.submit = submit
        self.clock = clock
        #: How old a missed slot may be and still be caught up (default: the configured grace).
        self.grace = grace
        self.recorded = recorded
        self.owns = owns
        self.config = config or load_config(config_path)
        self._mtime = _mtime(config_path)
        self.last_tick: datetime = clock()
        self.due = DueRuns(self.scheduled(self.config), self.last_tick)

    def scheduled(self, config: SentinelConfig) -> list[AlertConfig]:
        """The alerts of ``config`` this loop schedules."""
        if self.owns is None:
            return config.alerts
        return [alert for alert in config.alerts if self.owns(alert)]

    def start(self, now: datetime | None = None) -> list[DueRun]:
        """Begin at ``now``: catch up each alert's latest missed slot (within the grace window)."""
        now = now or self.clock()
        self.due = DueRuns(self.scheduled(self.config), now)
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
        self.config = config
        # Rebuild from the last tick, so a slot between that tick and now is not lost.
        self.due = DueRuns(self.scheduled(config), self.last_tick)
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
