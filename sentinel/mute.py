"""Mute windows: times when an alert's notifications are held (its state still updates).

Two shapes, both in the window's own time zone: ``cron`` + ``duration`` (the window opens at each
cron slot and lasts that long) and ``start``-``end`` on ``weekdays`` (a daily window that may wrap
past midnight; a window that wraps belongs to the weekday it starts on).
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime, time, timedelta
from zoneinfo import ZoneInfo

from sentinel.config import MuteWindow
from sentinel.scheduling.cron import schedule_for

_WEEKDAYS = ("mon", "tue", "wed", "thu", "fri", "sat", "sun")


def _clock(text: str) -> time:
    hours, minutes = text.split(":")
    return time(int(hours), int(minutes))


def window_open(window: MuteWindow, now: datetime) -> bool:
    """Whether ``window`` holds notifications at ``now`` (naive UTC)."""
    if window.cron is not None and window.duration is not None:
        opened = schedule_for(window.cron, window.timezone).previous_at_or_before(now)
        return opened is not None and now < opened + timedelta(seconds=window.duration)
    assert window.start is not None and window.end is not None
    local = now.replace(tzinfo=UTC).astimezone(ZoneInfo(window.timezone))
    start, end, at = _clock(window.start), _clock(window.end), local.time()
    days = set(window.weekdays or _WEEKDAYS)
    today = _WEEKDAYS[local.weekday()]
    yesterday = _WEEKDAYS[(local.weekday() - 1) % 7]
    if start <= end:
        return today in days and start <= at < end
    return (today in days and at >= start) or (yesterday in days and at < end)


def is_muted(windows: Sequence[MuteWindow], now: datetime) -> bool:
    return any(window_open(w, now) for w in windows)
