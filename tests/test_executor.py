"""One run end to end: real data and state databases, real SMTP and HTTP servers receiving."""

from __future__ import annotations

import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sentinel.config import AlertConfig
from sentinel.database import DatabaseAdapter, create_data_engine
from sentinel.executor import AlertExecutor, ExecutionHistory, StateManager
from sentinel.notifications import NotificationFactory, RetryPolicy
from sentinel.store import create_state_engine
from tests.alerting import FakeClock, make_alert, make_data_db
from tests.servers import SMTP_PASSWORD, SMTP_USERNAME, HTTPTestServer, SMTPTestServer

FAST = RetryPolicy(attempts=4, initial_wait=0.01, max_wait=0.05)

#: A SQLite data database holding the metric, and the state database under test.
DataAndState = tuple[DatabaseAdapter, Engine]


@pytest.fixture
def stores(tmp_path: Path, state_db_url: str) -> Iterator[DataAndState]:
    adapter = DatabaseAdapter(create_data_engine(make_data_db(tmp_path / "data.db")))
    engine = create_state_engine(state_db_url)
    yield adapter, engine
    engine.dispose()
    adapter.dispose()


def factory(smtp: SMTPTestServer | None = None) -> NotificationFactory:
    if smtp is None:
        return NotificationFactory(smtp_host="", retry_policy=FAST)
    return NotificationFactory(
        smtp_host=smtp.host,
        smtp_port=smtp.port,
        smtp_username=SMTP_USERNAME,
        smtp_password=SMTP_PASSWORD,
        smtp_use_tls=False,
        from_address="sentinel@example.com",
        retry_policy=FAST,
    )


def all_channels(http: HTTPTestServer) -> list[dict[str, Any]]:
    return [
        {"channel": "email", "recipients": ["oncall@example.com"]},
        {"channel": "slack", "webhook_url": http.url_for("/slack/T000/B000/XXXX")},
        {"channel": "webhook", "webhook_url": http.url_for("/hook"), "secret": "hmac-secret"},
    ]


def paths(http: HTTPTestServer) -> list[str]:
    return [r.path for r in http.requests]


def test_hundred_runs_send_one_notification_per_channel(
    stores: DataAndState, http_server: HTTPTestServer, smtp_server: SMTPTestServer
) -> None:
    adapter, engine = stores
    executor = AlertExecutor(engine, factory(smtp_server))
    alert = make_alert(all_channels(http_server))
    results = [executor.execute_alert(alert, adapter, triggered_by="CLI") for _ in range(100)]

    assert {r.status for r in results} == {"failure"}
    assert [r.notify for r in results].count(True) == 1
    assert sorted(paths(http_server)) == ["/hook", "/slack/T000/B000/XXXX"]
    assert len(smtp_server.messages) == 1
    state = StateManager(engine).get_state("low_metric")
    assert state.current_status == "ALERT" and state.consecutive_alerts == 100
    stats = ExecutionHistory(engine).get_statistics("low_metric")
    assert stats["total_executions"] == 100 and stats["success_rate"] == 0.0
    assert stats["notifications_sent"] == 3


def test_concurrent_runs_notify_once(
    tmp_path: Path, postgres_url: str, http_server: HTTPTestServer
) -> None:
    """Eight threads, each with its own executor and connections, race on the same alert."""
    data_url = make_data_db(tmp_path / "data.db")
    alert = make_alert([{"channel": "webhook", "webhook_url": http_server.url_for("/hook")}])
    errors: list[BaseException] = []

    def worker() -> None:
        engine = create_state_engine(postgres_url)
        adapter = DatabaseAdapter(create_data_engine(data_url))
        try:
            executor = AlertExecutor(engine, factory())
            for _ in range(10):
                executor.execute_alert(alert, adapter)
        except BaseException as exc:
            errors.append(exc)
        finally:
            engine.dispose()
            adapter.dispose()

    threads = [threading.Thread(target=worker) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert paths(http_server) == ["/hook"]
    engine = create_state_engine(postgres_url)
    assert StateManager(engine).get_state("low_metric").consecutive_alerts == 80
    engine.dispose()


def run_sequence(
    executor: AlertExecutor,
    adapter: DatabaseAdapter,
    alert: AlertConfig,
    data: Path,
    clock: FakeClock,
    values: list[float],
    step_minutes: float = 1,
) -> list[bool]:
    notified = []
    for value in values:
        make_data_db(data, value)
        notified.append(executor.execute_alert(alert, adapter).notify)
        clock.advance(minutes=step_minutes)
    return notified


def test_minimum_interval_and_silence_hold(
    tmp_path: Path, state_db_url: str, http_server: HTTPTestServer
) -> None:
    clock = FakeClock()
    data = tmp_path / "data.db"
    adapter = DatabaseAdapter(create_data_engine(make_data_db(data)))
    engine = create_state_engine(state_db_url)
    executor = AlertExecutor(engine, factory(), clock=clock)
    hook = [{"channel": "webhook", "webhook_url": http_server.url_for("/hook")}]
    alert = make_alert(hook, min_interval="1h")

    # ALERT, OK, ALERT inside the hour: only the first notifies; after the hour it notifies again
    assert run_sequence(executor, adapter, alert, data, clock, [5, 50, 5, 50]) == [
        True,
        False,
        False,
        False,
    ]
    clock.advance(hours=1)
    assert run_sequence(executor, adapter, alert, data, clock, [5]) == [True]

    # silenced: a new incident while silenced is not notified
    quiet = make_alert(hook, name="quiet")
    StateManager(engine, clock).silence_alert(
        "quiet", until=clock.now + __import__("datetime").timedelta(hours=2)
    )
    assert run_sequence(executor, adapter, quiet, data, clock, [50, 5]) == [False, False]
    StateManager(engine, clock).unsilence_alert("quiet")
    assert run_sequence(executor, adapter, quiet, data, clock, [50, 5]) == [False, True]
    assert len(http_server.requests) == 3
    engine.dispose()
    adapter.dispose()


def test_channel_failing_three_times_then_succeeding_delivers_once(
    stores: DataAndState, http_server: HTTPTestServer
) -> None:
    http_server.respond(500, 502, 503)
    adapter, engine = stores
    executor = AlertExecutor(engine, factory())
    alert = make_alert([{"channel": "webhook", "webhook_url": http_server.url_for("/hook")}])
    result = executor.execute_alert(alert, adapter)

    assert [n.status for n in result.notifications] == ["sent"]
    assert len(http_server.requests) == 4
    keys = {r.headers.get("idempotency-key") for r in http_server.requests}
    assert keys == {str(result.notifications[0].notification_id)}
    record = ExecutionHistory(engine).get_recent_executions("low_metric", 1)[0]
    assert record.notification_sent and record.notification_error is None


def test_endpoint_down_is_retried_by_a_later_run(
    stores: DataAndState, http_server: HTTPTestServer
) -> None:
    clock = FakeClock()
    http_server.respond(503, 503, 503, 503)
    adapter, engine = stores
    executor = AlertExecutor(engine, factory(), clock=clock)
    alert = make_alert([{"channel": "webhook", "webhook_url": http_server.url_for("/hook/tok3n")}])

    first = executor.execute_alert(alert, adapter)
    assert first.status == "failure"  # the run itself is recorded, whatever the channel did
    assert [n.status for n in first.notifications] == ["pending"]
    record = ExecutionHistory(engine).get_recent_executions("low_metric", 1)[0]
    assert "503" in (record.notification_error or "")
    assert "tok3n" not in (record.notification_error or "")

    assert executor.deliver_pending([alert]) == []  # not due yet
    clock.advance(minutes=2)
    retried = executor.deliver_pending([alert])
    assert [o.status for o in retried] == ["sent"]
    assert executor.deliver_pending([alert]) == []
    assert [r.headers.get("idempotency-key") for r in http_server.requests].count(
        str(first.notifications[0].notification_id)
    ) == 5
    record = ExecutionHistory(engine).get_recent_executions("low_metric", 1)[0]
    assert record.notification_sent and record.notification_error is None


def test_permanent_failure_is_recorded_not_retried(
    stores: DataAndState, http_server: HTTPTestServer
) -> None:
    http_server.respond(404)
    adapter, engine = stores
    executor = AlertExecutor(engine, factory())
    alert = make_alert([{"channel": "webhook", "webhook_url": http_server.url_for("/gone")}])
    result = executor.execute_alert(alert, adapter)
    assert [n.status for n in result.notifications] == ["failed"]
    assert len(http_server.requests) == 1
    record = ExecutionHistory(engine).get_recent_executions("low_metric", 1)[0]
    assert "404" in (record.notification_error or "")
    assert not record.notification_sent


def test_email_without_smtp_host_is_a_recorded_failure(
    stores: DataAndState,
) -> None:
    adapter, engine = stores
    executor = AlertExecutor(engine, factory())
    alert = make_alert([{"channel": "email", "recipients": ["oncall@example.com"]}])
    result = executor.execute_alert(alert, adapter)
    assert [n.status for n in result.notifications] == ["failed"]
    assert "SMTP_HOST" in (result.notifications[0].error or "")


def test_query_errors_are_recorded(
    stores: DataAndState,
) -> None:
    adapter, engine = stores
    executor = AlertExecutor(engine, factory())
    cases = {
        "no_row": ("SELECT 'OK' AS status FROM metric WHERE 1 = 0", "no row"),
        "no_status": ("SELECT 1 AS value", "status"),
        "bad_status": ("SELECT 'MAYBE' AS status", "MAYBE"),
        "missing_table": ("SELECT status FROM nowhere", "nowhere"),
    }
    for name, (query, expected) in cases.items():
        result = executor.execute_alert(make_alert([], name=name, query=query), adapter)
        assert result.status == "error", name
        assert expected in (result.error or ""), (name, result.error)
    with engine.connect() as conn:
        statuses = (
            conn.execute(sa.text("SELECT status FROM sqlsentinel_executions")).scalars().all()
        )
    assert statuses == ["error"] * 4


def test_a_delivery_answered_while_the_state_database_is_away_is_sent_once(
    tmp_path: Path,
    postgres_databases: Any,
    http_server: HTTPTestServer,
) -> None:
    """The webhook answers 200 while the state database refuses connections: the notifier keeps
    its lease and records 'sent' when the database is back, instead of letting the lease expire
    and another notifier send the row again."""
    from sentinel.delivery import Deliverer

    state_url = postgres_databases.create("delivery")
    adapter = DatabaseAdapter(create_data_engine(make_data_db(tmp_path / "data.db")))
    engine = create_state_engine(state_url)
    alert = make_alert([{"channel": "webhook", "webhook_url": http_server.url_for("/hook")}])
    executor = AlertExecutor(engine, factory(), dispatch=lambda outbox_id, alert: None)
    [queued] = executor.execute_alert(alert, adapter, triggered_by="CLI").notifications
    assert queued.notification_id is not None and queued.status == "pending"
    http_server.respond(200, delay=2.0)  # the database goes away while the webhook answers

    def outage() -> None:
        while not http_server.requests:
            threading.Event().wait(0.01)
        postgres_databases.refuse_connections(state_url)
        threading.Event().wait(4)
        postgres_databases.allow_connections(state_url)

    saboteur = threading.Thread(target=outage)
    saboteur.start()
    outcome = Deliverer(engine, factory()).deliver(queued.notification_id, {alert.name: alert})
    saboteur.join()
    assert outcome is not None and outcome.status == "sent"
    assert len(http_server.requests) == 1
    with engine.connect() as conn:
        status = conn.execute(sa.text("SELECT status FROM sqlsentinel_outbox")).scalar_one()
    assert status == "sent"
    engine.dispose()
    adapter.dispose()


def test_a_dry_run_says_which_notice_it_would_send_and_honours_a_new_silence(
    tmp_path: Path, state_db_url: str, http_server: HTTPTestServer
) -> None:
    from datetime import datetime

    data = make_data_db(tmp_path / "data.db", value=5)
    adapter = DatabaseAdapter(create_data_engine(data))
    engine = create_state_engine(state_db_url)
    webhook = [{"channel": "webhook", "webhook_url": http_server.url_for("/hook")}]
    alert = make_alert(webhook, notify_on_recovery=True)
    executor = AlertExecutor(engine, factory())
    assert executor.execute_alert(alert, adapter, triggered_by="CLI").notify  # fired, notified
    make_data_db(tmp_path / "data.db", value=50)
    adapter.dispose()  # the next query sees the new value
    recovery = executor.execute_alert(alert, adapter, dry_run=True)
    assert [(n.event, n.status) for n in recovery.notifications] == [("resolved", "dry-run")]

    fresh = make_alert(webhook, name="fresh")
    make_data_db(tmp_path / "data.db", value=5)
    adapter.dispose()
    firing = executor.execute_alert(fresh, adapter, dry_run=True)
    assert [n.event for n in firing.notifications] == ["firing"]
    StateManager(engine).silence_alert("fresh", until=datetime(2099, 1, 1))
    silenced = executor.execute_alert(fresh, adapter, dry_run=True)
    assert silenced.notify is False and silenced.notifications == []
    assert len(http_server.requests) == 1  # the dry runs sent nothing
    engine.dispose()
    adapter.dispose()
