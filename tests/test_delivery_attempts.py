"""How many tries a notification took is what its outbox row and its history say.

Real state databases and a real HTTP server that answers from a script; tiny retry waits.
"""

from __future__ import annotations

from pathlib import Path

import sqlalchemy as sa

from sentinel.database import DatabaseAdapter, create_data_engine
from sentinel.executor import AlertExecutor, ExecutionHistory
from sentinel.models import DeliveryOutcome
from sentinel.notifications import NotificationFactory, RetryPolicy
from sentinel.store import create_state_engine
from tests.alerting import make_alert, make_data_db
from tests.servers import HTTPTestServer

FAST = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05)


def run_once(
    tmp_path: Path, state_db_url: str, http: HTTPTestServer
) -> tuple[DeliveryOutcome, sa.Row[tuple[str, int]], list[DeliveryOutcome]]:
    """One firing run with one webhook, delivered in process; the outcome, the outbox row and
    the notifications that history shows for the run."""
    adapter = DatabaseAdapter(create_data_engine(make_data_db(tmp_path / "data.db")))
    engine = create_state_engine(state_db_url)
    executor = AlertExecutor(engine, NotificationFactory(smtp_host="", retry_policy=FAST))
    alert = make_alert([{"channel": "webhook", "webhook_url": http.url_for("/hook")}])
    try:
        [outcome] = executor.execute_alert(alert, adapter, triggered_by="CLI").notifications
        with engine.connect() as conn:
            row = conn.execute(sa.text("SELECT status, attempts FROM sqlsentinel_outbox")).one()
        [record] = ExecutionHistory(engine).get_recent_executions(alert.name, 1)
        return outcome, row, record.notifications
    finally:
        engine.dispose()
        adapter.dispose()


def test_a_success_after_three_503s_is_recorded_with_four_attempts(
    tmp_path: Path, state_db_url: str, http_server: HTTPTestServer
) -> None:
    http_server.respond(503, 503, 503, 200)
    outcome, row, history = run_once(tmp_path, state_db_url, http_server)
    assert [r.status for r in http_server.requests] == [503, 503, 503, 200]
    assert (outcome.status, outcome.attempts, outcome.error) == ("sent", 4, None)
    assert (row.status, row.attempts) == ("sent", 4)
    assert [(n.status, n.attempts) for n in history] == [("sent", 4)]


def test_a_round_that_fails_four_times_is_recorded_with_four_attempts(
    tmp_path: Path, state_db_url: str, http_server: HTTPTestServer
) -> None:
    http_server.respond(503, 503, 503, 503)
    outcome, row, history = run_once(tmp_path, state_db_url, http_server)
    assert [r.status for r in http_server.requests] == [503] * 4
    assert outcome.status == "pending" and outcome.attempts == 4
    assert outcome.error is not None and outcome.error.startswith("after 4 attempts: ")
    assert (row.status, row.attempts) == ("pending", 4)
    assert [(n.status, n.attempts) for n in history] == [("pending", 4)]
