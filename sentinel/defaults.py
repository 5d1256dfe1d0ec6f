"""Every tunable default in one place, each with the reason for its value.

Environment variables override some of them at the edges (CLI, workers); library code reads them
from here and never hard-codes its own.
"""

from __future__ import annotations

#: Prefix of every queue name and Redis key (``SENTINEL_NAMESPACE``), so deployments can share a
#: Redis without seeing each other's messages.
NAMESPACE = "sqlsentinel"

#: Seconds for connecting to the data database and for each alert query (``database.timeout``).
QUERY_TIMEOUT_SECONDS = 30.0

#: A claimed run whose worker has not finished it after this long (beyond the query timeout) is
#: taken to be dead, and a duplicate message may take the run over.
STALE_CLAIM_GRACE_SECONDS = 60.0

#: How long a notifier holds an outbox row while it sends. Longer than a full retry round (attempts
#: times the longest wait plus HTTP/SMTP timeouts), so two notifiers never send the same row at
#: once; a notifier that dies leaves the row to be re-leased after this.
DELIVERY_LEASE_SECONDS = 300.0

#: Delivery rounds before an outbox row is given up as ``failed``. Each round is a full tenacity
#: retry sequence; the rounds are spread over about a day by :data:`DELIVERY_ROUND_BACKOFF_SECONDS`
#: so an endpoint that is down for a while still gets the message once it returns.
DELIVERY_MAX_ROUNDS = 6

#: Wait before the n-th further round (the last value repeats).
DELIVERY_ROUND_BACKOFF_SECONDS = (60.0, 300.0, 1800.0, 7200.0, 21600.0)

#: Attempts inside one delivery round, and the exponential back-off with jitter between them.
DELIVERY_ATTEMPTS = 4
DELIVERY_INITIAL_WAIT_SECONDS = 1.0
DELIVERY_MAX_WAIT_SECONDS = 30.0

#: Per-request timeout for webhook and Slack calls, and for SMTP sessions.
NOTIFY_TIMEOUT_SECONDS = 10.0

#: Rows shown by ``history`` when ``--limit`` is not given.
HISTORY_LIMIT = 10
