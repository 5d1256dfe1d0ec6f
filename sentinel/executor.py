"""One run of one alert: claim → guarded query → one locked transition → outbox → delivery.

:class:`AlertExecutor` is a plain library object so that every caller drives the same workflow:
the CLI in one process, a Dramatiq actor in the fleet, the API. The caller decides how outbox rows
are delivered (``dispatch``): inline by default, through a queue in the fleet.
"""

from __future__ import annotations

import logging
import os
import socket
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import replace
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy.engine import Engine

from sentinel import environment
from sentinel.delivery import Deliverer, event_payload
from sentinel.enums import DeliveryStatus, Event, ExecutionStatus, Outcome
from sentinel.errors import NoDataError, SQLSentinelError
from sentinel.models import (
    AlertEvent,
    AlertState,
    DeliveryOutcome,
    ExecutionResult,
    QueryResult,
    utcnow,
)
from sentinel.mute import is_muted
from sentinel.redact import redact
from sentinel.rules import AlertRules, Transition, decide, effective_outcome
from sentinel.store.runs import EXECUTION_STATUS, RunOutcome, apply_outcome, claim_run
from sentinel.store.schema import ensure_schema

if TYPE_CHECKING:
    from sentinel.config import AlertConfig
    from sentinel.database import DatabaseAdapter
    from sentinel.notifications import NotificationFactory

log = logging.getLogger("sentinel.executor")

#: Delivers one outbox row of an alert; returns its outcome, or None when it was handed off.
Dispatch = Callable[[int, "AlertConfig"], DeliveryOutcome | None]


def default_worker_id() -> str:
    return f"{socket.gethostname()}:{os.getpid()}"


class AlertExecutor:
    """Executes alerts with state management and notifications (the spec's section 4.1)."""

    def __init__(
        self,
        state_db_engine: Engine | None,
        notification_factory: NotificationFactory,
        min_alert_interval_seconds: float = 0,
        *,
        clock: Callable[[], datetime] = utcnow,
        worker_id: str | None = None,
        dispatch: Dispatch | None = None,
    ):
        self.engine = state_db_engine
        self.notification_factory = notification_factory
        self.min_alert_interval_seconds = min_alert_interval_seconds
        self.clock = clock
        self.worker_id = worker_id or default_worker_id()
        #: A claim older than the query timeout plus this is taken over by a duplicate message.
        self.stale_claim_grace_seconds = environment.stale_claim_grace_seconds()
        self._deliverer = (
            Deliverer(state_db_engine, notification_factory, clock) if state_db_engine else None
        )
        self.dispatch: Dispatch = dispatch or self.deliver_inline
        self._rules: dict[str, tuple[AlertConfig, AlertRules]] = {}

    def rules_for(self, alert: AlertConfig) -> AlertRules:
        """The alert's rules, built once per alert object (a reloaded config brings new ones)."""
        cached = self._rules.get(alert.name)
        if cached is not None and cached[0] is alert:
            return cached[1]
        rules = self._build_rules(alert)
        self._rules[alert.name] = (alert, rules)
        return rules

    def _build_rules(self, alert: AlertConfig) -> AlertRules:
        return AlertRules(
            min_interval_seconds=alert.min_interval or self.min_alert_interval_seconds,
            fire_after=alert.fire_after,
            resolve_after=alert.resolve_after,
            repeat_interval_seconds=alert.repeat_interval,
            notify_on_recovery=alert.notify_on_recovery,
            on_no_data=alert.on_no_data,
            on_error=alert.on_error,
            error_after=alert.error_after,
        )

    def execute_alert(
        self,
        alert: AlertConfig,
        db_adapter: DatabaseAdapter,
        triggered_by: str = "MANUAL",
        dry_run: bool = False,
        scheduled_for: datetime | None = None,
        message_id: str | None = None,
    ) -> ExecutionResult:
        """Run the alert once. ``dry_run`` runs the query but writes and sends nothing.

        ``scheduled_for`` is the cron slot of a scheduled run: one slot is only ever run once.
        """
        if dry_run:
            return self._dry_run(alert, db_adapter, triggered_by)
        engine = self._require_engine()
        ensure_schema(engine)
        now = self.clock()
        timeout = alert.timeout or db_adapter.timeout
        claim = claim_run(
            engine,
            alert_name=alert.name,
            query=alert.query,
            triggered_by=triggered_by,
            scheduled_for=scheduled_for,
            worker_id=self.worker_id,
            now=now,
            stale_after=timeout + self.stale_claim_grace_seconds,
            message_id=message_id,
        )
        if claim is None:
            return self._duplicate(alert, now, triggered_by, scheduled_for)

        run = self._run_query(alert, db_adapter)
        details = self._details(alert, db_adapter, run)

        def payload(transition: Transition) -> dict[str, Any]:
            event = self._event(alert, run, claim.execution_id, triggered_by, scheduled_for)
            return event_payload(
                replace(event, details=details, firing_since=transition.state.firing_since)
            )

        applied = apply_outcome(
            engine,
            claim,
            run,
            self.rules_for(alert),
            [n.channel for n in alert.notify],
            payload,
            labels=alert.labels,
            muted=is_muted(alert.mute, run.finished_at),
        )
        if applied is None:
            return self._duplicate(alert, now, triggered_by, scheduled_for)
        notifications = []
        for outbox_id, channel in applied.outbox:
            outcome = self.dispatch(outbox_id, alert)
            notifications.append(
                outcome
                or DeliveryOutcome(
                    notification_id=outbox_id,
                    channel=channel,
                    event=applied.transition.event or Event.FIRING,
                    status=DeliveryStatus.PENDING,
                )
            )
        # Every value is already of its field's type: built without validating it again.
        result = ExecutionResult.model_construct(
            alert_name=alert.name,
            timestamp=now.isoformat(),
            status=applied.status,
            query_result=run.query_result,
            duration_ms=run.duration_ms,
            error=run.error,
            execution_id=claim.execution_id,
            triggered_by=triggered_by,
            scheduled_for=scheduled_for.isoformat() if scheduled_for else None,
            notify=applied.transition.notify,
            notifications=notifications,
        )
        log.info(
            "execution alert=%s scheduled_for=%s status=%s duration_ms=%.1f triggered_by=%s%s",
            alert.name,
            result.scheduled_for or "-",
            result.status,
            result.duration_ms,
            triggered_by,
            f" error={result.error}" if result.error else "",
        )
        return result

    def deliver_inline(self, outbox_id: int, alert: AlertConfig) -> DeliveryOutcome | None:
        return self._require_deliverer().deliver(outbox_id, {alert.name: alert})

    def deliver_inline_by_id(
        self, outbox_id: int, alerts: Mapping[str, AlertConfig]
    ) -> DeliveryOutcome | None:
        """Deliver one outbox row now (the fleet's notification actor; ``alerts`` by name)."""
        return self._require_deliverer().deliver(outbox_id, alerts)

    def deliver_pending(self, alerts: Iterable[AlertConfig]) -> list[DeliveryOutcome]:
        """Retry notifications left pending by earlier runs (an endpoint that was down)."""
        return self._require_deliverer().deliver_due({a.name: a for a in alerts})

    def _run_query(self, alert: AlertConfig, db_adapter: DatabaseAdapter) -> RunOutcome:
        started = time.perf_counter()
        result: QueryResult | None = None
        error: str | None = None
        no_data = False
        try:
            result = db_adapter.execute_alert_query(alert.query, timeout=alert.timeout)
            if db_adapter.more_rows:
                log.warning(
                    "alert=%s: query returned more than one row; used the first", alert.name
                )
        except NoDataError as exc:
            error, no_data = redact(exc), True
        except SQLSentinelError as exc:
            error = redact(exc)
        except Exception as exc:  # a driver's own error type must still end as a recorded error
            error = redact(f"{type(exc).__name__}: {exc}")
        except BaseException as exc:
            # A time limit interrupts the thread with an exception that is not an Exception
            # (Dramatiq's TimeLimitExceeded): the run must still end recorded, not 'running'.
            if isinstance(exc, KeyboardInterrupt | SystemExit | GeneratorExit):
                raise
            error = redact(f"interrupted: {type(exc).__name__} (the run's time limit)")
        duration_ms = (time.perf_counter() - started) * 1000.0
        outcome = (
            result.status if result is not None else (Outcome.NODATA if no_data else Outcome.ERROR)
        )
        return RunOutcome(outcome, result, error, duration_ms, self.clock())

    @staticmethod
    def _event(
        alert: AlertConfig,
        run: RunOutcome,
        execution_id: int | None,
        triggered_by: str,
        scheduled_for: datetime | None,
    ) -> AlertEvent:
        result = run.query_result
        return AlertEvent(
            event=Event.FIRING,
            alert_name=alert.name,
            status=run.outcome,
            description=alert.description,
            actual_value=result.actual_value if result else None,
            threshold=result.threshold if result else None,
            context=dict(result.context) if result else {},
            executed_at=run.finished_at,
            scheduled_for=scheduled_for,
            execution_id=execution_id,
            triggered_by=triggered_by,
            error=run.error,
            labels=dict(alert.labels),
            severity=alert.severity,
            owner=alert.owner,
            runbook_url=alert.runbook_url,
        )

    @staticmethod
    def _details(
        alert: AlertConfig, db_adapter: DatabaseAdapter, run: RunOutcome
    ) -> list[dict[str, Any]]:
        """The first rows of ``details_query``, for runs that said ALERT (what notifications show).

        Fetched before the state transaction, so no lock is held while the database works; a
        failing details query never fails the run, it only leaves the table out."""
        if not alert.details_query or run.outcome != Outcome.ALERT:
            return []
        try:
            rows = db_adapter.fetch_rows(alert.details_query, alert.details_limit, alert.timeout)
        except Exception as exc:
            log.warning("alert=%s: details query failed: %s", alert.name, redact(exc))
            return []
        return [dict(row) for row in rows]

    def _dry_run(
        self, alert: AlertConfig, db_adapter: DatabaseAdapter, triggered_by: str
    ) -> ExecutionResult:
        now = self.clock()
        run = self._run_query(alert, db_adapter)
        state, silenced = self._peek_state(alert, now)
        rules = self.rules_for(alert)
        transition = decide(
            state, run.outcome, rules, now, silenced=silenced, muted=is_muted(alert.mute, now)
        )
        would_send = [
            DeliveryOutcome(
                channel=n.channel, event=transition.event, status=DeliveryStatus.DRY_RUN
            )
            for n in alert.notify
            if transition.notify and transition.event
        ]
        return ExecutionResult(
            alert_name=alert.name,
            timestamp=now.isoformat(),
            status=EXECUTION_STATUS[effective_outcome(run.outcome, rules)],
            query_result=run.query_result,
            duration_ms=run.duration_ms,
            error=run.error,
            triggered_by=triggered_by,
            notify=transition.notify,
            notifications=would_send,
            dry_run=True,
        )

    def _peek_state(self, alert: AlertConfig, now: datetime) -> tuple[AlertState, bool]:
        """The stored state and whether a silence covers the alert now, as the real run would
        read them under its lock, but without creating or changing anything."""
        fresh = AlertState(alert_name=alert.name)
        if self.engine is None:
            return fresh, False
        from sentinel.store.engine import read_transaction
        from sentinel.store.schema import current_revision
        from sentinel.store.silences import active_silences, silenced_until
        from sentinel.store.state import load_states

        with read_transaction(self.engine) as conn:
            if current_revision(conn) is None:
                return fresh, False
            state = load_states(conn, [alert.name]).get(alert.name) or fresh
            until = silenced_until(active_silences(conn, now), alert.name, alert.labels, now)
        return state, until is not None

    def _duplicate(
        self, alert: AlertConfig, now: datetime, triggered_by: str, scheduled_for: datetime | None
    ) -> ExecutionResult:
        log.info("duplicate alert=%s scheduled_for=%s: already run", alert.name, scheduled_for)
        return ExecutionResult(
            alert_name=alert.name,
            timestamp=now.isoformat(),
            status=ExecutionStatus.SUCCESS,
            duration_ms=0.0,
            triggered_by=triggered_by,
            scheduled_for=scheduled_for.isoformat() if scheduled_for else None,
            duplicate=True,
        )

    def _require_engine(self) -> Engine:
        if self.engine is None:
            raise SQLSentinelError("a state database is needed for anything but a dry run")
        return self.engine

    def _require_deliverer(self) -> Deliverer:
        if self._deliverer is None:
            raise SQLSentinelError("a state database is needed to deliver notifications")
        return self._deliverer


# Re-exported for the spec's import paths: ``from sentinel.executor import StateManager``.
from sentinel.store.history import ExecutionHistory  # noqa: E402
from sentinel.store.state import StateManager  # noqa: E402

__all__ = ["AlertExecutor", "ExecutionHistory", "StateManager"]
