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

from copy import copy
from dataclasses import dataclass
from datetime import datetime, timedelta

from sentinel.enums import AlertStatus, Event, Outcome, Reason
from sentinel.models import AlertState


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
    event: Event | None
    reason: Reason
    #: The outcome after no-data handling: ALERT, OK, ERROR or NODATA (kept).
    outcome: Outcome
    #: How far a counted reason has got (``1/3`` for ``pending``), else ``None``.
    progress: str | None = None

    def __str__(self) -> str:
        return f"{self.reason} {self.progress}" if self.progress else str(self.reason)


_NO_DATA = {
    "ok": Outcome.OK,
    "alert": Outcome.ALERT,
    "error": Outcome.ERROR,
    "keep": Outcome.NODATA,
}


def effective_outcome(outcome: str, rules: AlertRules) -> Outcome:
    """What a run counts as: a query with no row becomes what ``on_no_data`` says."""
    try:
        read = Outcome(outcome.upper())
    except ValueError:
        raise ValueError(f"unknown outcome {outcome!r}") from None
    return _NO_DATA[rules.on_no_data] if read == Outcome.NODATA else read


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
    if silenced is None:
        silenced = state.is_silenced(now)
    new = copy(state)  # a shallow copy, as replace() makes, without re-running __init__
    new.last_execution_at = new.updated_at = now
    if new.created_at is None:
        new.created_at = now
    if outcome == Outcome.NODATA:  # on_no_data: keep — as if the run had not happened
        return Transition(new, False, None, Reason.NO_DATA_KEPT, outcome)
    new.last_outcome = outcome
    if outcome == Outcome.ERROR:
        return _on_error(state, new, rules, silenced, outcome)

    new.consecutive_errors = 0
    new.error_notified = False
    new.last_error = None
    if outcome == Outcome.OK:
        new.consecutive_successes = state.consecutive_successes + 1
        new.consecutive_alerts = 0
        return _on_ok(state, new, rules, now, silenced, muted)
    new.consecutive_alerts = state.consecutive_alerts + 1
    new.consecutive_successes = 0
    return _on_alert(state, new, rules, now, silenced, muted)


def _set_status(new: AlertState, status: AlertStatus, now: datetime) -> None:
    if new.current_status != status:
        new.current_status = status
        new.status_since = now


def _on_error(
    state: AlertState, new: AlertState, rules: AlertRules, silenced: bool, outcome: Outcome
) -> Transition:
    # An error is not a recovery: the ALERT/OK status stays, so an incident that errors in
    # between is not notified twice.
    new.consecutive_errors = state.consecutive_errors + 1
    if rules.on_error != "notify" or state.error_notified:
        return Transition(new, False, None, Reason.QUERY_ERROR, outcome)
    if new.consecutive_errors < rules.error_after:
        count = f"{new.consecutive_errors}/{rules.error_after}"
        return Transition(new, False, None, Reason.ERROR_COUNTING, outcome, count)
    if silenced:
        return Transition(new, False, None, Reason.ERROR_WHILE_SILENCED, outcome)
    new.error_notified = True
    return Transition(new, True, Event.ERROR, Reason.QUERY_FAILING, outcome)


def _on_ok(
    state: AlertState,
    new: AlertState,
    rules: AlertRules,
    now: datetime,
    silenced: bool,
    muted: bool,
) -> Transition:
    ok = Outcome.OK
    if state.current_status != AlertStatus.ALERT:
        _set_status(new, AlertStatus.OK, now)
        if state.held == Event.RESOLVED and not muted:
            new.held = None
            event = Event.RESOLVED if not silenced else None
            return Transition(new, not silenced, event, Reason.HELD_RECOVERY, ok)
        if state.held == Event.FIRING:
            new.held = None  # it resolved during the mute window: nothing to send
        return Transition(new, False, None, Reason.OK, ok)
    if new.consecutive_successes < rules.resolve_after:
        count = f"{new.consecutive_successes}/{rules.resolve_after}"
        return Transition(new, False, None, Reason.RESOLVING, ok, count)
    firing_since = state.status_since
    _set_status(new, AlertStatus.OK, now)
    notified = state.incident_notified_at is not None
    new.incident_notified_at = None
    new.firing_since = firing_since
    if state.held == Event.FIRING:
        new.held = None
    if not (rules.notify_on_recovery and notified) or silenced:
        return Transition(new, False, None, Reason.RESOLVED, ok)
    if muted:
        new.held = Event.RESOLVED
        return Transition(new, False, None, Reason.RESOLVED_WHILE_MUTED, ok)
    return Transition(new, True, Event.RESOLVED, Reason.RESOLVED, ok)


def _on_alert(
    state: AlertState,
    new: AlertState,
    rules: AlertRules,
    now: datetime,
    silenced: bool,
    muted: bool,
) -> Transition:
    alert = Outcome.ALERT
    if state.current_status != AlertStatus.ALERT:
        if new.consecutive_alerts < rules.fire_after:
            _set_status(new, AlertStatus.PENDING, now)
            count = f"{new.consecutive_alerts}/{rules.fire_after}"
            return Transition(new, False, None, Reason.PENDING, alert, count)
        _set_status(new, AlertStatus.ALERT, now)
        new.incident_notified_at = None
        new.held = None
        return _try_firing(new, rules, now, silenced, muted, Reason.INTO_ALERT)
    # Still firing: a held notification, a repeat, or nothing.
    if state.held == Event.FIRING and not muted:
        return _try_firing(new, rules, now, silenced, muted, Reason.MUTE_OVER)
    repeat = rules.repeat_interval_seconds
    if repeat is None or state.held == Event.FIRING:
        return Transition(new, False, None, Reason.ALREADY_FIRING, alert)
    last = state.incident_notified_at
    if last is not None and now < last + timedelta(seconds=repeat):
        return Transition(new, False, None, Reason.ALREADY_FIRING, alert)
    return _try_firing(new, rules, now, silenced, muted, Reason.REPEAT)


def _try_firing(
    new: AlertState, rules: AlertRules, now: datetime, silenced: bool, muted: bool, why: Reason
) -> Transition:
    alert = Outcome.ALERT
    if silenced:
        return Transition(new, False, None, Reason.SILENCED, alert)
    if muted:
        new.held = Event.FIRING
        return Transition(new, False, None, Reason.MUTED, alert)
    last = new.last_alert_at
    interval = timedelta(seconds=rules.min_interval_seconds)
    if rules.min_interval_seconds > 0 and last is not None and now < last + interval:
        new.held = None
        return Transition(new, False, None, Reason.MIN_INTERVAL, alert)
    new.held = None
    new.last_alert_at = now
    new.incident_notified_at = now
    return Transition(new, True, Event.FIRING, why, alert)
