"""Which alert runs are due: a priority queue of schedules, each shared by all its alerts.

The scheduler's cost per tick grows with the number of due runs, not with the number of alerts:
the heap holds one entry per distinct ``(cron, timezone)``, and popping it yields every alert of
that schedule at once.
"""

from __future__ import annotations

import heapq
import itertools
import sys
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Protocol

from sentinel.scheduling.cron import Schedule, schedule_for


class Schedulable(Protocol):
    """What scheduling and recovery read of an alert: an ``AlertConfig`` has it, and so does
    the much smaller :class:`ScheduledAlert` the fleet's scheduler keeps."""

    @property
    def name(self) -> str: ...
    @property
    def schedule(self) -> str: ...
    @property
    def timezone(self) -> str: ...
    @property
    def enabled(self) -> bool: ...
    @property
    def timeout(self) -> float | None: ...


@dataclass(frozen=True, slots=True)
class ScheduledAlert:
    """An alert as the fleet's scheduler holds it: a tenth of an ``AlertConfig``'s memory,
    which with 100,000 alerts is most of the process. The workers load the whole alert."""

    name: str
    schedule: str
    timezone: str
    enabled: bool
    timeout: float | None

    @classmethod
    def of(cls, alert: Schedulable) -> ScheduledAlert:
        # Its own copy of the name, and the few distinct schedules and zones shared: a string
        # kept from the loaded file would keep the memory around it from being returned.
        name = alert.name.encode().decode()
        schedule, timezone = sys.intern(alert.schedule), sys.intern(alert.timezone)
        return cls(name, schedule, timezone, alert.enabled, alert.timeout)


@dataclass(frozen=True, slots=True)
class DueRun:
    """One alert's run for one cron slot (naive UTC)."""

    alert: Schedulable
    slot: datetime


class DueRuns:
    """The next fire time of every enabled alert, grouped by schedule."""

    def __init__(self, alerts: Iterable[Schedulable], now: datetime):
        self.groups: dict[Schedule, list[Schedulable]] = {}
        for alert in alerts:
            if alert.enabled:
                self.groups.setdefault(schedule_for(alert.schedule, alert.timezone), []).append(
                    alert
                )
        self._order = itertools.count()
        self._heap: list[tuple[datetime, int, Schedule]] = [
            (schedule.next_after(now), next(self._order), schedule) for schedule in self.groups
        ]
        heapq.heapify(self._heap)
        #: Runs built ahead by ``runs_at``, handed out by ``pop_due`` (not built twice at the
        #: boundary, where 100,000 of them cost a tenth of a second).
        self._ahead: dict[tuple[Schedule, datetime], list[DueRun]] = {}

    def __len__(self) -> int:
        return sum(len(alerts) for alerts in self.groups.values())

    def next_fire(self) -> datetime | None:
        return self._heap[0][0] if self._heap else None

    def runs_at(self, slot: datetime) -> list[DueRun]:
        """The runs of every schedule whose next fire is ``slot``, without popping them (the
        fleet scheduler builds their messages ahead of the boundary)."""
        runs: list[DueRun] = []
        for fire, _, schedule in sorted(self._heap):
            if fire == slot:
                built = self._ahead.get((schedule, slot))
                if built is None:
                    built = [DueRun(alert, slot) for alert in self.groups[schedule]]
                    self._ahead[(schedule, slot)] = built
                runs.extend(built)
        return runs

    def pop_due(self, now: datetime) -> list[DueRun]:
        """Every run whose slot is at or before ``now``; each schedule moves to its next slot."""
        due: list[DueRun] = []
        while self._heap and self._heap[0][0] <= now:
            slot, _, schedule = heapq.heappop(self._heap)
            built = self._ahead.pop((schedule, slot), None)
            due.extend(built or (DueRun(alert, slot) for alert in self.groups[schedule]))
            heapq.heappush(self._heap, (schedule.next_after(slot), next(self._order), schedule))
        return due

    def latest_slots(self, now: datetime, grace: timedelta) -> tuple[list[DueRun], list[DueRun]]:
        """The latest slot of each alert at or before ``now``: within ``grace`` (to catch up, once
        per alert however many ticks were missed) and older (too late: to be reported, not run)."""
        recent: list[DueRun] = []
        stale: list[DueRun] = []
        for schedule, alerts in self.groups.items():
            slot = schedule.previous_at_or_before(now)
            if slot is None:
                continue
            target = recent if now - slot <= grace else stale
            target.extend(DueRun(alert, slot) for alert in alerts)
        return recent, stale
