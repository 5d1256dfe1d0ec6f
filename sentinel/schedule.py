"""Cron maths: when an alert runs next, in its own time zone, reported in UTC."""

from __future__ import annotations

from datetime import UTC, datetime
from zoneinfo import ZoneInfo


def next_run(schedule: str, timezone: str, after: datetime) -> datetime:
    """The first slot strictly after ``after`` (naive UTC), as naive UTC."""
    from croniter import croniter

    zone = ZoneInfo(timezone)
    local = after.replace(tzinfo=UTC).astimezone(zone)
    upcoming: datetime = croniter(schedule, local).get_next(datetime)
    return upcoming.astimezone(UTC).replace(tzinfo=None)
