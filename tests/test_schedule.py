"""Cron maths: slots in the alert's zone, in UTC, with Debian cron's DST rules.

Every instant here is explicit naive UTC; no clock is patched. The DST cases use the 2026
changes: Berlin 2026-03-29 / 2026-10-25 (01:00 UTC both), New York 2026-03-08 (07:00 UTC) /
2026-11-01 (06:00 UTC).
"""

from __future__ import annotations

import bisect
import inspect
import itertools
from collections import Counter
from datetime import UTC, date, datetime, time, timedelta
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from sentinel.scheduling.cron import LOOKBACK, Schedule, next_run, schedule_for

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
MINUTE = timedelta(minutes=1)
# (zone, local date of the change, spring-forward?)
CHANGES = [
    (BERLIN, date(2026, 3, 29), True),
    (BERLIN, date(2026, 10, 25), False),
    (NEW_YORK, date(2026, 3, 8), True),
    (NEW_YORK, date(2026, 11, 1), False),
]
TRANSITIONS = [
    datetime(2026, 3, 29, 1),
    datetime(2026, 10, 25, 1),
    datetime(2026, 3, 8, 7),
    datetime(2026, 11, 1, 6),
]


def local_midnight(zone: str, day: date) -> datetime:
    """Naive UTC instant of local midnight (never inside a DST change for these zones)."""
    moment = datetime.combine(day, time(), ZoneInfo(zone)).astimezone(UTC)
    return moment.replace(tzinfo=None)


def run_on_local_day(schedule: Schedule, day: date) -> list[datetime]:
    start = local_midnight(schedule.timezone, day)
    end = local_midnight(schedule.timezone, day + timedelta(days=1))
    return list(schedule.slots_between(start - MINUTE, end - MINUTE))


def iterate(schedule: Schedule, start: datetime, steps: int) -> list[datetime]:
    slots, current = [], start
    for _ in range(steps):
        current = schedule.next_after(current)
        slots.append(current)
    return slots


def oracle(cron: str, zone_name: str, start: datetime, end: datetime) -> list[datetime]:
    """Slots in (start, end] by brute force over every real UTC minute, applying cron(8) directly.

    Independent of the implementation's ordering and mapping: croniter only lists which naive
    wall times match (pure calendar arithmetic); the DST rules are applied minute by minute.
    """
    from croniter import croniter

    zone = ZoneInfo(zone_name)
    minute_field, hour_field = cron.split()[:2]
    wildcard = minute_field.startswith("*") or hour_field.startswith("*")
    first_wall = start.replace(tzinfo=UTC).astimezone(zone).replace(tzinfo=None)
    cursor = croniter(cron, first_wall - timedelta(days=1))
    matching: set[datetime] = set()
    last_wall = first_wall + (end - start) + timedelta(days=1)
    while (wall := cursor.get_next(datetime)) < last_wall:
        matching.add(wall)
    slots = []
    moment = start.replace(second=0, microsecond=0) + MINUTE
    while moment <= end:
        local = moment.replace(tzinfo=UTC).astimezone(zone)
        wall = local.replace(tzinfo=None)
        fires = wall in matching and (wildcard or local.fold == 0)
        before = (moment - MINUTE).replace(tzinfo=UTC).astimezone(zone)
        jump = (wall - before.replace(tzinfo=None)) // MINUTE - 1  # wall minutes just skipped
        if not wildcard and any(wall - k * MINUTE in matching for k in range(1, jump + 1)):
            fires = True
        if fires:
            slots.append(moment)
        moment += MINUTE
    return slots


def offset_changes(zone_name: str, year: int) -> list[datetime]:
    """Naive UTC hours just after each offset change of ``zone_name`` in ``year``."""
    zone = ZoneInfo(zone_name)
    hour = datetime(year, 1, 1)
    changes = []
    while hour.year == year:
        following = hour + timedelta(hours=1)
        if hour.replace(tzinfo=UTC).astimezone(zone).utcoffset() != (
            following.replace(tzinfo=UTC).astimezone(zone).utcoffset()
        ):
            changes.append(following)
        hour = following
    return changes


# -- fixed-time jobs: once per local day -------------------------------------------------------

EXACT = [
    # Berlin spring: 02:30 does not exist; runs at 03:00 CEST, the first instant after the gap.
    (BERLIN, "30 2 * * *", date(2026, 3, 29), datetime(2026, 3, 29, 1, 0)),
    (BERLIN, "30 1 * * *", date(2026, 3, 29), datetime(2026, 3, 29, 0, 30)),
    # Berlin fall: 02:30 happens twice; runs at the first (CEST).
    (BERLIN, "30 2 * * *", date(2026, 10, 25), datetime(2026, 10, 25, 0, 30)),
    (BERLIN, "30 1 * * *", date(2026, 10, 25), datetime(2026, 10, 24, 23, 30)),
    (NEW_YORK, "30 2 * * *", date(2026, 3, 8), datetime(2026, 3, 8, 7, 0)),
    (NEW_YORK, "30 1 * * *", date(2026, 3, 8), datetime(2026, 3, 8, 6, 30)),
    (NEW_YORK, "30 2 * * *", date(2026, 11, 1), datetime(2026, 11, 1, 7, 30)),
    # New York fall: 01:30 happens twice; runs at the first (EDT), not again at 06:30 UTC.
    (NEW_YORK, "30 1 * * *", date(2026, 11, 1), datetime(2026, 11, 1, 5, 30)),
]


@pytest.mark.parametrize(("zone", "cron", "day", "expected"), EXACT)
def test_fixed_time_job_runs_once_on_the_change_day(
    zone: str, cron: str, day: date, expected: datetime
) -> None:
    assert run_on_local_day(Schedule(cron, zone), day) == [expected]


@pytest.mark.parametrize(("zone", "day", "_spring"), CHANGES)
@pytest.mark.parametrize("cron", ["30 2 * * *", "30 1 * * *"])
def test_fixed_time_job_runs_once_per_local_day_around_the_change(
    zone: str, day: date, _spring: bool, cron: str
) -> None:
    schedule = Schedule(cron, zone)
    start = local_midnight(zone, day - timedelta(days=3))
    end = local_midnight(zone, day + timedelta(days=4))
    slots = list(schedule.slots_between(start, end))
    local_days = Counter(s.replace(tzinfo=UTC).astimezone(ZoneInfo(zone)).date() for s in slots)
    assert local_days == {day + timedelta(days=k): 1 for k in range(-3, 4)}
    assert slots == sorted(set(slots))


def test_several_slots_in_one_gap_coalesce_with_the_first_real_slot() -> None:
    # 02:00 and 02:30 do not exist and 03:00 is the first real instant: one run, not three.
    schedule = Schedule("0,30 2-3 * * *", BERLIN)
    assert run_on_local_day(schedule, date(2026, 3, 29)) == [
        datetime(2026, 3, 29, 1, 0),
        datetime(2026, 3, 29, 1, 30),
    ]


def test_fixed_time_job_in_the_repeated_hour_runs_only_the_first_pass() -> None:
    schedule = Schedule("0,30 1 * * *", NEW_YORK)
    assert run_on_local_day(schedule, date(2026, 11, 1)) == [
        datetime(2026, 11, 1, 5, 0),
        datetime(2026, 11, 1, 5, 30),
    ]
    # Asked from inside the second pass, the next run is tomorrow's, the previous the first pass.
    assert schedule.next_after(datetime(2026, 11, 1, 6, 10)) == datetime(2026, 11, 2, 6, 0)
    assert schedule.previous_at_or_before(datetime(2026, 11, 1, 6, 10)) == datetime(
        2026, 11, 1, 5, 30
    )


# -- wildcard jobs: every real slot -------------------------------------------------------------


@pytest.mark.parametrize(("zone", "day", "spring"), CHANGES)
@pytest.mark.parametrize(
    ("cron", "step", "per_day"), [("0 * * * *", 60, 24), ("*/30 * * * *", 30, 48)]
)
def test_wildcard_job_runs_every_real_slot(
    zone: str, day: date, spring: bool, cron: str, step: int, per_day: int
) -> None:
    slots = run_on_local_day(Schedule(cron, zone), day)
    change = per_day // 24
    assert len(slots) == (per_day - change if spring else per_day + change)
    assert all(b - a == timedelta(minutes=step) for a, b in itertools.pairwise(slots))


def test_wildcard_job_repeats_the_repeated_hour() -> None:
    slots = run_on_local_day(Schedule("30 * * * *", NEW_YORK), date(2026, 11, 1))
    assert len(slots) == 25
    assert datetime(2026, 11, 1, 5, 30) in slots
    assert datetime(2026, 11, 1, 6, 30) in slots


def test_wildcard_job_skips_the_missing_hour() -> None:
    schedule = Schedule("* 2 * * *", BERLIN)
    assert schedule.is_wildcard
    assert run_on_local_day(schedule, date(2026, 3, 29)) == []
    assert len(run_on_local_day(schedule, date(2026, 10, 25))) == 120


def test_wildcard_second_pass_follows_the_first() -> None:
    # From inside the first pass, the next slot may be a second occurrence of an earlier wall.
    schedule = Schedule("0 1 * * *", NEW_YORK)  # fixed: never twice
    assert schedule.next_after(datetime(2026, 11, 1, 5, 10)) == datetime(2026, 11, 2, 6, 0)
    schedule = Schedule("*/40 1 * * *", NEW_YORK)  # wildcard: 01:00 and 01:40, each twice
    assert schedule.next_after(datetime(2026, 11, 1, 5, 50)) == datetime(2026, 11, 1, 6, 0)
    assert schedule.previous_at_or_before(datetime(2026, 11, 1, 6, 10)) == datetime(
        2026, 11, 1, 6, 0
    )
    assert schedule.previous_at_or_before(datetime(2026, 11, 1, 5, 59)) == datetime(
        2026, 11, 1, 5, 40
    )


# -- against a brute-force oracle --------------------------------------------------------------

ORACLE_CRONS = [
    "30 2 * * *",
    "30 1 * * *",
    "0 * * * *",
    "*/30 * * * *",
    "*/15 1-3 * * *",
    "0,30 2-3 * * *",
    "45 0-4 * * *",
    "* 2 * * *",
    "0 */2 * * *",
    "15 1,2 * * 0",
]
ORACLE_ZONES = [BERLIN, NEW_YORK, "Australia/Lord_Howe", "Europe/Dublin"]


@pytest.mark.parametrize("zone", ORACLE_ZONES)
@pytest.mark.parametrize("cron", ORACLE_CRONS)
def test_matches_brute_force_oracle_around_every_2026_change(cron: str, zone: str) -> None:
    schedule = Schedule(cron, zone)
    changes = offset_changes(zone, 2026)
    assert len(changes) == 2
    for change in changes:
        start, end = change - timedelta(days=1, minutes=7), change + timedelta(days=1)
        expected = oracle(cron, zone, start, end)
        assert list(schedule.slots_between(start, end)) == expected
        # Ask every 90 s (on and off the minute) within three hours of the change: before, in
        # and after a gap, in the first and second pass of a repeated hour.
        for k in range(-120, 120):
            moment = change + k * timedelta(seconds=90)
            index = bisect.bisect_right(expected, moment)
            if index < len(expected):
                assert schedule.next_after(moment) == expected[index]
            if index > 0:
                assert schedule.previous_at_or_before(moment) == expected[index - 1]


# -- plain zones, API ---------------------------------------------------------------------------


def test_utc_schedule_is_plain() -> None:
    schedule = Schedule("*/15 * * * *", "UTC")
    assert schedule.next_after(datetime(2026, 5, 4, 10, 7, 13)) == datetime(2026, 5, 4, 10, 15)
    assert schedule.next_after(datetime(2026, 5, 4, 10, 15)) == datetime(2026, 5, 4, 10, 30)
    assert schedule.previous_at_or_before(datetime(2026, 5, 4, 10, 15)) == datetime(
        2026, 5, 4, 10, 15
    )
    assert schedule.previous_at_or_before(datetime(2026, 5, 4, 10, 14, 59)) == datetime(
        2026, 5, 4, 10, 0
    )
    weekdays = Schedule("0 9 * * 1-5", "UTC")
    assert weekdays.next_after(datetime(2026, 5, 8, 9)) == datetime(
        2026, 5, 11, 9
    )  # Friday -> Monday
    # UTC has no DST: Berlin's 25-hour day is a plain 24-hour day here.
    day = list(
        Schedule("0 * * * *", "UTC").slots_between(datetime(2026, 10, 25), datetime(2026, 10, 26))
    )
    assert day == [datetime(2026, 10, 25) + timedelta(hours=h) for h in range(1, 25)]


def test_fixed_offset_zone() -> None:
    schedule = Schedule("0 9 * * *", "Etc/GMT-2")  # POSIX sign: UTC+2
    assert schedule.next_after(datetime(2026, 3, 29, 0)) == datetime(2026, 3, 29, 7)
    assert schedule.previous_at_or_before(datetime(2026, 3, 29, 6, 59)) == datetime(2026, 3, 28, 7)


def test_next_run_keeps_its_signature() -> None:
    assert list(inspect.signature(next_run).parameters) == ["schedule", "timezone", "after"]
    after = datetime(2026, 10, 31, 12)
    assert next_run("30 1 * * *", NEW_YORK, after) == datetime(2026, 11, 1, 5, 30)
    assert next_run("0 9 * * *", "UTC", after) == datetime(2026, 11, 1, 9)


def test_schedules_are_shared_hashable_values() -> None:
    assert Schedule(" 0  *  * * * ", BERLIN) == Schedule("0 * * * *", BERLIN)
    assert Schedule(" 0  *  * * * ", BERLIN).cron == "0 * * * *"
    assert len({Schedule("0 * * * *", BERLIN), Schedule("0 * * * *", BERLIN)}) == 1
    assert schedule_for("0 * * * *", BERLIN) is schedule_for("0 * * * *", BERLIN)


@pytest.mark.parametrize(
    ("cron", "wildcard"),
    [("0 * * * *", True), ("*/15 3 * * *", True), ("30 2 * * *", False), ("0-59 2 * * *", False)],
)
def test_is_wildcard(cron: str, wildcard: bool) -> None:
    assert Schedule(cron, "UTC").is_wildcard is wildcard


def test_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="five fields"):
        Schedule("0 * * *", "UTC")
    with pytest.raises(ZoneInfoNotFoundError):
        Schedule("0 * * * *", "Mars/Olympus_Mons")
    with pytest.raises(ValueError, match="naive"):
        Schedule("0 * * * *", "UTC").next_after(datetime(2026, 1, 1, tzinfo=UTC))


def test_rare_and_impossible_schedules() -> None:
    leap = Schedule("0 0 29 2 *", BERLIN)
    assert leap.next_after(datetime(2026, 6, 1)) == datetime(2028, 2, 28, 23)
    assert leap.previous_at_or_before(datetime(2028, 3, 1)) == datetime(2028, 2, 28, 23)
    assert datetime(2026, 6, 1) - datetime(2024, 2, 28, 23) > LOOKBACK
    assert leap.previous_at_or_before(datetime(2026, 6, 1)) is None
    never = Schedule("0 0 30 2 *", "UTC")
    assert never.previous_at_or_before(datetime(2026, 6, 1)) is None
    with pytest.raises(ValueError, match="failed to find next date"):
        never.next_after(datetime(2026, 6, 1))


# -- properties ---------------------------------------------------------------------------------

crons = st.builds(
    "{} {} * * {}".format,
    st.sampled_from(["0", "30", "*/15", "*/20", "5,35", "*", "45", "59"]),
    st.sampled_from(["*", "1", "2", "3", "1-3", "*/2", "0,2", "2-4", "0-23"]),
    st.sampled_from(["*", "0", "1-5"]),
)
instants = st.one_of(
    st.datetimes(min_value=datetime(2026, 1, 1), max_value=datetime(2026, 12, 31)),
    st.builds(
        lambda at, seconds: at + timedelta(seconds=seconds),
        st.sampled_from(TRANSITIONS),
        st.integers(min_value=-5 * 3600, max_value=5 * 3600),
    ),
)


@settings(max_examples=150, deadline=None)
@given(cron=crons, zone=st.sampled_from([BERLIN, NEW_YORK]), start=instants)
def test_next_after_is_strictly_increasing_and_consistent(
    cron: str, zone: str, start: datetime
) -> None:
    schedule = Schedule(cron, zone)
    slots = iterate(schedule, start, 50)
    assert all(a < b for a, b in zip([start, *slots], slots, strict=False))
    assert list(schedule.slots_between(start, slots[-1])) == slots
    assert schedule.previous_at_or_before(slots[0] - timedelta(microseconds=1)) == (
        schedule.previous_at_or_before(start)
    )
    for before, slot in itertools.pairwise(slots):
        assert schedule.previous_at_or_before(slot) == slot
        assert schedule.previous_at_or_before(slot - timedelta(microseconds=1)) == before
