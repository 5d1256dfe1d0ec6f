"""Due runs enqueued on Dramatiq's Redis broker in pipelined round trips, encoded ahead of the slot.

Dramatiq's ``RedisBroker.enqueue`` sends one message per round trip (one ``EVALSHA`` of its
``dispatch`` script), about 130 µs each here: 10,000 runs due at one minute take over a second to
enqueue. The scheduler knows the next slot ahead of time, so its messages are built and encoded
before the boundary (:meth:`PipelinedEnqueue.prepare`) and pushed at the boundary through the
same ``dispatch`` script, many per round trip (:meth:`PipelinedEnqueue.push`). What lands in
Redis is what ``RedisBroker.enqueue`` writes: a fresh ``redis_message_id`` per message, the hash
entry and the queue entry written by Dramatiq's own script; the broker's middleware sees
``before_enqueue`` when a message is built and ``after_enqueue`` once it is in Redis.

This leans on ``RedisBroker``'s internals (its ``scripts["dispatch"]`` and the script's argument
list), so the Dramatiq version is pinned in pyproject.toml to the range this was checked against,
and tests/test_pipelined_enqueue.py runs it against a real Redis and a real Dramatiq worker.

A message built ahead carries its slot's wall-clock time as ``message_timestamp`` (it is not
queued before its slot), so a worker's age checks (``RecordStaleRuns``) measure the run's
lateness, as for a message sent at the boundary.
"""

from __future__ import annotations

import uuid
from collections.abc import Sequence
from datetime import datetime

import dramatiq
from dramatiq.brokers.redis import RedisBroker
from dramatiq.common import current_millis

from sentinel.scheduling.due import DueRun

#: Messages per pipelined round trip (the reply list of one pipeline is held in memory).
PUSH_CHUNK = 1_000

_Key = tuple[str, datetime]


class PipelinedEnqueue:
    """``execute-alert`` messages for due runs: built ahead, pushed many per round trip."""

    def __init__(self, broker: RedisBroker, actor: dramatiq.Actor[..., None]):
        self.broker = broker
        self.actor = actor
        self.queue_name = actor.queue_name
        self._script = broker.scripts["dispatch"]
        #: Messages built ahead, by (alert, slot): the Message (for the middleware) and its bytes.
        self._ready: dict[_Key, tuple[dramatiq.Message[None], bytes]] = {}

    def __len__(self) -> int:
        return len(self._ready)

    def is_prepared(self, run: DueRun) -> bool:
        return (run.alert.name, run.slot) in self._ready

    def prepare(self, runs: Sequence[DueRun], now: datetime) -> None:
        """Build and encode the messages of runs due after ``now`` (the caller's clock), each
        stamped with the wall-clock millisecond of its slot."""
        wall_ms = current_millis()
        for run in runs:
            key = (run.alert.name, run.slot)
            if key not in self._ready:
                at_ms = wall_ms + int((run.slot - now).total_seconds() * 1000)
                self._ready[key] = self._encoded(run, max(at_ms, wall_ms))

    def discard_before(self, slot: datetime) -> None:
        """Drop messages built for slots before ``slot`` that were never pushed (an alert removed
        by a config reload, or runs whose slot key another replica set)."""
        stale = [key for key in self._ready if key[1] < slot]
        for key in stale:
            del self._ready[key]

    def push(self, runs: Sequence[DueRun]) -> list[str]:
        """Enqueue one message per run, ``PUSH_CHUNK`` per round trip; the message ids.

        A run not prepared ahead is encoded now. On a broker fault the exception propagates;
        messages of the failed chunk may or may not be in Redis (the caller holds the runs to
        send again, and the state database's claim drops a duplicate), and a run sent again is
        encoded afresh, under a new message id."""
        ids: list[str] = []
        for start in range(0, len(runs), PUSH_CHUNK):
            ids.extend(self._push_chunk(runs[start : start + PUSH_CHUNK]))
        return ids

    def _push_chunk(self, runs: Sequence[DueRun]) -> list[str]:
        wall_ms = current_millis()
        ready, messages = self._ready, []
        for run in runs:
            built = ready.pop((run.alert.name, run.slot), None)
            messages.append(built if built is not None else self._encoded(run, wall_ms))
        broker = self.broker
        # The arguments of RedisBroker._dispatch("enqueue") (dramatiq/brokers/redis.py): the
        # same script, the same keys, one call per message, queued on one pipeline. As bytes:
        # redis-py passes bytes through, and encoding arguments is a third of a push.
        keys = [broker.namespace.encode()]
        head = [
            str(value).encode()
            for value in (
                "enqueue",
                current_millis(),
                self.queue_name,
                broker.broker_id,
                broker.heartbeat_timeout,
                broker.dead_message_ttl,
                0,  # no queue maintenance from the scheduler: the workers' commands do it
                broker._max_unpack_size(),  # type: ignore[no-untyped-call]
            )
        ]
        pipe = broker.client.pipeline(transaction=False)
        for message, data in messages:
            args = [*head, message.options["redis_message_id"].encode(), data]
            self._script(keys=keys, args=args, client=pipe)
        pipe.execute()
        for message, _ in messages:
            broker.emit_after("enqueue", message, None)
        return [message.message_id for message, _ in messages]

    def _encoded(self, run: DueRun, timestamp_ms: int) -> tuple[dramatiq.Message[None], bytes]:
        kwargs = {
            "alert_name": run.alert.name,
            "scheduled_for": run.slot.isoformat(),
            "triggered_by": "CRON",
        }
        message = self.actor.message_with_options(kwargs=kwargs).copy(
            options={"redis_message_id": str(uuid.uuid4())}, message_timestamp=timestamp_ms
        )
        self.broker.emit_before("enqueue", message, None)
        return message, message.encode()
