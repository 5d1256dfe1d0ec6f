"""The clock loop without a broker: due runs, coalesced catch-up, reloads, the embedded mode."""

from __future__ import annotations

import logging
import os
import signal
import subprocess
import sys
import threading
import time
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from sentinel.deployment import Deployment
from sentinel.models import utcnow
from sentinel.scheduling.due import DueRun, DueRuns
from sentinel.scheduling.inprocess import run_embedded
from sentinel.scheduling.loop import ScheduleLoop
from tests.alerting import FakeClock


def write(path: Path, alerts: list[tuple[str, str]], url: str = "sqlite://") -> str:
    data = {
        "database": {"url": url},
        "alerts": [
            {"name": name, "query": "SELECT 'OK' AS status", "schedule": cron}
            for name, cron in alerts
        ],
    }
    path.write_text(yaml.safe_dump(data))
    return str(path)


class Collector:
    def __init__(self) -> None:
        self.runs: list[tuple[str, datetime]] = []

    def __call__(self, runs: list[DueRun]) -> None:
        self.runs.extend((r.alert.name, r.slot) for r in runs)


def test_due_runs_share_one_schedule_and_pop_in_order(tmp_path: Path) -> None:
    from sentinel.config import load_config

    alerts = [(f"a{i}", "*/5 * * * *") for i in range(100)] + [("hourly", "0 * * * *")]
    config = load_config(write(tmp_path / "a.yaml", alerts))
    due = DueRuns(config.alerts, datetime(2026, 3, 1, 12, 1))
    assert len(due.groups) == 2 and len(due) == 101
    assert due.next_fire() == datetime(2026, 3, 1, 12, 5)
    assert due.pop_due(datetime(2026, 3, 1, 12, 4, 59)) == []
    batch = due.pop_due(datetime(2026, 3, 1, 13, 0))
    slots = sorted({r.slot for r in batch})
    assert slots[0] == datetime(2026, 3, 1, 12, 5) and slots[-1] == datetime(2026, 3, 1, 13, 0)
    assert len(batch) == 100 * 12 + 1


def test_catch_up_runs_each_alert_once_and_logs_what_is_too_old(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(datetime(2026, 3, 1, 12, 7, 30))
    path = write(tmp_path / "a.yaml", [("every_minute", "* * * * *"), ("daily", "0 6 * * *")])
    submitted = Collector()
    loop = ScheduleLoop(path, submitted, clock=clock, grace=timedelta(minutes=10))
    with caplog.at_level(logging.WARNING, logger="sentinel.scheduler"):
        loop.start()
    # seven missed minutes coalesce into the latest one; 06:00 is past the grace window
    assert submitted.runs == [("every_minute", datetime(2026, 3, 1, 12, 7))]
    assert "skipped alert=daily scheduled_for=2026-03-01T06:00:00" in caplog.text
    clock.advance(seconds=31)
    loop.tick()
    assert submitted.runs[-1] == ("every_minute", datetime(2026, 3, 1, 12, 8))


def test_catch_up_skips_slots_already_recorded(tmp_path: Path) -> None:
    clock = FakeClock(datetime(2026, 3, 1, 12, 7, 30))
    path = write(tmp_path / "a.yaml", [("every_minute", "* * * * *")])
    submitted = Collector()
    loop = ScheduleLoop(
        path, submitted, clock=clock, recorded=lambda runs: {(r.alert.name, r.slot) for r in runs}
    )
    assert loop.start() == [] and submitted.runs == []


@pytest.mark.parametrize("slim", [False, True])
def test_a_slim_loop_keeps_what_scheduling_reads_and_schedules_the_same(
    tmp_path: Path, slim: bool
) -> None:
    """The fleet's scheduler keeps a ScheduledAlert per alert, not the whole alert, and none of
    the config's alerts, through a reload too; it schedules exactly what the full loop does."""
    from sentinel.config import AlertConfig
    from sentinel.scheduling.due import ScheduledAlert

    clock = FakeClock(datetime(2026, 3, 1, 12, 0, 30))
    config = tmp_path / "a.yaml"
    path = write(config, [("a", "* * * * *"), ("b", "*/2 * * * *")])
    submitted = Collector()
    loop = ScheduleLoop(path, submitted, clock=clock, slim=slim)
    kept = ScheduledAlert if slim else AlertConfig
    assert [type(a) for a in loop.alerts] == [kept, kept]
    assert len(loop.config.alerts) == (0 if slim else 2)
    assert loop.alerts_by_name()["b"].schedule == "*/2 * * * *"
    loop.start()
    write(config, [("a", "* * * * *"), ("c", "* * * * *")])
    os.utime(config, (time.time() + 5, time.time() + 5))
    clock.advance(seconds=90)
    loop.tick()
    assert {type(a) for a in loop.alerts} == {kept} and sorted(loop.alerts_by_name()) == ["a", "c"]
    assert len(loop.config.alerts) == (0 if slim else 2)
    assert sorted(submitted.runs) == [
        ("a", datetime(2026, 3, 1, 12, 0)),
        ("a", datetime(2026, 3, 1, 12, 1)),
        ("a", datetime(2026, 3, 1, 12, 2)),
        ("b", datetime(2026, 3, 1, 12, 0)),
        ("c", datetime(2026, 3, 1, 12, 1)),
        ("c", datetime(2026, 3, 1, 12, 2)),
    ]


def test_reload_picks_up_edits_and_keeps_the_old_config_when_invalid(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    clock = FakeClock(datetime(2026, 3, 1, 12, 0, 30))
    config = tmp_path / "a.yaml"
    path = write(config, [("a", "* * * * *")])
    submitted = Collector()
    loop = ScheduleLoop(path, submitted, clock=clock)
    loop.start()
    write(config, [("a", "* * * * *"), ("b", "* * * * *")])
    os.utime(config, (time.time() + 5, time.time() + 5))
    clock.advance(seconds=30)
    loop.tick()
    assert sorted(submitted.runs[-2:]) == [
        ("a", datetime(2026, 3, 1, 12, 1)),
        ("b", datetime(2026, 3, 1, 12, 1)),
    ]
    config.write_text("alerts: [broken")
    os.utime(config, (time.time() + 10, time.time() + 10))
    clock.advance(seconds=60)
    with caplog.at_level(logging.ERROR, logger="sentinel.scheduler"):
        loop.tick()
    assert "not reloaded" in caplog.text
    assert sorted(submitted.runs[-2:]) == [
        ("a", datetime(2026, 3, 1, 12, 2)),
        ("b", datetime(2026, 3, 1, 12, 2)),
    ]


def test_embedded_scheduler_runs_due_slots_in_process(tmp_path: Path) -> None:
    state = f"sqlite:///{tmp_path / 'state.db'}"
    path = write(tmp_path / "a.yaml", [("every_minute", "* * * * *")])
    deployment = Deployment.from_file(path, state)
    stop = threading.Event()
    thread = threading.Thread(target=run_embedded, args=(deployment, stop))
    started = utcnow()
    thread.start()
    engine = sa.create_engine(state)
    try:
        deadline = time.monotonic() + 20
        rows: list[tuple[str, str, str]] = []
        while time.monotonic() < deadline and not rows:
            time.sleep(0.2)
            try:
                with engine.connect() as conn:
                    rows = [(str(r[0]), str(r[1]), str(r[2])) for r in conn.execute(sa.text(
                        "SELECT triggered_by, scheduled_for, status FROM sqlsentinel_executions"
                    ))]  # fmt: skip
            except sa.exc.OperationalError:
                pass
    finally:
        stop.set()
        thread.join(30)
        engine.dispose()
        deployment.close()
    assert not thread.is_alive()
    [(by, slot, status)] = rows
    assert by == "CRON" and status == "success"
    this_minute = started.replace(second=0, microsecond=0)
    assert datetime.fromisoformat(slot) in (this_minute, this_minute + timedelta(minutes=1))


def test_scheduler_command_without_a_broker_stops_cleanly(tmp_path: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("REDIS_URL", "BROKER_URL")}
    state = f"sqlite:///{tmp_path / 'state.db'}"
    path = write(tmp_path / "a.yaml", [("every_minute", "* * * * *")])
    process = subprocess.Popen(
        [sys.executable, "-m", "sentinel", "scheduler", path, "--state-db", state],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    time.sleep(4)
    process.send_signal(signal.SIGTERM)
    out, err = process.communicate(timeout=30)
    assert process.returncode == 0, err
    assert "running in this process" in out
    with sa.create_engine(state).connect() as conn:
        slots = sorted(
            datetime.fromisoformat(str(row[0]))
            for row in conn.execute(sa.text("SELECT scheduled_for FROM sqlsentinel_executions"))
        )
    # The current minute runs at start; if the four seconds cross a minute boundary, the next
    # minute runs too: one run per slot, never the same slot twice.
    assert slots, "no run was recorded"
    assert len(slots) == len(set(slots)) <= 2
    assert slots[-1] - slots[0] in (timedelta(0), timedelta(minutes=1))
