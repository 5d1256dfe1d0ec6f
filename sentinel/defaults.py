"""Every tunable default in one place, each with the reason for its value.

Environment variables override some of them at the edges (CLI, workers); library code reads them
from here and never hard-codes its own.
"""

from __future__ import annotations

import os


def _seconds(name: str, default: float) -> float:
    """An operator's override from the environment (``SENTINEL_<NAME>``), else the default."""
    return float(os.environ.get(f"SENTINEL_{name}", default))


#: Prefix of every queue name and Redis key (``SENTINEL_NAMESPACE``), so deployments can share a
#: Redis without seeing each other's messages.
NAMESPACE = "sqlsentinel"

#: Seconds for connecting to the data database and for each alert query (``database.timeout``).
QUERY_TIMEOUT_SECONDS = 30.0

#: Connections a pool keeps open while idle (``database.pool_size``). A busy process opens more,
#: up to one per thread that can use the engine at once, and closes the extra ones when idle.
POOL_SIZE = 5

#: A claimed run whose worker has not finished it after this long (beyond the query timeout) is
#: taken to be dead, and a duplicate message may take the run over.
STALE_CLAIM_GRACE_SECONDS = _seconds("STALE_CLAIM_GRACE_SECONDS", 60.0)

#: How long a notifier holds an outbox row while it sends. Longer than a full retry round (attempts
#: times the longest wait plus HTTP/SMTP timeouts), so two notifiers never send the same row at
#: once; a notifier that dies leaves the row to be re-leased after this.
DELIVERY_LEASE_SECONDS = _seconds("DELIVERY_LEASE_SECONDS", 300.0)

#: Delivery rounds before an outbox row is given up as ``failed``. Each round is a full tenacity
#: retry sequence; the rounds are spread over about a day by :data:`DELIVERY_ROUND_BACKOFF_SECONDS`
#: so an endpoint that is down for a while still gets the message once it returns.
DELIVERY_MAX_ROUNDS = int(_seconds("DELIVERY_MAX_ROUNDS", 6))

#: Wait before the n-th further round (the last value repeats);
#: ``SENTINEL_DELIVERY_ROUND_BACKOFF_SECONDS`` takes a comma-separated list.
DELIVERY_ROUND_BACKOFF_SECONDS = tuple(
    float(v)
    for v in os.environ.get(
        "SENTINEL_DELIVERY_ROUND_BACKOFF_SECONDS", "60,300,1800,7200,21600"
    ).split(",")
)

#: Attempts inside one delivery round, and the exponential back-off with jitter between them.
DELIVERY_ATTEMPTS = 4
DELIVERY_INITIAL_WAIT_SECONDS = _seconds("DELIVERY_INITIAL_WAIT_SECONDS", 1.0)
DELIVERY_MAX_WAIT_SECONDS = 30.0

#: Per-request timeout for webhook and Slack calls, and for SMTP sessions.
NOTIFY_TIMEOUT_SECONDS = 10.0

#: Rows shown by ``history`` when ``--limit`` is not given.
HISTORY_LIMIT = 10

#: After downtime, each alert's latest missed slot is run once if it is at most this old; older
#: missed slots are logged as skipped (a run hours late is usually worse than none).
CATCH_UP_GRACE_SECONDS = _seconds("CATCH_UP_GRACE_SECONDS", 600.0)

#: How often a scheduler (the fleet's active replica, or the one with no broker) asks the state
#: database what is owed: lost runs, dead claims, notifications left pending.
SWEEP_INTERVAL_SECONDS = 10.0

#: The scheduler wakes at least this often: to notice config edits, renew its lease, sweep.
SCHEDULER_MAX_SLEEP_SECONDS = 1.0
