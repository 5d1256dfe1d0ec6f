"""A deployment: one alerts file with its state database, data database and executor, wired once.

The CLI, the API, the in-process scheduler and each worker (``workers.live_deployment``) hold one
``Deployment`` instead of assembling engines, adapters and executors themselves, so every entry
point resolves the state database and builds the pieces the same way. ("Service" is kept for what
the spec calls a notification channel's sender, ``NotificationService``.)
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sentinel import defaults
from sentinel.config import AlertConfig, SentinelConfig, load_config
from sentinel.errors import Issue, UsageError
from sentinel.models import ExecutionRecord, ExecutionResult, utcnow

if TYPE_CHECKING:
    from sqlalchemy.engine import Engine

    from sentinel.database import DatabaseAdapter
    from sentinel.executor import AlertExecutor
    from sentinel.notifications import NotificationFactory
    from sentinel.store.overview import AlertOverview
    from sentinel.store.silences import Silence


def resolve_state_url(explicit: str | None, config: SentinelConfig | None) -> str:
    """``--state-db``, then ``STATE_DB_URL``, then the config's own database."""
    url = explicit or os.environ.get("STATE_DB_URL")
    if url:
        return url
    if config is None:
        raise UsageError("no state database: pass --state-db URL or set STATE_DB_URL")
    return config.database.url


@dataclass(frozen=True)
class Unsilenced:
    """What ``unsilence`` did: how many silences it ended, and which still silence the alert."""

    ended: int
    #: Silences by label matchers that still cover the alert (unsilencing by name keeps them).
    still_silenced_by: list[Silence] = field(default_factory=list)


class Deployment:
    """Everything a command needs, built lazily from one config file."""

    def __init__(
        self,
        config: SentinelConfig,
        state_db_url: str | None = None,
        *,
        clock: Callable[[], datetime] = utcnow,
        notification_factory: NotificationFactory | None = None,
        threads: int | None = None,
    ):
        self.config = config
        self.state_db_url = resolve_state_url(state_db_url, config)
        self.clock = clock
        #: Threads of this process that use the engines at once: it sizes their pools (the
        #: connection budget); ``None`` keeps SQLAlchemy's default pool.
        self.threads = threads
        self._factory = notification_factory
        self._state_engine: Engine | None = None
        #: The dry runs' read-only view of the state, built once and disposed by ``close()``.
        self._read_only_engine: Engine | None = None
        self._adapter: DatabaseAdapter | None = None

    @classmethod
    def from_file(cls, path: str, state_db_url: str | None = None, **kwargs: Any) -> Deployment:
        return cls(load_config(path), state_db_url, **kwargs)

    # -- the pieces -------------------------------------------------------------------------
    @property
    def state_engine(self) -> Engine:
        if self._state_engine is None:
            from sentinel.store import create_state_engine

            self._state_engine = create_state_engine(self.state_db_url, threads=self.threads)
        return self._state_engine

    @property
    def adapter(self) -> DatabaseAdapter:
        if self._adapter is None:
            from sentinel.database import DatabaseAdapter, create_data_engine

            db = self.config.database
            engine = create_data_engine(
                db.url, timeout=db.timeout, pool_size=db.pool_size, threads=self.threads
            )
            self._adapter = DatabaseAdapter(engine, timeout=db.timeout)
        return self._adapter

    @property
    def notification_factory(self) -> NotificationFactory:
        if self._factory is None:
            from sentinel.notifications import NotificationFactory

            self._factory = NotificationFactory()
        return self._factory

    def executor(self, dry_run: bool = False) -> AlertExecutor:
        from sentinel.executor import AlertExecutor

        engine = self._read_only_state_engine() if dry_run else self.state_engine
        return AlertExecutor(engine, self.notification_factory, clock=self.clock)

    def _read_only_state_engine(self) -> Engine | None:
        """For dry runs: the existing state, opened so that nothing can be created or written.

        Built once (its pool is disposed by ``close()``). ``None`` while a SQLite
        state file does not exist yet (opening it would create it); asked again at the next run.
        """
        if self._read_only_engine is None:
            from sentinel.store.engine import create_state_engine

            self._read_only_engine = create_state_engine(self.state_db_url, read_only=True)
        return self._read_only_engine

    def channel_warnings(self) -> list[Issue]:
        """Channels in use that cannot send (email with no SMTP host): said, never skipped."""
        users: dict[str, list[str]] = {}
        for alert in self.config.alerts:
            for target in alert.notify:
                users.setdefault(target.channel, []).append(alert.name)
        warnings = []
        for channel, names in users.items():
            missing = self.notification_factory.missing_settings(channel)
            if missing:
                used_by = ", ".join(sorted(set(names)))
                message = f"{missing}; notifications of {used_by} will fail"
                warnings.append(
                    Issue(self.config.path, None, "notify", message, severity="warning")
                )
        return warnings

    # -- commands ---------------------------------------------------------------------------
    def select_alerts(self, name: str | None) -> list[AlertConfig]:
        if name:
            return [self.config.alert(name)]
        return [a for a in self.config.alerts if a.enabled]

    def run(
        self, alert_name: str | None = None, dry_run: bool = False, triggered_by: str = "CLI"
    ) -> list[ExecutionResult]:
        alerts = self.select_alerts(alert_name)
        executor = self.executor(dry_run)
        if not dry_run:
            self.remember_config()
        results = [
            executor.execute_alert(alert, self.adapter, triggered_by=triggered_by, dry_run=dry_run)
            for alert in alerts
        ]
        if not dry_run:
            executor.deliver_pending(self.config.alerts)
        return results

    def remember_config(self) -> None:
        if self.config.path and self.config.raw_text is not None:
            from sentinel.store.configs import remember_config
            from sentinel.store.schema import ensure_schema

            ensure_schema(self.state_engine)
            remember_config(
                self.state_engine,
                os.path.abspath(self.config.path),
                self.config.raw_text,
                self.clock(),
            )

    def history(
        self, alert_name: str | None = None, limit: int = defaults.HISTORY_LIMIT
    ) -> tuple[list[ExecutionRecord], dict[str, Any]]:
        from sentinel.store import ExecutionHistory

        if alert_name:
            self.config.alert(alert_name)
        history = ExecutionHistory(self.state_engine)
        return history.get_recent_executions(alert_name, limit), history.get_statistics(alert_name)

    def wait_for_messages(self, message_ids: list[str], timeout: float) -> list[ExecutionRecord]:
        """Poll the history until every message's run has finished, or ``timeout`` passes."""
        import time

        from sentinel.store import ExecutionHistory

        history = ExecutionHistory(self.state_engine)
        deadline = time.monotonic() + timeout
        while True:
            records = history.for_messages(message_ids)
            if len(records) >= len(message_ids) or time.monotonic() >= deadline:
                return records
            time.sleep(0.2)

    def status(self) -> list[AlertOverview]:
        """Every alert's overview, read in a fixed number of queries (as the API reads it)."""
        from sentinel.store.overview import alert_overviews

        return alert_overviews(self.state_engine, self.config.alerts, self.clock())

    def silence(
        self,
        alert_name: str | None,
        until: datetime,
        *,
        matchers: dict[str, str] | None = None,
        reason: str | None = None,
        created_by: str | None = None,
    ) -> int:
        """Silence one alert by name, or every alert whose labels match; returns the silence id."""
        from sentinel.store import StateManager

        if alert_name is not None:
            self.config.alert(alert_name)
        if matchers and not any(
            all(a.labels.get(k) == v for k, v in matchers.items()) for a in self.config.alerts
        ):
            raise UsageError(f"no alert has the labels {matchers}")
        return StateManager(self.state_engine, self.clock).silence_alert(
            alert_name, until, matchers=matchers, reason=reason, created_by=created_by
        )

    def unsilence(self, alert_name: str | None = None, silence_id: int | None = None) -> Unsilenced:
        """End an alert's own silences (by name), or one silence by id.

        Silences by label matchers are not an alert's own: they cover every alert they match, so
        ending one alert's silences leaves them, and the result says which still cover it (their
        ids for ``unsilence --id``).
        """
        from sentinel.store.schema import ensure_schema
        from sentinel.store.silences import end_silences

        alert = self.config.alert(alert_name) if alert_name is not None else None
        ensure_schema(self.state_engine)
        ended = end_silences(
            self.state_engine, self.clock(), alert_name=alert_name, silence_id=silence_id
        )
        remaining = self.silences_covering(alert.name) if alert is not None else []
        return Unsilenced(ended=ended, still_silenced_by=remaining)

    def silences_covering(self, alert_name: str) -> list[Silence]:
        """The silences that apply to this alert, by name or by its labels, and have not ended
        (newest first)."""
        from sentinel.store.schema import ensure_schema
        from sentinel.store.silences import list_silences

        alert = self.config.alert(alert_name)
        ensure_schema(self.state_engine)
        found = list_silences(self.state_engine, self.clock())
        return [s for s in found if s.matches(alert.name, alert.labels)]

    def silences(self, include_expired: bool = False) -> list[Silence]:
        from sentinel.store.schema import ensure_schema
        from sentinel.store.silences import list_silences

        ensure_schema(self.state_engine)
        return list_silences(self.state_engine, self.clock(), include_expired)

    def close(self) -> None:
        if self._state_engine is not None:
            self._state_engine.dispose()
        if self._read_only_engine is not None:
            self._read_only_engine.dispose()
        if self._adapter is not None:
            self._adapter.dispose()
