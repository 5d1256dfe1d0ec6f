"""The one place that decides whether a run notifies.

:func:`decide` is a pure function of the alert's current state, the run's outcome, the alert's rules
and the time. The state store applies its answer under the alert's row lock, so every caller (the
CLI, a worker, the API) gets the same decision and no decision is taken twice.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sentinel.models import ALERT, ERROR, OK, AlertState

FIRING = "firing"


@dataclass(frozen=True)
class AlertRules:
    """The per-alert settings the decision depends on."""

    min_interval_seconds: float = 0.0


@dataclass(frozen=True)
class Transition:
    """The new state, and whether (and why) to notify."""

    state: AlertState
    notify: bool
    event: str | None
    reason: str


def decide(state: AlertState, outcome: str, rules: AlertRules, now: datetime) -> Transition:
    """Apply one run's outcome (``ALERT``, ``OK`` or ``ERROR``) to ``state``.

    Notify only on a transition into ALERT, never while silenced, never inside the minimum interval
    since the last notification. An ERROR is not a recovery: it leaves the ALERT/OK status alone, so
    a failing query in the middle of an incident does not cause a second notification later.
    """
    outcome = outcome.upper()
    if outcome not in (ALERT, OK, ERROR):
        raise ValueError(f"unknown outcome {outcome!r}")
    new = replace(state, last_execution_at=now, last_outcome=outcome, updated_at=now)
    if new.created_at is None:
        new.created_at = now

    if outcome == ERROR:
        new.consecutive_errors = state.consecutive_errors + 1
        return Transition(new, False, None, "query error")

    new.consecutive_errors = 0
    new.last_error = None
    if outcome == OK:
        new.consecutive_successes = state.consecutive_successes + 1
        new.consecutive_alerts = 0
    else:
        new.consecutive_alerts = state.consecutive_alerts + 1
        new.consecutive_successes = 0
    if state.current_status != outcome:
        new.current_status = outcome
        new.status_since = now

    if outcome == OK:
        return Transition(new, False, None, "ok")
    if state.current_status == ALERT:
        return Transition(new, False, None, "already firing")
    if state.is_silenced(now):
        return Transition(new, False, None, f"silenced until {state.silence_until:%Y-%m-%d %H:%M}Z")
    if rules.min_interval_seconds > 0 and state.last_alert_at is not None:
        next_allowed = state.last_alert_at + timedelta(seconds=rules.min_interval_seconds)
        if now < next_allowed:
            return Transition(new, False, None, "inside the minimum interval")
    new.last_alert_at = now
    return Transition(new, True, FIRING, "transition into ALERT")
