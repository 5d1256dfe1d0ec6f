"""One worker process's view of the deployment: the config from ``SENTINEL_CONFIG``, its
databases and an executor, rebuilt when the file changes (an invalid edit keeps the old one)."""

from __future__ import annotations

import gc
import logging
import os
import threading
from datetime import datetime

from sentinel.config import SentinelConfig, load_config
from sentinel.deployment import Deployment
from sentinel.errors import SQLSentinelError
from sentinel.executor import AlertExecutor, Dispatch
from sentinel.models import utcnow
from sentinel.redact import redact
from sentinel.sql_dialects import dialect_for_url
from sentinel.sqlguard import refusals

log = logging.getLogger("workers.live_deployment")


class LiveDeployment:
    """The deployment a worker process serves, rebuilt when its file changes.

    Workers outlive edits to the alerts file: each message asks for ``current()``, so an edit
    reaches the next run without a restart, and a bad edit never takes a worker down.
    """

    def __init__(self, dispatch: Dispatch | None = None, path: str | None = None):
        self.path = path or os.environ.get("SENTINEL_CONFIG") or ""
        self.dispatch = dispatch
        #: The worker's thread count (``dramatiq workers.app --threads``), set when it boots:
        #: each engine's pool opens at most that many connections (the connection budget).
        self.threads: int | None = None
        self._lock = threading.Lock()
        self._mtime: float | None = None
        self._deployment: Deployment | None = None
        self._executor: AlertExecutor | None = None
        #: (mtime, deployment, executor) last served, read without the lock while unchanged.
        self._served: tuple[float | None, Deployment, AlertExecutor] | None = None
        self._held = threading.local()  # (message id, deployment, executor) of this thread

    def current(self) -> tuple[Deployment, AlertExecutor]:
        """The deployment and executor for the config as it is on disk now."""
        if not self.path:
            raise SQLSentinelError("SENTINEL_CONFIG is not set: workers need the alerts file")
        mtime: float | None
        try:
            mtime = os.stat(self.path).st_mtime
        except OSError as exc:
            if self._deployment is None:
                raise SQLSentinelError(f"{self.path}: cannot read: {exc}") from None
            mtime = self._mtime  # keep serving the last good config
        served = self._served  # one read: a reload replaces the whole triple at once
        if served is not None and served[0] == mtime:
            return served[1], served[2]  # unchanged: no lock for the threads to queue on
        with self._lock:
            if self._deployment is None or mtime != self._mtime:
                self._reload(mtime)
            assert self._deployment is not None and self._executor is not None
            self._served = (self._mtime, self._deployment, self._executor)
            return self._deployment, self._executor

    def for_message(self, message_id: str | None) -> tuple[Deployment, AlertExecutor]:
        """:meth:`current` as looked up for this message by the middleware (one look a run)."""
        held = getattr(self._held, "value", None)
        if held is not None and message_id is not None and held[0] == message_id:
            self._held.value = None
            return held[1], held[2]
        return self.current()

    def hold(self, message_id: str, found: tuple[Deployment, AlertExecutor]) -> None:
        """Keep what :meth:`current` gave for this thread's message, for :meth:`for_message`."""
        self._held.value = (message_id, *found)

    def _reload(self, mtime: float | None) -> None:
        try:
            # Not check_sql: a refused query is its alert's error at run time, not a reason to
            # refuse the whole file; the verdicts are only learnt here (_learn_verdicts).
            config = load_config(self.path, check_sql=False)
        except SQLSentinelError as exc:
            if self._deployment is None:
                raise
            log.error("config %s not reloaded, kept the previous one: %s", self.path, redact(exc))
            self._mtime = mtime
            return
        _learn_verdicts(config)
        old = self._deployment
        self._deployment = Deployment(config, threads=self.threads)
        gc.freeze()  # the config lives for the process: keep it out of full collections
        self._executor = AlertExecutor(
            self._deployment.state_engine,
            self._deployment.notification_factory,
            dispatch=self.dispatch,
        )
        self._mtime = mtime
        if old is not None:
            log.info("config %s reloaded: %d alerts", self.path, len(config.alerts))
            old.close()


def _learn_verdicts(config: SentinelConfig) -> None:
    """Take the guard's verdicts on this config's queries from the on-disk cache, in one read.

    The guard still checks each query right before it runs (a refused query is that alert's error,
    not the worker's), but from memory: a worker whose queries the scheduler, ``validate`` or an
    earlier worker on this host already checked never imports sqlglot (tens of MB per process).
    Queries the cache lacks are parsed here once. A cache that cannot be read is only slower.
    """
    queries = [q for a in config.alerts for q in (a.query, a.details_query) if q]
    try:
        refusals(queries, dialect_for_url(config.database.url))
    except Exception as exc:  # the run-time check still guards every query
        log.warning("SQL guard verdicts not preloaded: %s", redact(exc))


_default = LiveDeployment()


def live_deployment() -> LiveDeployment:
    """The process's one instance: actors and middleware must share the engines it holds."""
    return _default


def record_skipped(alert_name: str, scheduled_for: str, reason: str) -> None:
    from sentinel.store.runs import record_skipped as store_skipped
    from sentinel.store.schema import ensure_schema

    deployment, _ = _default.current()
    ensure_schema(deployment.state_engine)
    slot = datetime.fromisoformat(scheduled_for)
    if store_skipped(deployment.state_engine, alert_name, slot, reason, utcnow()):
        log.warning(
            "execution alert=%s scheduled_for=%s status=skipped %s", alert_name, slot, reason
        )
