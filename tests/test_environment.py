"""``SENTINEL_<NAME>`` overrides: read where they are used, never when a module is imported.

A process (or a test) that sets one before it builds the deliverer, the executor, recovery, the
scheduler loop or the broker gets it; a value that cannot be used is one line naming the variable.
"""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml

from sentinel import defaults, environment
from sentinel.config import AlertConfig, NotificationConfig
from sentinel.database import DatabaseAdapter, create_data_engine
from sentinel.delivery import Deliverer
from sentinel.errors import ConfigurationError, NotificationError
from sentinel.executor import AlertExecutor
from sentinel.models import AlertEvent
from sentinel.notifications import NotificationFactory, RetryPolicy
from sentinel.notifications.base import NotificationService
from sentinel.notifications.webhook import WebhookNotificationService
from sentinel.recovery import RunRecovery
from sentinel.scheduling.loop import ScheduleLoop
from sentinel.store import create_state_engine
from sentinel.store.tables import outbox
from tests.alerting import FakeClock, make_alert, make_data_db
from tests.commands import sqlsentinel

OVERRIDDEN = {
    "SENTINEL_STALE_CLAIM_GRACE_SECONDS": "10",
    "SENTINEL_DELIVERY_LEASE_SECONDS": "20",
    "SENTINEL_DELIVERY_MAX_ROUNDS": "2",
    "SENTINEL_DELIVERY_ROUND_BACKOFF_SECONDS": "7,9",
    "SENTINEL_DELIVERY_INITIAL_WAIT_SECONDS": "0.2",
    "SENTINEL_CATCH_UP_GRACE_SECONDS": "120",
}


class RecordingWebhook(WebhookNotificationService):
    """A webhook that sends nothing: it notes the outbox row's lease while it "sends", then
    fails as a 503 does (worth another round)."""

    def __init__(self, engine: sa.Engine) -> None:
        super().__init__(1.0, RetryPolicy(attempts=1))
        self.engine = engine
        self.leases: list[datetime] = []

    def _send_once(
        self, event: AlertEvent, config: NotificationConfig, alert: AlertConfig | None
    ) -> None:
        query = sa.select(outbox.c.lease_until).where(outbox.c.id == event.notification_id)
        with self.engine.connect() as conn:
            self.leases.append(conn.execute(query).scalar_one())
        raise NotificationError("webhook: HTTP 503", retryable=True)


class Channels(NotificationFactory):
    def __init__(self, webhook: RecordingWebhook) -> None:
        super().__init__(smtp_host="")
        self.webhook = webhook

    def create_service(self, channel: str) -> NotificationService:
        return self.webhook


def test_importing_reads_no_environment() -> None:
    """Even unusable values: importing never fails, and the constants stay the documented ones."""
    code = (
        "from sentinel import defaults, delivery, executor, recovery\n"
        "from sentinel.scheduling import loop\n"
        "from sentinel.notifications import retry\n"
        "import workers.broker\n"
        "print(defaults.STALE_CLAIM_GRACE_SECONDS, defaults.DELIVERY_LEASE_SECONDS,"
        " defaults.DELIVERY_MAX_ROUNDS, *defaults.DELIVERY_ROUND_BACKOFF_SECONDS,"
        " defaults.DELIVERY_INITIAL_WAIT_SECONDS, defaults.CATCH_UP_GRACE_SECONDS)\n"
    )
    documented = "60.0 300.0 6 60.0 300.0 1800.0 7200.0 21600.0 1.0 600.0"
    inherited = {k: v for k, v in os.environ.items() if not k.startswith("SENTINEL_")}
    for value in ("20", "abc"):
        env = inherited | {name: value for name in [*OVERRIDDEN, "SENTINEL_MAX_LATENESS_SECONDS"]}
        proc = subprocess.run(
            [sys.executable, "-c", code],
            env=env,
            capture_output=True,
            text=True,
            check=False,
            timeout=60,
        )
        assert proc.returncode == 0, proc.stderr
        assert proc.stdout.strip() == documented


def test_a_deliverer_built_after_setting_them_leases_and_backs_off_as_they_say(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    engine = create_state_engine(f"sqlite:///{tmp_path / 'state.db'}")
    adapter = DatabaseAdapter(create_data_engine(make_data_db(tmp_path / "data.db")))
    clock = FakeClock()
    alert = make_alert([{"channel": "webhook", "webhook_url": "http://127.0.0.1:9/hook"}])
    webhook = RecordingWebhook(engine)
    executor = AlertExecutor(engine, Channels(webhook), clock=clock, dispatch=lambda i, a: None)
    [queued] = executor.execute_alert(alert, adapter, triggered_by="CLI").notifications
    assert queued.notification_id is not None and queued.status == "pending"

    for name, value in OVERRIDDEN.items():
        monkeypatch.setenv(name, value)
    assert defaults.DELIVERY_LEASE_SECONDS == 300.0  # the constant is what it says
    deliverer = Deliverer(engine, Channels(webhook), clock)

    first = deliverer.deliver(queued.notification_id, {alert.name: alert})
    assert first is not None and first.status == "pending"
    assert webhook.leases == [clock.now + timedelta(seconds=20)]
    assert first.error is not None and "will retry at 2026-03-01 12:00:07Z" in first.error

    clock.advance(seconds=6)
    assert deliverer.deliver(queued.notification_id, {alert.name: alert}) is None  # not yet due
    clock.advance(seconds=1)
    second = deliverer.deliver(queued.notification_id, {alert.name: alert})
    assert second is not None and second.status == "failed"  # two rounds, not six
    engine.dispose()
    adapter.dispose()


def test_the_objects_that_use_them_read_them_when_built(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    config = tmp_path / "alerts.yaml"
    alert = {"name": "a", "query": "SELECT 'OK' AS status", "schedule": "* * * * *"}
    config.write_text(yaml.safe_dump({"database": {"url": "sqlite://"}, "alerts": [alert]}))
    engine = create_state_engine(f"sqlite:///{tmp_path / 'state.db'}")
    monkeypatch.setenv("SENTINEL_METRICS", "off")
    from workers.broker import middleware
    from workers.middleware.stale_runs import RecordStaleRuns

    def built() -> tuple[float, float, float, timedelta, timedelta, float, float]:
        recovery = RunRecovery(engine, lambda: {}, lambda: 30.0)
        [stale_runs] = [m for m in middleware() if isinstance(m, RecordStaleRuns)]
        return (
            AlertExecutor(engine, NotificationFactory(smtp_host="")).stale_claim_grace_seconds,
            recovery.grace,
            RetryPolicy().initial_wait,
            recovery.catch_up,
            ScheduleLoop(str(config), lambda runs: None).grace,
            (stale_runs.max_age or 0) / 1000,
            Deliverer(engine, NotificationFactory(smtp_host="")).lease_seconds,
        )

    ten_minutes = timedelta(minutes=10)
    assert built() == (60.0, 60.0, 1.0, ten_minutes, ten_minutes, 600.0, 300.0)
    for name, value in OVERRIDDEN.items():
        monkeypatch.setenv(name, value)
    two_minutes = timedelta(minutes=2)
    assert built() == (10.0, 10.0, 0.2, two_minutes, two_minutes, 120.0, 20.0)
    monkeypatch.setenv("SENTINEL_MAX_LATENESS_SECONDS", "1")
    assert built()[5] == 1.0
    # An explicit value is used as given.
    assert RunRecovery(engine, lambda: {}, lambda: 30.0, grace_seconds=5).grace == 5
    assert ScheduleLoop(str(config), lambda runs: None, grace=ten_minutes).grace == ten_minutes
    engine.dispose()


def test_empty_is_unset(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_DELIVERY_LEASE_SECONDS", " ")
    monkeypatch.setenv("SENTINEL_DELIVERY_ROUND_BACKOFF_SECONDS", "")
    assert environment.delivery_lease_seconds() == defaults.DELIVERY_LEASE_SECONDS
    assert environment.delivery_round_backoff_seconds() == defaults.DELIVERY_ROUND_BACKOFF_SECONDS
    monkeypatch.setenv("SENTINEL_DELIVERY_ROUND_BACKOFF_SECONDS", " 15 ")
    assert environment.delivery_round_backoff_seconds() == (15.0,)


SECONDS = "a number of seconds of at least 0"
COUNT = "a whole number of at least 1"
LIST = "numbers of seconds (each at least 0) separated by commas"


@pytest.mark.parametrize(
    ("name", "value", "expected"),
    [
        ("DELIVERY_LEASE_SECONDS", "abc", SECONDS),
        ("STALE_CLAIM_GRACE_SECONDS", "-1", SECONDS),
        ("CATCH_UP_GRACE_SECONDS", "nan", SECONDS),
        ("MAX_LATENESS_SECONDS", "inf", SECONDS),
        ("DELIVERY_INITIAL_WAIT_SECONDS", "1s", SECONDS),
        ("DELIVERY_MAX_ROUNDS", "2.5", COUNT),
        ("DELIVERY_MAX_ROUNDS", "0", COUNT),
        ("DELIVERY_ROUND_BACKOFF_SECONDS", "60,,300", LIST),
        ("DELIVERY_ROUND_BACKOFF_SECONDS", "60,-5", LIST),
    ],
)
def test_an_unusable_value_is_a_configuration_error_naming_it(
    monkeypatch: pytest.MonkeyPatch, name: str, value: str, expected: str
) -> None:
    monkeypatch.setenv(f"SENTINEL_{name}", value)
    with pytest.raises(ConfigurationError) as info:
        getattr(environment, name.lower())()
    assert str(info.value) == f"SENTINEL_{name} must be {expected}, not {value!r}"


def test_the_cli_says_so_in_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("REDIS_URL", "BROKER_URL"):
        monkeypatch.delenv(name, raising=False)  # the scheduler below runs embedded
    config = tmp_path / "alerts.yaml"
    data = make_data_db(tmp_path / "data.db")
    alert = {"name": "a", "query": "SELECT 'OK' AS status", "schedule": "* * * * *"}
    config.write_text(yaml.safe_dump({"database": {"url": data}, "alerts": [alert]}))
    state = f"sqlite:///{tmp_path / 'state.db'}"
    for command, name in (
        ("run", "SENTINEL_DELIVERY_LEASE_SECONDS"),
        ("scheduler", "SENTINEL_CATCH_UP_GRACE_SECONDS"),
    ):
        proc = sqlsentinel(command, str(config), "--state-db", state, env={name: "abc"})
        assert proc.returncode == 2, proc.stderr
        assert proc.stderr.splitlines() == [
            f"error: {name} must be a number of seconds of at least 0, not 'abc'"
        ]
