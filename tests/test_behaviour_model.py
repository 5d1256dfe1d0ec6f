"""Random histories through the real state store, checked against a small reference model.

Hypothesis draws the alert's rules and a sequence of steps (a run's outcome, time passing,
silences starting and ending, mute windows) and replays it through ``claim_run`` +
``apply_outcome`` on SQLite and PostgreSQL. The notifications queued in the outbox must be exactly
those a plain, independent model of the README's rules predicts.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pytest
import sqlalchemy as sa
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from sentinel.enums import Outcome
from sentinel.models import QueryResult
from sentinel.rules import AlertRules
from sentinel.store import create_state_engine, ensure_schema
from sentinel.store.runs import RunOutcome, apply_outcome, claim_run
from sentinel.store.silences import add_silence, end_silences

T0 = datetime(2026, 5, 1, 8, 0, 0)
_names = itertools.count()


@dataclass
class Model:
    """The rules as the README states them, written without looking at sentinel.rules."""

    rules: AlertRules
    status: str = "OK"  # OK | PENDING | ALERT
    alerts_in_row: int = 0
    oks_in_row: int = 0
    errors_in_row: int = 0
    error_sent: bool = False
    last_sent: datetime | None = None  # any firing notice (minimum interval)
    incident_sent: datetime | None = None  # firing notice of the open incident
    held: str | None = None
    sent: list[str] = field(default_factory=list)

    def fire(self, now: datetime, silenced: bool, muted: bool) -> None:
        r = self.rules
        if silenced:
            return
        if muted:
            self.held = "firing"
            return
        if (
            r.min_interval_seconds
            and self.last_sent
            and now < self.last_sent + timedelta(seconds=r.min_interval_seconds)
        ):
            self.held = None
            return
        self.held = None
        self.last_sent = self.incident_sent = now
        self.sent.append("firing")

    def step(self, outcome: str, now: datetime, silenced: bool, muted: bool) -> None:
        r = self.rules
        if outcome == "NODATA":
            outcome = {"ok": "OK", "alert": "ALERT", "error": "ERROR", "keep": "KEEP"}[r.on_no_data]
        if outcome == "KEEP":
            return
        if outcome == "ERROR":
            self.errors_in_row += 1
            if (
                r.on_error == "notify"
                and not self.error_sent
                and self.errors_in_row >= r.error_after
                and not silenced
            ):
                self.error_sent = True
                self.sent.append("error")
            return
        self.errors_in_row, self.error_sent = 0, False
        if outcome == "OK":
            self.oks_in_row, self.alerts_in_row = self.oks_in_row + 1, 0
            if self.status != "ALERT":
                self.status = "OK"
                if self.held == "resolved" and not muted:
                    self.held = None
                    if not silenced:
                        self.sent.append("resolved")
                elif self.held == "firing":
                    self.held = None
                return
            if self.oks_in_row < r.resolve_after:
                return
            self.status = "OK"
            was_sent = self.incident_sent is not None
            self.incident_sent = None
            if self.held == "firing":
                self.held = None
            if r.notify_on_recovery and was_sent and not silenced:
                if muted:
                    self.held = "resolved"
                else:
                    self.sent.append("resolved")
            return
        self.alerts_in_row, self.oks_in_row = self.alerts_in_row + 1, 0
        if self.status != "ALERT":
            if self.alerts_in_row < r.fire_after:
                self.status = "PENDING"
                return
            self.status, self.incident_sent, self.held = "ALERT", None, None
            self.fire(now, silenced, muted)
            return
        if self.held == "firing" and not muted:
            self.fire(now, silenced, muted)
            return
        if r.repeat_interval_seconds is None or self.held == "firing":
            return
        if self.incident_sent and now < self.incident_sent + timedelta(
            seconds=r.repeat_interval_seconds
        ):
            return
        self.fire(now, silenced, muted)


rules_strategy = st.builds(
    AlertRules,
    min_interval_seconds=st.sampled_from([0.0, 600.0]),
    fire_after=st.integers(1, 3),
    resolve_after=st.integers(1, 3),
    repeat_interval_seconds=st.sampled_from([None, 300.0]),
    notify_on_recovery=st.booleans(),
    on_no_data=st.sampled_from(["ok", "alert", "error", "keep"]),
    on_error=st.sampled_from(["notify", "ignore"]),
    error_after=st.integers(1, 3),
)
step_strategy = st.tuples(
    st.sampled_from(["ALERT", "ALERT", "OK", "OK", "ERROR", "NODATA"]),
    st.sampled_from([60, 240, 900]),  # seconds since the previous run
    st.sampled_from(["keep", "keep", "keep", "silence", "unsilence"]),
    st.booleans(),  # muted during this run
)


def replay(engine: sa.Engine, rules: AlertRules, steps: list[tuple[str, int, str, bool]]) -> None:
    name = f"model_{next(_names)}"
    model = Model(rules)
    now = T0
    silenced = False
    queued: list[str] = []
    for outcome, gap, silence_op, muted in steps:
        now += timedelta(seconds=gap)
        if silence_op == "silence" and not silenced:
            add_silence(engine, until=now + timedelta(days=1), now=now, alert_name=name)
            silenced = True
        elif silence_op == "unsilence" and silenced:
            end_silences(engine, now, alert_name=name)
            silenced = False
        claim = claim_run(
            engine,
            alert_name=name,
            query="SELECT 1",
            triggered_by="CRON",
            scheduled_for=now,
            worker_id="model",
            now=now,
            stale_after=60,
        )
        assert claim is not None
        result = QueryResult(status=outcome) if outcome in ("ALERT", "OK") else None
        run = RunOutcome(Outcome(outcome), result, None if result else "x", 1.0, now)
        applied = apply_outcome(
            engine, claim, run, rules, ["webhook"], lambda _: {}, labels={}, muted=muted
        )
        assert applied is not None
        queued.extend(applied.transition.event or "" for _ in applied.outbox)
        model.step(outcome, now, silenced, muted)
        assert queued == model.sent, (rules, steps)


@pytest.mark.parametrize("backend", ["sqlite", "postgresql"])
def test_random_histories_match_the_model(backend: str, request: pytest.FixtureRequest) -> None:
    url = request.getfixturevalue("sqlite_url" if backend == "sqlite" else "postgres_url")
    engine = create_state_engine(url)
    ensure_schema(engine)

    @settings(
        max_examples=200 if backend == "sqlite" else 60,
        deadline=None,
        suppress_health_check=[HealthCheck.function_scoped_fixture],
    )
    @given(rules=rules_strategy, steps=st.lists(step_strategy, min_size=1, max_size=25))
    def check(rules: AlertRules, steps: list[tuple[str, int, str, bool]]) -> None:
        replay(engine, rules, steps)

    try:
        check()
    finally:
        engine.dispose()
