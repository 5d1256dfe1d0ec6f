"""Cron maths: when an alert runs, computed in its own time zone, reported in UTC.

Every datetime in and out of this module is *naive UTC*, the project's convention.

Daylight-saving changes follow Debian's (Vixie) cron, cron(8), because that is what people who
write crontabs expect:

* A *fixed-time* job (neither the minute nor the hour field starts with ``*``) whose wall time is
  skipped by a spring-forward gap runs once, at the first real instant after the gap; several
  slots in one gap coalesce into that single run. A fixed-time job whose wall time is repeated by
  a fall-back runs once, at the first occurrence.
* A *wildcard* job runs on the new time immediately: wall times in a gap do not exist and are
  skipped, repeated wall times run at both occurrences. ``0 * * * *`` therefore runs every real
  hour, 23 times on the spring-forward day and 25 times on the fall-back day.

croniter given an aware datetime gets the gap right but runs fixed-time jobs twice in the repeated
hour. So croniter only ever sees *naive local wall-clock* times, where it does plain calendar
arithmetic, and this module maps each wall time to its UTC instants with zoneinfo (``fold=0`` and
``fold=1`` disagree exactly when the wall time is repeated or missing).

Alerts share a handful of distinct schedules, so :class:`Schedule` is a hashable value:
:func:`schedule_for` hands out one shared object per ``(cron, timezone)``, which parses the cron
expression once, and :meth:`Schedule.next_after` is memoised, so thousands of alerts on one
schedule cost one computation per tick.
"""

from __future__ import annotations

import copy
import math
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cached_property, lru_cache
from typing import Any
from zoneinfo import ZoneInfo

__all__ = ["LOOKBACK", "Schedule", "next_run", "schedule_for"]

#: How far back :meth:`Schedule.previous_at_or_before` looks before giving up.
LOOKBACK = timedelta(days=366)

_MINUTE = timedelta(minutes=1)
# Zones whose offset never changes; they skip the fold/gap logic. All of ``Etc/*`` is fixed too.
_FIXED_ZONES = frozenset(
    {"UTC", "UCT", "GMT", "GMT0", "GMT+0", "GMT-0", "Greenwich", "Universal", "Zulu"}
)


def five_fields(cron: str) -> str:
    """``cron`` with its white space folded, if it is a valid expression of the five fields
    cron(8) reads (the one check, for the config and for the scheduler)."""
    from croniter import croniter

    folded = " ".join(cron.split())
    if len(folded.split(" ")) != 5 or not croniter.is_valid(folded):
        raise ValueError(
            f"invalid cron schedule '{folded}' (five fields: min hour day month weekday)"
        )
    return folded


@dataclass(frozen=True)
class Schedule:
    """A five-field cron expression read in an IANA time zone.

    Frozen, so it is hashable and can be shared by every alert with the same schedule; parsed
    state (croniter templates, the zone) is cached on the instance on first use, outside the
    fields, so it takes no part in equality or hashing.
    """

    cron: str
    timezone: str = "UTC"

    def __post_init__(self) -> None:
        object.__setattr__(self, "cron", five_fields(self.cron))
        ZoneInfo(self.timezone)  # fail now, not in the scheduler loop, on an unknown zone

    @property
    def is_wildcard(self) -> bool:
        """Whether cron(8) treats this as a wildcard job (``*`` leads the minute or hour field).

        Wildcard jobs follow the new clock across DST changes; fixed-time jobs run once a day.
        """
        minute, hour = self.cron.split(" ", 2)[:2]
        return minute.startswith("*") or hour.startswith("*")

    def next_after(self, after: datetime) -> datetime:
        """The first slot strictly after ``after``."""
        return _next_cached(self, _naive(after))

    def previous_at_or_before(self, moment: datetime) -> datetime | None:
        """The latest slot at or before ``moment``; None if there is none within :data:`LOOKBACK`.

        The bound keeps schedules that match rarely or never (``0 0 30 2 *``) from scanning years.
        """
        moment = _naive(moment)
        horizon = moment - LOOKBACK
        found: datetime | None
        offset = self._fixed_offset
        if offset is not None:
            wall = next(self._walls_at_or_before(moment + offset), None)
            found = None if wall is None else wall - offset
        else:
            found = self._previous_in_zone(moment, horizon)
        return None if found is None or found < horizon else found

    def slots_between(self, start: datetime, end: datetime) -> Iterator[datetime]:
        """Every slot with ``start < slot <= end``, in order: the runs missed in a window."""
        current, end = _naive(start), _naive(end)
        while (current := self._next(current)) <= end:
            yield current

    # -- internals -----------------------------------------------------------------------------

    @cached_property
    def _zone(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    @cached_property
    def _fixed_offset(self) -> timedelta | None:
        """The zone's offset if it never changes (fast path: no fold or gap logic), else None."""
        if self.timezone in _FIXED_ZONES or self.timezone.startswith("Etc/"):
            return self._zone.utcoffset(datetime(2000, 1, 1))
        return None

    @cached_property
    def _forward(self) -> Any:
        """Parsed once; every search iterates a shallow copy, so instances stay thread-safe."""
        from croniter import croniter

        return croniter(self.cron, datetime(2000, 1, 1))

    @cached_property
    def _backward(self) -> Any:
        """Like :attr:`_forward`, but gives up after two years (see :data:`LOOKBACK`)."""
        from croniter import croniter

        return croniter(self.cron, datetime(2000, 1, 1), max_years_between_matches=2)

    def _walls_after(self, wall: datetime) -> Iterator[datetime]:
        """Matching naive wall times strictly after ``wall``, ascending."""
        cursor = copy.copy(self._forward)
        cursor.set_current(wall)
        while True:
            found: datetime = cursor.get_next(datetime)
            yield found

    def _walls_at_or_before(self, wall: datetime) -> Iterator[datetime]:
        """Matching naive wall times at or before ``wall``, descending, for about two years."""
        from croniter import CroniterBadDateError

        cursor = copy.copy(self._backward)
        # get_prev is strict; slots are whole minutes, so start just past wall's minute.
        cursor.set_current(wall.replace(second=0, microsecond=0) + _MINUTE)
        while True:
            try:
                found: datetime = cursor.get_prev(datetime)
            except CroniterBadDateError:
                return
            yield found

    def _instants(self, wall: datetime) -> tuple[datetime, ...]:
        """The UTC instants (ascending) at which the job runs for local wall time ``wall``."""
        zone = self._zone
        first = wall - _offset(wall.replace(tzinfo=zone))
        second = wall - _offset(wall.replace(tzinfo=zone, fold=1))
        if first == second:
            return (first,)
        if first < second:  # repeated by a fall-back: fold=0 is the first occurrence
            return (first, second) if self.is_wildcard else (first,)
        # Skipped by a spring-forward (fold=0 reads it with the old offset, so lands later).
        return () if self.is_wildcard else (_transition(zone, second, first),)

    def _next(self, after: datetime) -> datetime:
        offset = self._fixed_offset
        if offset is not None:
            wall: datetime = copy.copy(self._forward).get_next(datetime, after + offset)
            return wall - offset
        zone = self._zone
        local = after.replace(tzinfo=UTC).astimezone(zone)
        wall = local.replace(tzinfo=None)
        # Walls after `wall` yield instants in order except inside a repeated hour, where a later
        # wall's first occurrence precedes an earlier wall's second. The earliest instant of each
        # wall never decreases, so the first wall with any instant past `after` holds the answer,
        best = next(u for w in self._walls_after(wall) for u in self._instants(w) if u > after)
        # ... unless `after` is in the first pass of a repeated hour: walls at or before `wall`
        # come round again after the change, and a wildcard job runs them again.
        later = wall.replace(tzinfo=zone, fold=1)
        shift = _offset(local) - _offset(later)
        if shift > timedelta(0) and self.is_wildcard:
            start = _transition(zone, after, after + shift) + _offset(later)  # repeat begins
            first = next(w for w in self._walls_after(start - _MINUTE) if w >= start)
            if first <= wall:
                best = min(best, first - _offset(later))  # its second occurrence
        return best

    def _previous_in_zone(self, moment: datetime, horizon: datetime) -> datetime | None:
        """Mirror image of :meth:`_next`: the latest wall with an instant <= moment, and so on."""
        zone = self._zone
        local = moment.replace(tzinfo=UTC).astimezone(zone)
        wall = local.replace(tzinfo=None)
        found: datetime | None = None
        for w in self._walls_at_or_before(wall):
            if w < horizon - timedelta(days=1):  # a wildcard job whose walls are all skipped
                break
            earlier = [u for u in self._instants(w) if u <= moment]
            if earlier:
                found = earlier[-1]
                break
        # In the second pass of a repeated hour, walls after `wall` already ran in the first pass.
        earlier_pass = wall.replace(tzinfo=zone, fold=0)
        shift = _offset(earlier_pass) - _offset(local)
        if shift > timedelta(0):
            end = _transition(zone, moment - shift, moment) + _offset(earlier_pass)  # repeat ends
            last = next(self._walls_at_or_before(end - _MINUTE), None)
            if last is not None and last > wall:
                first = last - _offset(earlier_pass)  # its first occurrence
                found = first if found is None else max(found, first)
        return found


def _naive(moment: datetime) -> datetime:
    """Reject aware datetimes: silently reading one as UTC would shift every slot."""
    if moment.tzinfo is not None:
        raise ValueError(f"expected a naive UTC datetime, got {moment.isoformat()}")
    return moment


def _offset(moment: datetime) -> timedelta:
    offset = moment.utcoffset()
    assert offset is not None, "aware datetimes always have an offset"
    return offset


def _transition(zone: ZoneInfo, before: datetime, after: datetime) -> datetime:
    """The instant (naive UTC) at which ``zone`` changed offset between ``before`` and ``after``.

    zoneinfo keeps its transition table private, so bisect whole seconds (tzdata transitions fall
    on whole seconds): a dozen lookups, and only on the two days a year that need one.
    """
    low = math.floor(before.replace(tzinfo=UTC).timestamp())
    high = math.ceil(after.replace(tzinfo=UTC).timestamp())
    target = _offset(datetime.fromtimestamp(high, zone))
    while high - low > 1:
        middle = (low + high) // 2
        if _offset(datetime.fromtimestamp(middle, zone)) == target:
            high = middle
        else:
            low = middle
    return datetime.fromtimestamp(high, UTC).replace(tzinfo=None)


@lru_cache(maxsize=8192)
def _next_cached(schedule: Schedule, after: datetime) -> datetime:
    """Alerts sharing a schedule ask the same question each tick; answer it once."""
    return schedule._next(after)


@lru_cache(maxsize=4096)
def schedule_for(cron: str, timezone: str = "UTC") -> Schedule:
    """The shared :class:`Schedule` for ``(cron, timezone)``: parse each distinct one once."""
    return Schedule(cron, timezone)


def next_run(schedule: str, timezone: str, after: datetime) -> datetime:
    """The first slot strictly after ``after`` (naive UTC), as naive UTC."""
    return schedule_for(schedule, timezone).next_after(after)
