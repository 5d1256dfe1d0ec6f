"""The Dramatiq wiring on Dramatiq's ``StubBroker``, the way dramatiq's own suite tests itself.

The broker is set before the actors are declared (``workers.broker.configured_broker`` keeps a
broker that is already set), so the actors, their middleware and the hand-off between the two
queues run in this process with a real state database and a real HTTP server, and no Redis. The
real-process fleet tests (tests/test_fleet.py, tests/test_faults.py) stay beside these.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import dramatiq
import pytest
import sqlalchemy as sa
import yaml
from dramatiq.brokers.stub import StubBroker
from dramatiq.middleware.prometheus import Prometheus

from tests.servers import HTTPTestServer
from workers.broker import middleware

_stub = StubBroker(middleware=[m for m in middleware() if not isinstance(m, Prometheus)])
dramatiq.set_broker(_stub)

from workers import actors  # noqa: E402 - the actors bind to the broker set just above
from workers.middleware.alert_time_limit import AlertTimeLimit  # noqa: E402


@pytest.fixture
def config(
    tmp_path: Path, http_server: HTTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> Iterator[str]:
    alerts = [
        {
            "name": "fires",
            "query": "SELECT 'ALERT' AS status, 7 AS actual_value",
            "schedule": "0 0 1 1 *",
            "notify": [{"channel": "webhook", "webhook_url": http_server.url_for("/hook")}],
        },
        {
            "name": "slow",
            "query": "SELECT 'OK' AS status",
            "schedule": "0 0 1 1 *",
            "timeout": "75s",
        },
    ]
    path = tmp_path / "alerts.yaml"
    state = f"sqlite:///{tmp_path / 'state.db'}"
    path.write_text(yaml.safe_dump({"database": {"url": state}, "alerts": alerts}))
    monkeypatch.setattr(actors.live, "path", str(path))
    _stub.flush_all()
    yield state
    _stub.flush_all()


def test_a_run_goes_through_both_queues_and_notifies_once(
    config: str, http_server: HTTPTestServer
) -> None:
    worker = dramatiq.Worker(_stub, worker_timeout=100)
    worker.start()
    try:
        actors.execute_alert.send(alert_name="fires", triggered_by="CLI")
        actors.execute_alert.send(alert_name="fires", triggered_by="CLI")
        _stub.join(actors.execute_alert.queue_name, fail_fast=True)
        _stub.join(actors.deliver_notification.queue_name, fail_fast=True)
    finally:
        worker.stop()
    engine = sa.create_engine(config)
    with engine.connect() as conn:
        runs = conn.execute(sa.text("SELECT status FROM sqlsentinel_executions")).scalars().all()
        sent = conn.execute(sa.text("SELECT status FROM sqlsentinel_outbox")).scalars().all()
    engine.dispose()
    assert runs == ["failure", "failure"]
    assert sent == ["sent"]  # the second run found the incident already notified
    assert [r.path for r in http_server.requests] == ["/hook"]


def test_a_manual_run_is_given_its_alerts_time_limit(config: str) -> None:
    message = actors.execute_alert.message(alert_name="slow", triggered_by="CLI")
    assert "time_limit" not in message.options
    AlertTimeLimit().before_process_message(_stub, message)
    assert message.options["time_limit"] == 75_000 + 30_000
    timed = actors.execute_alert.message_with_options(
        kwargs={"alert_name": "slow"}, time_limit=5_000
    )
    AlertTimeLimit().before_process_message(_stub, timed)
    assert timed.options["time_limit"] == 5_000  # a sender's own limit is kept
