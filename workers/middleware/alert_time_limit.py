"""Each run's time limit follows its alert's timeout, whoever sent the message.

Dramatiq's TimeLimit gives every message the same limit unless the message carries its own. The
scheduler's messages could carry one, but manual runs (``enqueue``, the API) were sent without,
and a slow alert got Dramatiq's default instead of the timeout + 30 s the README promises. Setting
the limit here, in the worker, from the alert as the worker's config has it, covers every sender
and keeps the rule in one place. It runs before TimeLimit reads the option.
"""

from __future__ import annotations

from typing import Any

import dramatiq
from dramatiq.middleware import Middleware

from sentinel.errors import SQLSentinelError

#: What a run may take beyond its alert's query timeout (claiming, recording, handing off).
TIME_LIMIT_MARGIN_MS = 30_000


class AlertTimeLimit(Middleware):
    def before_process_message(self, broker: dramatiq.Broker, message: Any) -> None:
        if message.actor_name != "execute-alert" or message.options.get("time_limit"):
            return
        from workers.live_deployment import live_deployment

        live = live_deployment()
        try:
            found = live.current()
            live.hold(message.message_id, found)  # the actor's own lookup, done
            deployment = found[0]
            alert = deployment.config.alert((message.kwargs or {}).get("alert_name", ""))
        except SQLSentinelError:
            return  # the actor reports an unknown alert or an unreadable config itself
        timeout = alert.timeout or deployment.config.database.timeout
        message.options["time_limit"] = int(timeout * 1000) + TIME_LIMIT_MARGIN_MS
