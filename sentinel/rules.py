"""The one place that decides whether a run notifies.

:func:`decide` is a pure function of the alert's state, the run's outcome, the alert's rules, the
time, and whether the alert is silenced or muted now. The state store applies its answer under the
alert's row lock, so every caller (the CLI, a worker, the API) gets the same decision and no
decision is taken twice. Every rule lives here: dedup, pending (``fire_after``), hysteresis
(``resolve_after``), minimum interval, repeat, recovery, no-data and error handling, silences and
mute windows. With no rule configured the behaviour is the spec's: notify on the transition into
ALERT, once per incident.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import datetime, timedelta

from sentinel.models import ALERT, ERROR, OK, AlertState

FIRING, RESOLVED, ERRORED = "firing", "resolved", "error"
PENDING = "PENDING"
NODATA = "NODATA"


@dataclass(frozen=True)
class AlertRules:
    """The per-alert settings the decision depends on (defaults: the spec's behaviour)."""

    min_interval_seconds: float = 0.0
    fire_after: int = 1
    resolve_after: int = 1
    repeat_interval_seconds: float | None = None
    notify_on_recovery: bool = False
    on_no_data: str = "error"  # ok | alert | error | keep
    on_error: str = "ignore"  # notify | ignore
    error_after: int = 1


@dataclass(frozen=True)
class Transition:
    """The new state, and whether (and why) to notify."""

    state: AlertState
    notify: bool
    event: str | None
    reason: str
    outcome: str  # the outcome after no-data handling: ALERT, OK, ERROR or NODATA (kept)


def effective_outcome(outcome: str, rules: AlertRules) -> str:
    """What a run counts as: a query with no row becomes what ``on_no_data`` says."""
    outcome = outcome.upper()
    if outcome != NODATA:
        return outcome
    return {"ok": OK, "alert": ALERT, "error": ERROR, "keep": NODATA}[rules.on_no_data]


def decide(
    state: AlertState,
    outcome: str,
    rules: AlertRules,
    now: datetime,
    *,
    silenced: bool | None = None,
    muted: bool = False,
) -> Transition:
    """Apply one run's outcome (``ALERT``, ``OK``, ``ERROR`` or ``NODATA``) to ``state``."""
    outcome = effective_outcome(outcome, rules)
    if outcome not in (ALERT, OK, ERROR, NODATA):
        raise ValueError(f"unknown outcome {outcome!r}")
    if silenced is None:
        silenced = state.is_silenced(now)
    new = replace(state, last_execution_at=now, updated_at=now)
    if new.created_at is None:
        new.created_at = now
    if outcome == NODATA:  # on_no_data: keep — as if the run had not happened
        return Transition(new, False, None, "no data: state kept", outcome)
    new.last_outcome = outcome
    if outcome == ERROR:
        return _on_error(state, new, rules, silenced, outcome)

    new.consecutive_errors = 0
    new.error_notified = False
    new.last_error = None
    if outcome == OK:
        new.consecutive_successes = state.consecutive_successes + 1
        new.consecutive_alerts = 0
        return _on_ok(state, new, rules, now, silenced, muted)
    new.consecutive_alerts = state.consecutive_alerts + 1
    new.consecutive_successes = 0
    return _on_alert(state, new, rules, now, silenced, muted)


def _set_status(new: AlertState, status: str, now: datetime) -> None:
    if new.current_status != status:
        new.current_status = status
        new.status_since = now


def _on_error(
    state: AlertState, new: AlertState, rules: AlertRules, silenced: bool, outcome: str
) -> Transition:
    # An error is not a recovery: the ALERT/OK status stays, so an incident that errors in
    # between is not notified twice.
    new.consecutive_errors = state.consecutive_errors + 1
    if rules.on_error != "notify" or state.error_notified:
        return Transition(new, False, None, "query error", outcome)
    if new.consecutive_errors < rules.error_after:
        return Transition(
            new, False, None, f"error {new.consecutive_errors}/{rules.error_after}", outcome
        )
    if silenced:
        return Transition(new, False, None, "error while silenced", outcome)
    new.error_notified = True
    return Transition(new, True, ERRORED, "query failing", outcome)


def _on_ok(
    state: AlertState,
    new: AlertState,
    rules: AlertRules,
    now: datetime,
    silenced: bool,
    muted: bool,
) -> Transition:
    if state.current_status != ALERT:
        _set_status(new, OK, now)
        if state.held == RESOLVED and not muted:
            new.held = None
            return Transition(
                new, not silenced, RESOLVED if not silenced else None, "held recovery", OK
            )
        if state.held == FIRING:
            new.held = None  # it resolved during the mute window: nothing to send
        return Transition(new, False, None, "ok", OK)
    if new.consecutive_successes < rules.resolve_after:
        return Transition(
            new, False, None, f"resolving {new.consecutive_successes}/{rules.resolve_after}", OK
        )
    firing_since = state.status_since
    _set_status(new, OK, now)
    notified = state.incident_notified_at is not None
    new.incident_notified_at = None
    new.firing_since = firing_since
    if state.held == FIRING:
        new.held = None
    if not (rules.notify_on_recovery and notified) or silenced:
        return Transition(new, False, None, "resolved", OK)
    if muted:
        new.held = RESOLVED
        return Transition(new, False, None, "resolved during a mute window: held", OK)
    return Transition(new, True, RESOLVED, "resolved", OK)


def _on_alert(
    state: AlertState,
    new: AlertState,
    rules: AlertRules,
    now: datetime,
    silenced: bool,
    muted: bool,
) -> Transition:
    if state.current_status != ALERT:
        if new.consecutive_alerts < rules.fire_after:
            _set_status(new, PENDING, now)
            return Transition(
                new, False, None, f"pending {new.consecutive_alerts}/{rules.fire_after}", ALERT
            )
        _set_status(new, ALERT, now)
        new.incident_notified_at = None
        new.held = None
        return _try_firing(new, rules, now, silenced, muted, "transition into ALERT")
    # Still firing: a held notification, a repeat, or nothing.
    if state.held == FIRING and not muted:
        return _try_firing(new, rules, now, silenced, muted, "mute window over, still firing")
    repeat = rules.repeat_interval_seconds
    if repeat is None or state.held == FIRING:
        return Transition(new, False, None, "already firing", ALERT)
    last = state.incident_notified_at
    if last is not None and now < last + timedelta(seconds=repeat):
        return Transition(new, False, None, "already firing", ALERT)
    return _try_firing(new, rules, now, silenced, muted, "repeat while firing")


def _try_firing(
    new: AlertState, rules: AlertRules, now: datetime, silenced: bool, muted: bool, why: str
) -> Transition:
    if silenced:
        return Transition(new, False, None, "silenced", ALERT)
    if muted:
        new.held = FIRING
        return Transition(new, False, None, "muted: held until the window ends", ALERT)
    last = new.last_alert_at
    interval = timedelta(seconds=rules.min_interval_seconds)
    if rules.min_interval_seconds > 0 and last is not None and now < last + interval:
        new.held = None
        return Transition(new, False, None, "inside the minimum interval", ALERT)
    new.held = None
    new.last_alert_at = now
    new.incident_notified_at = now
    return Transition(new, True, FIRING, why, ALERT)
