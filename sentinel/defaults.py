"""Every tunable default in one place, each with the reason for its value.

Plain constants: nothing here reads the environment. An operator overrides those that say so with
``SENTINEL_<NAME>``, read where the value is used (by :mod:`sentinel.environment`, the namespace by
:func:`sentinel.fleet.namespace`); library code takes its defaults from here and never hard-codes
its own.
"""

from __future__ import annotations

#: Prefix of every queue name and Redis key (``SENTINEL_NAMESPACE``), so deployments can share a
#: Redis without seeing each other's messages.
NAMESPACE = "sqlsentinel"

#: Seconds for connecting to the data database and for each alert query (``database.timeout``).
QUERY_TIMEOUT_SECONDS = 30.0

#: Connections a pool keeps open while idle (``database.pool_size``). A busy process opens more,
#: up to one per thread that can use the engine at once, and closes the extra ones when idle.
POOL_SIZE = 5

#: A claimed run whose worker has not finished it after this long (beyond the query timeout) is
#: taken to be dead, and a duplicate message may take the run over
#: (``SENTINEL_STALE_CLAIM_GRACE_SECONDS``).
STALE_CLAIM_GRACE_SECONDS = 60.0

#: How long a notifier holds an outbox row while it sends. Longer than a full retry round (attempts
#: times the longest wait plus HTTP/SMTP timeouts), so two notifiers never send the same row at
#: once; a notifier that dies leaves the row to be re-leased after this
#: (``SENTINEL_DELIVERY_LEASE_SECONDS``).
DELIVERY_LEASE_SECONDS = 300.0

#: Delivery rounds before an outbox row is given up as ``failed``. Each round is a full tenacity
#: retry sequence; the rounds are spread over about a day by :data:`DELIVERY_ROUND_BACKOFF_SECONDS`
#: so an endpoint that is down for a while still gets the message once it returns
#: (``SENTINEL_DELIVERY_MAX_ROUNDS``).
DELIVERY_MAX_ROUNDS = 6

#: Wait before the n-th further round (the last value repeats);
#: ``SENTINEL_DELIVERY_ROUND_BACKOFF_SECONDS`` takes a comma-separated list.
DELIVERY_ROUND_BACKOFF_SECONDS = (60.0, 300.0, 1800.0, 7200.0, 21600.0)

#: Attempts inside one delivery round, and the exponential back-off with jitter between them
#: (its first wait: ``SENTINEL_DELIVERY_INITIAL_WAIT_SECONDS``).
DELIVERY_ATTEMPTS = 4
DELIVERY_INITIAL_WAIT_SECONDS = 1.0
DELIVERY_MAX_WAIT_SECONDS = 30.0

#: Per-request timeout for webhook and Slack calls, and for SMTP sessions.
NOTIFY_TIMEOUT_SECONDS = 10.0

#: Rows shown by ``history`` when ``--limit`` is not given.
HISTORY_LIMIT = 10

#: After downtime, each alert's latest missed slot is run once if it is at most this old
#: (``SENTINEL_CATCH_UP_GRACE_SECONDS``); older missed slots are logged as skipped (a run hours
#: late is usually worse than none). A due run that waited in the queue longer than
#: ``SENTINEL_MAX_LATENESS_SECONDS`` (by default this) is recorded as skipped too.
CATCH_UP_GRACE_SECONDS = 600.0

#: How often a scheduler (the fleet's active replica, or the one with no broker) asks the state
#: database what is owed: lost runs, dead claims, notifications left pending.
SWEEP_INTERVAL_SECONDS = 10.0

#: The scheduler wakes at least this often: to notice config edits, renew its lease, sweep.
SCHEDULER_MAX_SLEEP_SECONDS = 1.0

#: Shards the fleet scheduler splits the alerts into, each under a lease of its own, so several
#: replicas are active at once (``SENTINEL_SCHEDULER_SHARDS``; every replica must agree). One:
#: a single active replica, the others standing by.
SCHEDULER_SHARDS = 1
