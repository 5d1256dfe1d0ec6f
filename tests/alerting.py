"""Building blocks for tests that run alerts end to end: a data database, configs, a clock."""

from __future__ import annotations

import sqlite3
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from sentinel.config import AlertConfig, NotificationConfig, SentinelConfig, load_config

__all__ = ["FakeClock", "make_alert", "make_data_db", "write_config"]


@dataclass
class FakeClock:
    """An injected clock that only moves when the test says so."""

    now: datetime = datetime(2026, 3, 1, 12, 0, 0)

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **kwargs: float) -> None:
        self.now += timedelta(**kwargs)


def make_data_db(path: Path, value: float = 5.0) -> str:
    """A SQLite data database with one ``metric`` row the alert queries compare to 10."""
    with sqlite3.connect(path) as conn:
        conn.execute("CREATE TABLE IF NOT EXISTS metric (value REAL)")
        conn.execute("DELETE FROM metric")
        conn.execute("INSERT INTO metric VALUES (?)", (value,))
    conn.close()
    return f"sqlite:///{path}"


THRESHOLD_QUERY = (
    "SELECT CASE WHEN value < 10 THEN 'ALERT' ELSE 'OK' END AS status, "
    "value AS actual_value, 10 AS threshold, 'eu' AS region FROM metric"
)


def make_alert(notify: list[dict[str, Any]], **overrides: Any) -> AlertConfig:
    data: dict[str, Any] = {
        "name": "low_metric",
        "description": "metric below 10",
        "query": THRESHOLD_QUERY,
        "schedule": "* * * * *",
        "notify": [NotificationConfig(**n) for n in notify],
    }
    data.update(overrides)
    return AlertConfig(**data)


def write_config(
    path: Path, database_url: str, alerts: list[dict[str, Any]], **top: Any
) -> SentinelConfig:
    path.write_text(yaml.safe_dump({"database": {"url": database_url}, **top, "alerts": alerts}))
    return load_config(path)
