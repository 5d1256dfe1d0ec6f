"""One example per on-call rule, end to end: real data and state databases, a real HTTP server."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest

from sentinel.config import AlertConfig, MuteWindow
from sentinel.database import DatabaseAdapter, create_data_engine
from sentinel.executor import AlertExecutor
from sentinel.store import StateManager, create_state_engine, ensure_schema
from sentinel.store.silences import add_silence
from tests.alerting import FakeClock, make_alert, make_data_db
from tests.servers import HTTPTestServer
from tests.test_executor import factory


def empty_data(path: Path) -> None:
    with sqlite3.connect(path) as conn:
        conn.execute("DELETE FROM metric")
    conn.close()


@dataclass
class Bench:
    """An alert's world: its data (one metric value), a clock, an executor, a webhook."""

    data: Path
    clock: FakeClock
    executor: AlertExecutor
    adapter: DatabaseAdapter
    http: HTTPTestServer
    state: StateManager

    def run(self, alert: AlertConfig, value: float | None, minutes: float = 1) -> bool:
        """Set the metric (None: no row at all), run, then let time pass; True if it notified."""
        make_data_db(self.data, 5.0 if value is None else value)
        if value is None:
            empty_data(self.data)
        notified = self.executor.execute_alert(alert, self.adapter).notify
        self.clock.advance(minutes=minutes)
        return notified

    def events(self) -> list[str]:
        return [r.json()["event"] for r in self.http.requests]

    def payloads(self) -> list[dict[str, Any]]:
        return [r.json() for r in self.http.requests]


@pytest.fixture
def bench(tmp_path: Path, state_db_url: str, http_server: HTTPTestServer) -> Iterator[Bench]:
    clock = FakeClock()
    data = tmp_path / "data.db"
    adapter = DatabaseAdapter(create_data_engine(make_data_db(data)))
    engine = create_state_engine(state_db_url)
    executor = AlertExecutor(engine, factory(), clock=clock)
    yield Bench(data, clock, executor, adapter, http_server, StateManager(engine, clock))
    engine.dispose()
    adapter.dispose()


def hook(bench: Bench) -> list[dict[str, Any]]:
    return [{"channel": "webhook", "webhook_url": bench.http.url_for("/hook")}]


LOW, HIGH = 5.0, 50.0  # the alert fires below 10


def test_recovery_notice_says_how_long_it_fired(bench: Bench) -> None:
    alert = make_alert(hook(bench), notify_on_recovery=True)
    assert [bench.run(alert, v, minutes=30) for v in (LOW, LOW, LOW, HIGH)] == [
        True, False, False, True,
    ]  # fmt: skip
    firing, resolved = bench.payloads()
    assert (firing["event"], resolved["event"]) == ("firing", "resolved")
    assert resolved["firing_since"].startswith("2026-03-01T12:00:00")


def test_no_recovery_notice_for_an_incident_never_notified(bench: Bench) -> None:
    alert = make_alert(hook(bench), notify_on_recovery=True)
    silence = bench.state.silence_alert("low_metric", bench.clock.now + timedelta(hours=1))
    assert silence > 0
    assert [bench.run(alert, v) for v in (LOW, HIGH)] == [False, False]
    assert bench.events() == []


def test_pending_period_and_hysteresis(bench: Bench) -> None:
    alert = make_alert(hook(bench), fire_after=3, resolve_after=2, notify_on_recovery=True)
    results = [bench.run(alert, v) for v in (LOW, LOW, HIGH, LOW, LOW, LOW, HIGH, LOW, HIGH, HIGH)]
    # two ALERTs then OK: pending cancelled; three in a row fire; one OK is not enough to resolve
    assert results == [False, False, False, False, False, True, False, False, False, True]
    assert bench.events() == ["firing", "resolved"]


def test_repeat_while_firing(bench: Bench) -> None:
    alert = make_alert(hook(bench), repeat_interval="4h", min_interval="1h")
    results = [bench.run(alert, LOW, minutes=60) for _ in range(9)]
    assert results == [True, False, False, False, True, False, False, False, True]


@pytest.mark.parametrize(
    ("on_no_data", "expected_status", "expected_events"),
    [
        ("ok", "success", []),
        ("alert", "failure", ["firing"]),
        ("error", "error", []),
        ("keep", "error", []),
    ],
)
def test_no_data_handling(
    bench: Bench, on_no_data: str, expected_status: str, expected_events: list[str]
) -> None:
    alert = make_alert(hook(bench), on_no_data=on_no_data)
    empty_data(bench.data)
    result = bench.executor.execute_alert(alert, bench.adapter)
    assert result.status == expected_status
    assert bench.events() == expected_events
    state = bench.state.get_state("low_metric")
    assert (
        state.current_status
        == {"ok": "OK", "alert": "ALERT", "error": None, "keep": None}[on_no_data]
    )


def test_error_notice_after_consecutive_errors_once_per_streak(bench: Bench) -> None:
    broken = make_alert(
        hook(bench), query="SELECT status FROM missing_table", on_error="notify", error_after=2
    )
    results = [bench.executor.execute_alert(broken, bench.adapter).notify for _ in range(4)]
    assert results == [False, True, False, False]
    [payload] = bench.payloads()
    assert payload["event"] == "error" and "missing_table" in payload["error"]


def test_labels_and_silence_by_matcher(bench: Bench) -> None:
    data_team = make_alert(hook(bench), labels={"team": "data"}, severity="critical", owner="ana")
    other = make_alert(hook(bench), name="other", labels={"team": "web"})
    engine = bench.executor.engine
    assert engine is not None
    ensure_schema(engine)
    add_silence(
        engine,
        until=bench.clock.now + timedelta(hours=1),
        now=bench.clock.now,
        matchers={"team": "data"},
    )
    assert bench.run(data_team, LOW) is False
    assert bench.run(other, LOW) is True
    [payload] = bench.payloads()
    assert payload["alert_name"] == "other" and payload["labels"] == {"team": "web"}
    assert bench.state.get_state("low_metric", {"team": "data"}).silence_until is not None


def test_mute_window_holds_then_sends_once_if_still_firing(bench: Bench) -> None:
    # 12:00 UTC start; a daily window 11:00-13:00 UTC holds notifications
    window = MuteWindow(start="11:00", end="13:00")
    alert = make_alert(hook(bench), mute=[window])
    results = [bench.run(alert, LOW, minutes=30) for _ in range(4)]  # 12:00 12:30 13:00 13:30
    assert results == [False, False, True, False]
    assert bench.events() == ["firing"]
    state = bench.state.get_state("low_metric")
    assert state.current_status == "ALERT" and state.held is None


def test_mute_window_resolved_meanwhile_sends_nothing(bench: Bench) -> None:
    alert = make_alert(hook(bench), mute=[MuteWindow(cron="0 12 * * *", duration="45m")])
    assert [bench.run(alert, v, minutes=30) for v in (LOW, HIGH, HIGH)] == [False, False, False]
    assert bench.events() == []
