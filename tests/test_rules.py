"""The decision rules, without a database: the only place that decides whether to notify."""

from __future__ import annotations

from datetime import datetime, timedelta

from hypothesis import given
from hypothesis import strategies as st

from sentinel.enums import AlertStatus
from sentinel.models import AlertState
from sentinel.rules import AlertRules, decide

T0 = datetime(2026, 1, 1, 12, 0, 0)


NO_RULES = AlertRules()


def run(outcomes: list[str], rules: AlertRules = NO_RULES, step: float = 60) -> list[bool]:
    state = AlertState(alert_name="a")
    notified = []
    for i, outcome in enumerate(outcomes):
        transition = decide(state, outcome, rules, T0 + timedelta(seconds=step * i))
        notified.append(transition.notify)
        state = transition.state
    return notified


def test_notifies_only_on_the_transition_into_alert() -> None:
    assert run(["ALERT", "ALERT", "ALERT"]) == [True, False, False]
    assert run(["OK", "ALERT", "OK", "ALERT"]) == [False, True, False, True]


def test_error_is_not_a_recovery() -> None:
    assert run(["ALERT", "ERROR", "ALERT"]) == [True, False, False]


def test_error_counts_and_keeps_status() -> None:
    state = decide(AlertState("a"), "ALERT", AlertRules(), T0).state
    state = decide(state, "ERROR", AlertRules(), T0 + timedelta(minutes=1)).state
    assert state.current_status == "ALERT"
    assert state.last_outcome == "ERROR"
    assert state.consecutive_errors == 1


def test_minimum_interval_holds() -> None:
    rules = AlertRules(min_interval_seconds=3600)
    # flapping every minute: only the first transition notifies inside the hour
    assert run(["ALERT", "OK"] * 30, rules) == [True] + [False] * 59
    # after the hour the next transition notifies again
    assert run(["ALERT", "OK", "ALERT"], rules, step=3600) == [True, False, True]


def test_silence_holds_and_is_not_reported_later() -> None:
    state = AlertState("a", silence_until=T0 + timedelta(hours=1))
    t = decide(state, "ALERT", AlertRules(), T0)
    assert not t.notify and t.reason.startswith("silenced")
    # the silence ends while the alert is still firing: the same incident, no notification
    later = decide(t.state, "ALERT", AlertRules(), T0 + timedelta(hours=2))
    assert not later.notify


def test_should_notify_is_answered_by_decide() -> None:
    state = AlertState("a", current_status=AlertStatus.OK)
    assert state.should_notify("ALERT", now=T0)
    assert not AlertState("a", current_status=AlertStatus.ALERT).should_notify("ALERT", now=T0)
    silenced = AlertState("a", silence_until=T0 + timedelta(minutes=5))
    assert not silenced.should_notify("ALERT", now=T0)


@given(st.lists(st.sampled_from(["ALERT", "OK", "ERROR"]), max_size=60))
def test_one_notification_per_incident(outcomes: list[str]) -> None:
    expected, status = 0, None
    for outcome in outcomes:
        if outcome == "ALERT" and status != "ALERT":
            expected += 1
        if outcome != "ERROR":
            status = outcome
    assert sum(run(outcomes)) == expected
