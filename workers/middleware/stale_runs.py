"""AgeLimit that leaves a trace: a due run that waited too long is recorded as ``skipped``.

Dramatiq's AgeLimit drops old messages into the dead-letter queue with no other trace. For an
alert that means a hole in the history nobody can explain; this records the skipped run (with its
slot and why) first, and then does what AgeLimit does: the message is failed, so it lands in the
dead-letter queue (``{ns}.alerts.XQ``) where an operator of a Dramatiq fleet looks for messages
that were not processed.
"""

from __future__ import annotations

import logging
from typing import Any

import dramatiq
from dramatiq.common import current_millis
from dramatiq.middleware import AgeLimit, SkipMessage

log = logging.getLogger("workers.stale_runs")


class RecordStaleRuns(AgeLimit):
    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        actor = broker.get_actor(message.actor_name)
        max_age = message.options.get("max_age") or actor.options.get("max_age", self.max_age)
        if not max_age:
            return
        age = current_millis() - message.message_timestamp
        if age < max_age:
            return
        kwargs = message.kwargs or {}
        slot = kwargs.get("scheduled_for")
        if message.actor_name == "execute-alert" and slot:
            from workers.live_deployment import record_skipped

            reason = f"not run: waited {age / 1000:.0f}s in the queue (limit {max_age / 1000:.0f}s)"
            record_skipped(kwargs["alert_name"], slot, reason)
        log.warning("skipped message %s (%s): too old", message.message_id, message.actor_name)
        message.fail()
        raise SkipMessage("message age limit exceeded")
