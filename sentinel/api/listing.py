"""The alert list (``GET /api/v1/alerts``, the status page, ``/stats``), rebuilt only where it
changed.

Building the 1,000 summaries of a large deployment from scratch took tens of milliseconds a
request: whole states and execution records read and built, then a pydantic model and its JSON
per alert, although between two requests almost nothing changes. The config is fixed for the
life of the process, so an :class:`AlertList` keeps, per alert, the parts its line was built from
and the line (model and JSON); each request reads the state database (the states, the active
silences, and only the runs it has not seen) and rebuilds the lines whose parts differ.

Nothing is served from memory without that read: a line is reused only when everything it is
made of (state row, silence, last run, next slot, mute) is equal to what it was made from, so the
answers are exactly those of :func:`sentinel.api.views.summaries`, never stale. A finished run's
shown columns never change, so runs are kept by id (only those still pointed at).
"""

from __future__ import annotations

import threading
from collections.abc import Hashable
from dataclasses import dataclass, field
from datetime import datetime

from pydantic import TypeAdapter

from sentinel.api import schemas, views
from sentinel.config import AlertConfig
from sentinel.deployment import Deployment
from sentinel.mute import is_muted
from sentinel.scheduling.cron import Schedule, schedule_for
from sentinel.store.overview import (
    NEVER_RAN,
    FinishedRun,
    ListedState,
    ListReading,
    read_alert_list,
)
from sentinel.store.silences import Silence, silenced_until

_ONE = TypeAdapter(schemas.AlertSummary)

#: Everything one alert's line is made of; equal parts make an equal line.
_Parts = tuple[ListedState, datetime | None, FinishedRun | None, datetime | None, bool]


@dataclass(frozen=True)
class Line:
    """One alert's line: its summary, as JSON, and as whatever else a caller renders of it."""

    parts: _Parts
    summary: schemas.AlertSummary
    json: bytes
    #: Renderings of this line (the status page's row, by what else the row depends on); they go
    #: when the line does, that is when the alert's parts change.
    rendered: dict[Hashable, str] = field(default_factory=dict, compare=False)


@dataclass(frozen=True)
class Listing:
    """A whole list and what it was built from, to answer again while nothing has changed."""

    version: object  # what the states were read as (ListReading.version)
    silences: list[Silence]
    muted: tuple[bool, ...]
    #: The list holds for ``built_at <= now < next_change``: the earliest next slot shown.
    built_at: datetime
    next_change: datetime | None
    #: Every run shown has finished (a running row may still change under an unchanged state).
    settled: bool
    lines: list[Line]
    json: bytes
    #: Renderings of the whole list (the status page's rows, encoded), kept while it is reused.
    rendered: dict[Hashable, bytes] = field(default_factory=dict, compare=False)


class AlertList:
    """The summaries of one deployment's alerts, in config order (safe to share across threads:
    requests only ever replace whole entries)."""

    def __init__(self, deployment: Deployment) -> None:
        self._engine = deployment.state_engine
        self._alerts: list[AlertConfig] = list(deployment.config.alerts)
        self._names = frozenset(a.name for a in self._alerts)
        self._schedules: list[Schedule | None] = [
            schedule_for(a.schedule, a.timezone) if a.enabled else None for a in self._alerts
        ]
        self._muting = [a for a in self._alerts if a.mute]
        self._lines: dict[str, Line] = {}
        self._runs: dict[int, FinishedRun] = {}
        self._last: Listing | None = None
        self._reading: ListReading | None = None  # the last, whose rows a next read may reuse
        self._lock = threading.Lock()  # guards the swap of the caches, not the reading

    def summaries(self, now: datetime) -> list[schemas.AlertSummary]:
        return [line.summary for line in self._listing(now).lines]

    def listing(self, now: datetime) -> Listing:
        """The list as of ``now``: the same object as last time while nothing in it changed."""
        return self._listing(now)

    def json(self, now: datetime) -> bytes:
        """The list as ``TypeAdapter(list[AlertSummary]).dump_json`` would write it."""
        return self._listing(now).json

    def _listing(self, now: datetime) -> Listing:
        known = self._runs  # the runs this reading may skip are the ones this build will have
        reading = read_alert_list(self._engine, self._names, now, known, self._reading)
        self._reading = reading
        muted = tuple(is_muted(a.mute, now) for a in self._muting)
        last = self._last
        if (
            last is not None
            and last.settled
            and last.built_at <= now
            and (last.next_change is None or now < last.next_change)
            and last.muted == muted
            and last.silences == reading.silences
            and last.version == reading.version
        ):
            return last
        listing = self._build(now, reading, {**known, **reading.runs}, muted)
        with self._lock:
            self._last = listing
        return listing

    def _build(
        self,
        now: datetime,
        reading: ListReading,
        runs: dict[int, FinishedRun],
        muted: tuple[bool, ...],
    ) -> Listing:
        states, silences = reading.states(self._names), reading.silences
        upcoming: dict[Schedule, datetime] = {}  # alerts sharing a schedule share its next slot
        lines: list[Line] = []
        for alert, schedule in zip(self._alerts, self._schedules, strict=True):
            state = states.get(alert.name, NEVER_RAN)
            run = runs.get(state.last_execution_id) if state.last_execution_id else None
            if run is not None and run.alert_name != alert.name:
                run = None  # as the full overview matches last runs to alerts by name
            next_run = None
            if schedule is not None:
                if schedule not in upcoming:
                    upcoming[schedule] = schedule.next_after(now)
                next_run = upcoming[schedule]
            until = silenced_until(silences, alert.name, alert.labels, now) if silences else None
            parts: _Parts = (state, until, run, next_run, is_muted(alert.mute, now))
            line = self._lines.get(alert.name)
            if line is None or line.parts != parts:
                summary = views.summary_of(alert, *parts)
                line = Line(parts, summary, _ONE.dump_json(summary))
            lines.append(line)
        shown = [line.parts[2] for line in lines if line.parts[2] is not None]
        with self._lock:
            self._lines = {line.summary.name: line for line in lines}
            # Only finished runs are kept (a running row may still change); only those shown.
            self._runs = {r.id: r for r in shown if r.finished}
        return Listing(
            version=reading.version,
            silences=silences,
            muted=muted,
            built_at=now,
            next_change=min(upcoming.values(), default=None),
            settled=all(r.finished for r in shown),
            lines=lines,
            json=b"[" + b",".join(line.json for line in lines) + b"]",
        )
