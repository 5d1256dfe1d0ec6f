"""What is owed, read from the state database: runs submitted but lost, claims left by the dead.

A broker can lose a message: a worker SIGKILLed mid-run, Redis restarted empty, a message dropped
after its retries while the state database was away. The state database cannot, so recovery asks
it, whatever the broker remembers. A run is owed when

- it was submitted, but no execution row exists by its deadline (its message was lost before any
  worker claimed it). The submitter remembers what it submitted; a replica that dies takes that
  memory with it, and the one that takes over catches up each alert's latest slot from the state
  database and hands the runs it did not send itself to :meth:`RunRecovery.submitted`, which
  covers the same ground;
- it was claimed, but is still ``running`` past its deadline (its worker died): found by a query.

Either is submitted again. The claim makes the new submission the only run (a duplicate finds the
row and stops; a stale claim is taken over), so recovering too eagerly costs work, never a second
notification. The deadline is the alert's timeout plus the stale-claim grace
(``SENTINEL_STALE_CLAIM_GRACE_SECONDS``), the same age at which a claim may be taken over.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.engine import Engine

from sentinel import environment
from sentinel.enums import ExecutionStatus
from sentinel.scheduling.due import DueRun, Schedulable
from sentinel.store.runs import (
    RunningRun,
    abandon_run,
    recorded_slots,
    running_claimed_before,
)

log = logging.getLogger("sentinel.recovery")


@dataclass(frozen=True)
class OwedRun:
    """A run to submit again, and why."""

    alert: Schedulable
    scheduled_for: datetime | None
    triggered_by: str
    #: Manual runs are sent again under their own message id, so the claim recognises them.
    message_id: str | None
    reason: str


class RunRecovery:
    """Finds owed runs; the caller submits them (enqueues them, or runs them in process)."""

    def __init__(
        self,
        engine: Engine,
        alerts: Callable[[], Mapping[str, Schedulable]],
        default_timeout: Callable[[], float],
        *,
        resend_messages: bool = True,
        grace_seconds: float | None = None,
        catch_up_seconds: float | None = None,
        owns: Callable[[str], bool] | None = None,
    ):
        """``grace_seconds`` and ``catch_up_seconds`` default to the configured ones; ``owns``
        says which alerts' dead claims are this recoverer's (a sharded scheduler's shards)."""
        if grace_seconds is None:
            grace_seconds = environment.stale_claim_grace_seconds()
        if catch_up_seconds is None:
            catch_up_seconds = environment.catch_up_grace_seconds()
        self.engine = engine
        self.alerts = alerts
        self.default_timeout = default_timeout
        #: Whether manual runs can be sent again (a broker); else one left running is abandoned.
        self.resend_messages = resend_messages
        self.owns = owns or _everything
        self.grace = grace_seconds
        self.catch_up = timedelta(seconds=catch_up_seconds)
        #: slot -> alert -> deadline: per slot, so 100,000 runs of one slot are one dict of
        #: names, not 100,000 (name, slot) keys (a fifth of the memory).
        self._awaiting: dict[datetime, dict[str, datetime]] = {}
        self._resent: dict[int, datetime] = {}

    def deadline(self, alert: Schedulable) -> timedelta:
        return timedelta(seconds=(alert.timeout or self.default_timeout()) + self.grace)

    def submitted(self, runs: Iterable[DueRun], now: datetime) -> None:
        """Remember runs sent to the broker (by this replica or, at takeover, by the last one)."""
        # One deadline object per timeout, not per run: 100,000 of a slot share a few.
        deadlines: dict[float | None, datetime] = {}
        for run in runs:
            deadline = deadlines.get(run.alert.timeout)
            if deadline is None:
                deadline = deadlines[run.alert.timeout] = now + self.deadline(run.alert)
            self._awaiting.setdefault(run.slot, {})[run.alert.name] = deadline

    def forget(self, keep: Callable[[str], bool] | None = None) -> None:
        """This replica stopped being the one that recovers (it lost the lease), or, with
        ``keep``, stopped recovering the alerts ``keep`` says no to (it lost some shards)."""
        if keep is None:
            self._awaiting.clear()
            self._resent.clear()
            return
        for slot, alerts in list(self._awaiting.items()):
            kept = {name: at for name, at in alerts.items() if keep(name)}
            if kept:
                self._awaiting[slot] = kept
            else:
                del self._awaiting[slot]

    @property
    def awaiting(self) -> int:
        """Submitted runs not yet seen in the state database."""
        return sum(len(alerts) for alerts in self._awaiting.values())

    def latest_deadline(self) -> datetime | None:
        """When the last of the submitted runs is checked (``None``: none is awaited)."""
        return max((max(a.values()) for a in self._awaiting.values() if a), default=None)

    def owed(self, now: datetime) -> list[OwedRun]:
        """Runs to submit again now. Reads the state database (a StateStoreError if it is away:
        nothing is forgotten, the next call asks again)."""
        return self._lost_before_claim(now) + self._claimed_by_the_dead(now)

    def _lost_before_claim(self, now: datetime) -> list[OwedRun]:
        due = [
            (name, slot)
            for slot, alerts in self._awaiting.items()
            for name, deadline in alerts.items()
            if deadline <= now
        ]
        if not due:
            return []
        found = recorded_slots(self.engine, due)
        alerts = self.alerts()
        owed = []
        for key in due:
            alert = alerts.get(key[0])
            if key in found or alert is None:
                self._stop_awaiting(key)
                continue
            # and again, if this one is lost too
            self._awaiting[key[1]][key[0]] = now + self.deadline(alert)
            owed.append(OwedRun(alert, key[1], "CRON", None, "no run recorded by its deadline"))
        return owed

    def _stop_awaiting(self, key: tuple[str, datetime]) -> None:
        name, slot = key
        alerts = self._awaiting[slot]
        del alerts[name]
        if not alerts:
            del self._awaiting[slot]

    def _claimed_by_the_dead(self, now: datetime) -> list[OwedRun]:
        alerts = self.alerts()
        forgotten = now - timedelta(hours=1)
        self._resent = {k: at for k, at in self._resent.items() if at > forgotten}
        owed = []
        for run in running_claimed_before(self.engine, now - timedelta(seconds=self.grace)):
            if not self.owns(run.alert_name):
                continue  # another shard's: its owner recovers it
            alert = alerts.get(run.alert_name)
            if alert is None:
                self._abandon(
                    run, ExecutionStatus.ERROR, "abandoned: the alert left the configuration", now
                )
                continue
            deadline = self.deadline(alert)
            if run.claimed_at > now - deadline:
                continue  # a longer timeout: not stale yet
            if run.scheduled_for is not None and run.scheduled_for < now - self.catch_up:
                # Running it now would be later than a missed slot may run: say so instead.
                reason = "not finished: its worker stopped, and the slot is past catch-up"
                self._abandon(run, ExecutionStatus.SKIPPED, reason, now)
                continue
            if run.scheduled_for is None and not (self.resend_messages and run.message_id):
                self._abandon(
                    run, ExecutionStatus.ERROR, "abandoned: the process running it stopped", now
                )
                continue
            resent = self._resent.get(run.execution_id)
            if resent is not None and resent > now - deadline:
                continue  # sent again already; the takeover refreshes the claim
            self._resent[run.execution_id] = now
            message_id = run.message_id if run.scheduled_for is None else None
            reason = "claimed but not finished by its deadline"
            owed.append(OwedRun(alert, run.scheduled_for, run.triggered_by, message_id, reason))
        return owed

    def _abandon(
        self, run: RunningRun, status: ExecutionStatus, reason: str, now: datetime
    ) -> None:
        if abandon_run(self.engine, run, reason, now, status=status):
            log.warning(
                "execution alert=%s scheduled_for=%s status=%s %s",
                run.alert_name,
                run.scheduled_for.isoformat() if run.scheduled_for else "-",
                status,
                reason,
            )


def _everything(alert_name: str) -> bool:
    return True
