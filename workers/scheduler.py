"""The fleet's clock process: one active replica (a Redis lease), each due slot enqueued once.

Exactly once is layered: the lease makes one replica active; a ``SET NX`` key per ``(alert,
slot)`` stops a second enqueue (replicas overlapping during a restart); and the claim in the state
database is the real guard, so a duplicate message that gets through is dropped by the worker.

Nothing lost, and the state database is the source of truth for it: every run this replica
enqueues (or finds keyed by the previous active one at takeover) is handed to
:class:`~sentinel.recovery.RunRecovery`, which sends it again if no execution row exists by its
deadline, and which finds claims still ``running`` past their deadline by a query, whatever Redis
remembers. Notifications left pending in the outbox are swept the same way.

No fault ends the process: the lease, enqueueing, sweeping and the start-up bookkeeping are
separate steps, each of which may fail on its own (one log line per outage); runs that could not
be enqueued are held and sent when the broker is back.

On Redis the messages of the next slot are built ahead and pushed at the boundary in pipelined
round trips (:class:`~workers.pipelined_enqueue.PipelinedEnqueue`): the slot keys are still set
first, chunk by chunk, and only the runs this replica keyed are pushed. With RabbitMQ each
message is sent on its own, as before.
"""

from __future__ import annotations

import gc
import itertools
import logging
import threading
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sentinel import defaults, environment
from sentinel.config import load_config
from sentinel.deployment import Deployment
from sentinel.errors import StateStoreError
from sentinel.memory import release_free_memory
from sentinel.models import utcnow
from sentinel.outages import Dependency, outages
from sentinel.recovery import OwedRun, RunRecovery
from sentinel.redact import redact
from sentinel.scheduling.due import DueRun
from sentinel.scheduling.loop import ScheduleLoop
from sentinel.scheduling.shards import shard_of
from sentinel.store import outbox
from sentinel.store.runs import recorded_slots
from sentinel.store.schema import ensure_schema
from workers import keys
from workers.faults import broker_faults
from workers.leases import LEASE_TTL_MS, ShardLeases
from workers.pipelined_enqueue import PipelinedEnqueue

log = logging.getLogger("workers.scheduler")

#: How long the per-slot idempotency keys live (longer than any catch-up window).
SLOT_KEY_TTL_SECONDS = 2 * 86_400
#: Pending outbox rows untouched for this long are re-enqueued (their message was lost).
OUTBOX_STALE_SECONDS = 30.0
#: Runs whose slot keys are claimed in one pipelined round trip (and then pushed in one more).
ENQUEUE_CHUNK = 1_000
#: After enqueueing at least this many runs at once, the memory they took is handed back.
LARGE_BATCH = 10_000
#: How long before a slot its messages start being built (with a ``PipelinedEnqueue``).
PREPARE_AHEAD_SECONDS = 30.0
#: Messages built per tick: the lease is renewed between ticks, so building 100,000 cannot
#: outlive it.
PREPARE_CHUNK = 5_000
#: No building this close to a slot: what is not built by then is encoded at the boundary.
PREPARE_MARGIN_SECONDS = 1.0

#: Sends one ``execute-alert`` message: (alert, slot, triggered_by, options) -> message id.
Send = Callable[[str, str | None, str, dict[str, Any]], str]

#: ``SET key value NX EX ttl`` for each key: 1 where this call set it. One command for a whole
#: chunk (a pipeline of 1,000 ``SET``s costs the client three times as much to pack and parse).
_CLAIM = """
local claimed = {}
for i, key in ipairs(KEYS) do
    claimed[i] = redis.call('set', key, ARGV[1], 'NX', 'EX', ARGV[2]) and 1 or 0
end
return claimed
"""


class FleetScheduler:
    """Ticks a :class:`ScheduleLoop` while holding the lease; enqueues, sweeps, recovers."""

    def __init__(
        self,
        config_path: str,
        client: Any,
        send: Send,
        namespace: str,
        *,
        clock: Callable[[], datetime] = utcnow,
        send_notification: Callable[[int], None] | None = None,
        state_db_url: str | None = None,
        pipeline: PipelinedEnqueue | None = None,
        shards: int | None = None,
        lease_ttl_ms: int = LEASE_TTL_MS,
    ):
        """``shards`` defaults to ``SENTINEL_SCHEDULER_SHARDS``; tests shorten
        ``lease_ttl_ms``."""
        self.client = client
        self.send = send
        #: With it, scheduled runs go in pipelined round trips, built ahead (``send`` still
        #: re-sends what recovery finds owed, one by one).
        self.pipeline = pipeline
        self._preparing_for: datetime | None = None
        self._to_prepare: list[DueRun] = []
        self.send_notification = send_notification or _send_notification
        self.namespace = namespace
        self.clock = clock
        # The clock needs a fraction of each alert (the loop keeps that): of the config itself,
        # only the state database and the file's text stay.
        config = load_config(config_path)
        self.deployment = Deployment(config.without_alerts(), state_db_url, threads=1)
        count = shards if shards is not None else environment.scheduler_shards()
        self.shards = ShardLeases(client, namespace, count, lease_ttl_ms)
        self._claim = client.register_script(_CLAIM)
        #: Due runs not yet enqueued (broker away): those whose slot keys are still to be set,
        #: and those whose keys this replica set but whose messages were not sent.
        self.unclaimed: list[DueRun] = []
        self.unsent: list[DueRun] = []
        self.loop = ScheduleLoop(
            config_path,
            self.enqueue_runs,
            clock=clock,
            recorded=self._recorded,
            config=config,
            slim=True,
            # One shard: the active replica owns every alert, as an unsharded one does.
            owns=self.owns if count > 1 else None,
        )
        self.recovery = RunRecovery(
            self.deployment.state_engine,
            lambda: self.loop.alerts_by_name(),  # noqa: PLW0108 - the config is reloaded
            lambda: self.loop.config.database.timeout,
            owns=self.owns if count > 1 else None,
        )
        self._prepared = False
        self._swept_at = 0.0
        del config
        release_free_memory()
        gc.freeze()  # 100,000 alerts: keep them out of full collections (a 0.6 s pause otherwise)

    # -- enqueueing ------------------------------------------------------------------------
    def enqueue_runs(self, runs: list[DueRun]) -> None:
        """Enqueue each run once, in chunks; what cannot be sent now is held for the next tick.

        Slot keys are set for a whole chunk in one pipelined round trip; the lease is renewed
        between chunks, so a long batch cannot outlive it. A run whose key another replica set
        is that replica's to send, and recovery's to check."""
        now = self.clock()
        to_send, self.unsent = self.unsent, []
        self.unclaimed = self.unclaimed + runs  # until keyed, whatever fails next
        total, sent = len(self.unclaimed) + len(to_send), 0
        try:
            sent += self._send_all(to_send)
            for chunk_number in itertools.count():
                if not self.unclaimed:
                    break
                if chunk_number and not self.shards.renew():
                    log.warning("lost a lease mid-batch: the new active replica takes over")
                    self.unclaimed = []
                    return
                chunk = self.unclaimed[:ENQUEUE_CHUNK]
                claimed = self._claim_slots(chunk)
                self.recovery.submitted(chunk, now)
                self.unclaimed = self.unclaimed[ENQUEUE_CHUNK:]
                sent += self._send_all(claimed)
        except broker_faults() as exc:
            outages.failed(Dependency.BROKER, exc)
            held = len(self.unclaimed) + len(self.unsent)
            log.info("%d due runs held until the broker is back", held)
            return
        outages.ok(Dependency.BROKER)
        if total:
            log.info("enqueued %d of %d due runs", sent, total)
        if total >= LARGE_BATCH:
            release_free_memory()  # the batch's messages and keys, freed now

    def _send_all(self, runs: list[DueRun]) -> int:
        """Send each run; on a broker fault the rest (keys already set) wait in ``unsent``."""
        if self.pipeline is not None:
            try:
                self.pipeline.push(runs)
            except Exception:
                # Some of the chunk may be in Redis: sent again, a duplicate is dropped by the
                # claim in the state database.
                self.unsent = runs
                raise
            log.debug("enqueued %d runs in pipelined round trips", len(runs))
            return len(runs)
        for index, run in enumerate(runs):
            try:
                self._send(run)
            except Exception:
                self.unsent = runs[index:]
                raise
        return len(runs)

    def _claim_slots(self, chunk: list[DueRun]) -> list[DueRun]:
        """Set each run's slot key (``SET NX EX``, all in one round trip); the runs this replica
        claimed."""
        if not chunk:
            return []
        slot_keys = [keys.slot(self.namespace, run.alert.name, run.slot) for run in chunk]
        claimed = self._claim(keys=slot_keys, args=[self.shards.owner, SLOT_KEY_TTL_SECONDS])
        return [run for run, won in zip(chunk, claimed, strict=True) if won]

    def _send(self, run: DueRun) -> str:
        slot = run.slot.isoformat()
        sent = self.send(run.alert.name, slot, "CRON", {})
        log.debug("enqueued alert=%s scheduled_for=%s message=%s", run.alert.name, slot, sent)
        return sent

    def _recorded(self, runs: list[DueRun]) -> set[tuple[str, datetime]]:
        """Slots that already have a row. With the state database away the answer is "none":
        the slot keys and the claims still keep each run to one."""
        try:
            self._prepare()
            found = recorded_slots(
                self.deployment.state_engine, [(r.alert.name, r.slot) for r in runs]
            )
        except StateStoreError as exc:
            outages.failed(Dependency.STATE_DB, exc)
            return set()
        outages.ok(Dependency.STATE_DB)
        return found

    # -- sweeping --------------------------------------------------------------------------
    def sweep(self) -> None:
        """Send again what the state database says is owed: lost runs, stranded notifications."""
        now = self.clock()
        try:
            self._prepare()
            owed = self.recovery.owed(now)
            stranded: list[int] = []
            if self.shards.owns(0):  # notifications belong to no shard: shard 0's owner's
                stale = now - timedelta(seconds=OUTBOX_STALE_SECONDS)
                stranded = outbox.due(self.deployment.state_engine, now, untouched_since=stale)
        except StateStoreError as exc:
            outages.failed(Dependency.STATE_DB, exc)
            return
        outages.ok(Dependency.STATE_DB)
        try:
            for run in owed:
                self._resend(run)
            for outbox_id in stranded:
                self.send_notification(outbox_id)
        except broker_faults() as exc:
            outages.failed(Dependency.BROKER, exc)

    def _resend(self, run: OwedRun) -> None:
        log.warning(
            "re-enqueueing alert=%s scheduled_for=%s: %s",
            run.alert.name,
            run.scheduled_for.isoformat() if run.scheduled_for else "-",
            run.reason,
        )
        # A manual run is re-sent under its own message id; the worker sets the time limit.
        options = {"message_id": run.message_id} if run.message_id is not None else {}
        slot = run.scheduled_for.isoformat() if run.scheduled_for else None
        self.send(run.alert.name, slot, run.triggered_by, options)

    def _prepare(self) -> None:
        """Once: the schema and this config version in the state database (bookkeeping that
        waits for the database, never blocks scheduling)."""
        if not self._prepared:
            ensure_schema(self.deployment.state_engine)
            self.deployment.remember_config()
            self._prepared = True

    # -- the loop --------------------------------------------------------------------------
    def owns(self, alert_name: str) -> bool:
        """Whether this replica schedules and recovers the alert (holds its shard's lease)."""
        return self.shards.owns(shard_of(alert_name, self.shards.count))

    @property
    def active(self) -> bool:
        return bool(self.shards.held)

    def tick(self) -> tuple[bool, float]:
        """One pass: keep or take leases, enqueue what is due, sweep. Returns (active, wait)."""
        try:
            self._hold_shards()
        except broker_faults() as exc:
            # Without Redis this replica cannot know it still holds a lease: stand by.
            outages.failed(Dependency.REDIS, exc)
            if self.active:
                self.shards.forget()
                self.recovery.forget()
                self._forget_prepared()
            return False, defaults.SCHEDULER_MAX_SLEEP_SECONDS
        outages.ok(Dependency.REDIS)
        if not self.active:
            return False, defaults.SCHEDULER_MAX_SLEEP_SECONDS
        wait = self.loop.tick(self.clock())
        if self.unclaimed or self.unsent:
            self.enqueue_runs([])
        if time.monotonic() - self._swept_at >= defaults.SWEEP_INTERVAL_SECONDS:
            self._swept_at = time.monotonic()
            self.sweep()
        return True, self._prepare_next_slot(wait)

    def _prepare_next_slot(self, wait: float) -> float:
        """Build a chunk of the next slot's messages ahead of it; the wait until the next tick
        (none while there is more to build and time to build it)."""
        upcoming = self.loop.due.next_fire()
        if self.pipeline is None or upcoming is None:
            return wait
        now = self.clock()
        ahead = (upcoming - now).total_seconds()
        if not PREPARE_MARGIN_SECONDS < ahead <= PREPARE_AHEAD_SECONDS:
            return wait
        if self._preparing_for != upcoming:
            self._preparing_for = upcoming
            self.pipeline.discard_before(upcoming)
            self._to_prepare = self.loop.due.runs_at(upcoming)
        if not self._to_prepare:
            return wait
        chunk, self._to_prepare = self._to_prepare[:PREPARE_CHUNK], self._to_prepare[PREPARE_CHUNK:]
        self.pipeline.prepare(chunk, now)
        if self._to_prepare:
            return 0.0
        return max(0.0, min(wait, (upcoming - self.clock()).total_seconds()))  # building took time

    def _hold_shards(self) -> bool:
        """Keep this replica's share of the leases; on any change, take over what it now owns.
        Whether it holds any."""
        was_active = self.active
        change = self.shards.hold()
        if not change:
            return self.active
        count = self.shards.count
        for shard in change.lost:
            if count == 1:
                log.warning("lost the scheduler lease")
            else:
                log.warning("lost the scheduler lease for shard %d of %d", shard, count)
        for shard in change.released:
            log.info("gave shard %d of %d back: more than this replica's share", shard, count)
        if not was_active:
            self.unclaimed, self.unsent = [], []  # the catch-up covers what was held
        elif change.dropped:
            # Only what it still owns stays in its hands; the new owners catch the rest up.
            self.recovery.forget(keep=self.owns)
            self.unclaimed = [run for run in self.unclaimed if self.owns(run.alert.name)]
            self.unsent = [run for run in self.unsent if self.owns(run.alert.name)]
        if not self.active:
            log.warning("holds no scheduler lease; standing by")
        for shard in change.gained:
            log.info("%s: active", self.shards.describe(shard))
        self._forget_prepared()
        if self.active:
            self._take_over()
        return self.active

    def _forget_prepared(self) -> None:
        if self.pipeline is not None:
            self.pipeline.discard_before(datetime.max)
        self._preparing_for, self._to_prepare = None, []

    def _take_over(self) -> None:
        """Catch up each owned alert's latest missed slot; what the last owner keyed is owed
        unless a row appears by its deadline (it may have been lost with that replica)."""
        self._swept_at = 0.0  # sweep at once: the last active replica may have died mid-sweep
        self.loop.start(self.clock())  # enqueue_runs hands every caught-up run to recovery

    def run(self, stop: threading.Event) -> None:
        log.info(
            "fleet scheduler %s standing by: %d alerts in %d shards",
            self.shards.owner,
            len(self.loop.alerts),
            self.shards.count,
        )
        while not stop.is_set():
            try:
                _, wait = self.tick()
            except Exception:  # a bug, not an outage: say so loudly, and keep the clock going
                log.exception("scheduler tick failed")
                wait = defaults.SCHEDULER_MAX_SLEEP_SECONDS
            stop.wait(min(wait, defaults.SCHEDULER_MAX_SLEEP_SECONDS))
        try:
            self.shards.release()
        except broker_faults() as exc:
            log.warning("could not release the leases: %s", redact(exc))
        self.deployment.close()


def _send_notification(outbox_id: int) -> None:
    from workers.actors import deliver_notification

    deliver_notification.send(outbox_id)
