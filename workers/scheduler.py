"""The fleet's clock process: one active replica (a Redis lease), each due slot enqueued once.

Exactly once is layered: the lease makes one replica active; a ``SET NX`` key per ``(alert,
slot)`` stops a second enqueue (replicas overlapping during a restart); and the claim in the state
database is the real guard, so a duplicate message that gets through is dropped by the worker.

Nothing lost: every enqueued run is also put in an in-flight set (atomically with its key). The
sweeper re-enqueues runs not seen finished after ``timeout + STALE_CLAIM_GRACE`` (the bound on
recovering from a worker killed mid-run: Dramatiq alone would wait for its heartbeat timeout and
a random maintenance pass), and notifications left pending in the outbox.
"""

from __future__ import annotations

import gc
import json
import logging
import os
import socket
import threading
import time
import uuid
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sentinel import defaults
from sentinel.due import DueRun
from sentinel.models import utcnow
from sentinel.redact import redact
from sentinel.scheduling import ScheduleLoop
from sentinel.service import SentinelService
from sentinel.store import outbox
from sentinel.store.runs import recorded_slots
from sentinel.store.schema import ensure_schema
from workers import keys

log = logging.getLogger("workers.scheduler")

#: The lease expires this long after the active replica's last renewal: a standby takes over
#: within about this long after the active one dies.
LEASE_TTL_MS = 5_000
#: How often the active replica looks for lost runs and stranded notifications.
SWEEP_INTERVAL_SECONDS = 10.0
#: How long the per-slot idempotency keys live (longer than any catch-up window).
SLOT_KEY_TTL_SECONDS = 2 * 86_400
#: Pending outbox rows untouched for this long are re-enqueued (their message was lost).
OUTBOX_STALE_SECONDS = 30.0
#: Runs whose slot keys are claimed in one pipelined round trip.
ENQUEUE_CHUNK = 500
#: In-flight entries checked per query, and how long one sweep may keep going.
SWEEP_BATCH = 1000
SWEEP_BUDGET_SECONDS = 5.0

_CLAIM_SLOT = """
if redis.call('set', KEYS[1], ARGV[1], 'NX', 'EX', ARGV[2]) then
    redis.call('zadd', KEYS[2], 'NX', ARGV[3], ARGV[4])
    return 1
end
return 0
"""
_RENEW = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('pexpire', KEYS[1], ARGV[2])
end
return 0
"""
_RELEASE = """
if redis.call('get', KEYS[1]) == ARGV[1] then
    return redis.call('del', KEYS[1])
end
return 0
"""


class Lease:
    """Which replica is active. The value carries a fencing epoch, checked on renew/release."""

    def __init__(self, client: Any, namespace: str, ttl_ms: int = LEASE_TTL_MS):
        self.client = client
        self.namespace = namespace
        self.ttl_ms = ttl_ms
        self.owner = f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:8]}"
        self.value: str | None = None
        self._renew = client.register_script(_RENEW)
        self._release = client.register_script(_RELEASE)

    def acquire(self) -> bool:
        candidate = f"pending:{self.owner}"
        if not self.client.set(keys.lease(self.namespace), candidate, nx=True, px=self.ttl_ms):
            return False
        epoch = int(self.client.incr(keys.epoch(self.namespace)))
        value = f"{epoch}:{self.owner}"
        self.client.set(keys.lease(self.namespace), value, xx=True, px=self.ttl_ms)
        self.value = value
        return True

    def renew(self) -> bool:
        if self.value is None:
            return False
        if not self._renew(keys=[keys.lease(self.namespace)], args=[self.value, self.ttl_ms]):
            self.value = None
            return False
        return True

    def release(self) -> None:
        if self.value is not None:
            self._release(keys=[keys.lease(self.namespace)], args=[self.value])
            self.value = None


class FleetScheduler:
    """Ticks a :class:`ScheduleLoop` while holding the lease; enqueues, sweeps."""

    def __init__(
        self,
        config_path: str,
        client: Any,
        send: Callable[[str, str | None, str, dict[str, Any]], str],
        namespace: str,
        *,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.client = client
        self.send = send
        self.namespace = namespace
        self.clock = clock
        self.service = SentinelService.from_file(config_path)
        gc.freeze()  # 100,000 alerts: keep them out of full collections (a 0.6 s pause otherwise)
        self.lease = Lease(client, namespace)
        self._claim_slot = client.register_script(_CLAIM_SLOT)
        self.unsent: list[DueRun] = []
        self.loop = ScheduleLoop(
            config_path,
            self.enqueue_runs,
            clock=clock,
            recorded=self._recorded,
            config=self.service.config,
        )
        self._swept_at = 0.0

    # -- enqueueing ------------------------------------------------------------------------
    def enqueue_runs(self, runs: list[DueRun]) -> None:
        """Enqueue each run once, in chunks; what fails (broker down) is kept for the next tick.

        Slot keys are claimed for a whole chunk in one pipelined round trip; the lease is renewed
        between chunks, so a long batch cannot outlive it."""
        pending = self.unsent + runs
        self.unsent = []
        sent = 0
        for start in range(0, len(pending), ENQUEUE_CHUNK):
            chunk = pending[start : start + ENQUEUE_CHUNK]
            try:
                if start and not self.lease.renew():
                    log.warning("lost the lease mid-batch: the new active replica takes over")
                    return
                claimed = self._claim_slots(chunk, time.time())
                for run in claimed:
                    self._send(run)
                sent += len(claimed)
            except Exception as exc:
                log.error("broker unavailable, %d runs held: %s", len(pending) - start, redact(exc))
                self.unsent = pending[start:]
                raise
        if pending:
            log.info("enqueued %d of %d due runs", sent, len(pending))

    def _claim_slots(self, chunk: list[DueRun], now: float) -> list[DueRun]:
        """Set each run's slot key (NX) and in-flight entry; the runs this replica claimed."""
        pipe = self.client.pipeline(transaction=False)
        for run in chunk:
            member = json.dumps([run.alert.name, run.slot.isoformat()])
            slot_key = keys.slot(self.namespace, run.alert.name, run.slot)
            args = [
                self.lease.value or "-",
                SLOT_KEY_TTL_SECONDS,
                now + self._deadline(run),
                member,
            ]
            self._claim_slot(keys=[slot_key, keys.inflight(self.namespace)], args=args, client=pipe)
        return [run for run, claimed in zip(chunk, pipe.execute(), strict=True) if claimed]

    def _send(self, run: DueRun) -> str:
        options = {"time_limit": int(self._timeout(run) * 1000) + 30_000}
        message_id = self.send(run.alert.name, run.slot.isoformat(), "CRON", options)
        log.debug(
            "enqueued alert=%s scheduled_for=%s message=%s",
            run.alert.name,
            run.slot.isoformat(),
            message_id,
        )
        return message_id

    def _timeout(self, run: DueRun) -> float:
        return run.alert.timeout or self.service.config.database.timeout

    def _deadline(self, run: DueRun) -> float:
        return self._timeout(run) + defaults.STALE_CLAIM_GRACE_SECONDS

    def _recorded(self, runs: list[DueRun]) -> set[tuple[str, datetime]]:
        ensure_schema(self.service.state_engine)
        return recorded_slots(self.service.state_engine, [(r.alert.name, r.slot) for r in runs])

    # -- sweeping --------------------------------------------------------------------------
    def sweep(self) -> None:
        """Re-enqueue runs not finished by their deadline, and stranded notifications."""
        deadline = time.monotonic() + SWEEP_BUDGET_SECONDS
        while time.monotonic() < deadline and self._sweep_inflight(time.time()) == SWEEP_BATCH:
            pass
        stale = self.clock() - timedelta(seconds=OUTBOX_STALE_SECONDS)
        for outbox_id in outbox.due(self.service.state_engine, self.clock(), untouched_since=stale):
            self.send_notification(outbox_id)

    def _sweep_inflight(self, now: float) -> int:
        """One batch of due in-flight entries; returns how many were looked at."""
        inflight = keys.inflight(self.namespace)
        members = self.client.zrangebyscore(inflight, "-inf", now, start=0, num=SWEEP_BATCH)
        if not members:
            return 0
        slots = [(name, datetime.fromisoformat(slot)) for name, slot in map(json.loads, members)]
        finished = recorded_slots(self.service.state_engine, slots, finished_only=True)
        done, retry = [], []
        for member, (name, slot) in zip(members, slots, strict=True):
            alert = self.loop.config.alerts_by_name().get(name)
            if (name, slot) in finished or alert is None:
                done.append(member)
            else:
                retry.append((member, DueRun(alert, slot)))
        if done:
            self.client.zrem(inflight, *done)
        for member, run in retry:
            log.warning(
                "re-enqueueing alert=%s scheduled_for=%s: not finished", run.alert.name, run.slot
            )
            self._send(run)
            self.client.zadd(inflight, {member: now + self._deadline(run)}, xx=True)
        return len(members)

    def send_notification(self, outbox_id: int) -> None:
        from workers.actors import deliver_notification

        deliver_notification.send(outbox_id)

    # -- the loop --------------------------------------------------------------------------
    def tick(self, active: bool) -> tuple[bool, float]:
        """One pass: keep or take the lease, enqueue what is due, sweep. Returns (active, wait)."""
        if active and not self.lease.renew():
            log.warning("lost the scheduler lease; standing by")
            active = False
        if not active and self.lease.acquire():
            log.info("scheduler lease taken (%s): active", self.lease.value)
            active = True
            self.loop.start(self.clock())
        if not active:
            return False, defaults.SCHEDULER_MAX_SLEEP_SECONDS
        wait = self.loop.tick(self.clock())
        if self.unsent:
            self.enqueue_runs([])
        if time.monotonic() - self._swept_at >= SWEEP_INTERVAL_SECONDS:
            self._swept_at = time.monotonic()
            self.sweep()
        return True, wait

    def run(self, stop: threading.Event) -> None:
        ensure_schema(self.service.state_engine)
        self.service.remember_config()
        log.info("fleet scheduler %s standing by: %d alerts", self.lease.owner, len(self.loop.due))
        active = False
        while not stop.is_set():
            try:
                active, wait = self.tick(active)
            except Exception as exc:  # Redis or the state database away: keep trying
                # The lease decides on the next tick whether this replica is still active.
                log.error("scheduler tick failed: %s", redact(exc))
                wait = defaults.SCHEDULER_MAX_SLEEP_SECONDS
            stop.wait(min(wait, defaults.SCHEDULER_MAX_SLEEP_SECONDS))
        try:
            self.lease.release()
        except Exception as exc:
            log.warning("could not release the lease: %s", redact(exc))
        self.service.close()
