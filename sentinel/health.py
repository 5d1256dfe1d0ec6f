"""Whether a deployment's dependencies answer now: the state database, the broker, the data
database. One function serves ``/ready``, ``/metrics`` and ``sqlsentinel status``, so the three
can never disagree about an outage.

Readiness depends on the state database and the broker: without them nothing can run. A data
database that is away is reported, but does not make a process unready: its alerts record the
error as their outcome (as they should), and every other alert still runs.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime

from sentinel.deployment import Deployment
from sentinel.outages import Dependency, OutageLog
from sentinel.redact import one_line, safe_url

STATE_DB, BROKER, DATABASE = "state_db", "broker", "database"
# This process's outage log names dependencies in words; the checks name them as keys.
_OUTAGE_NAMES = {STATE_DB: Dependency.STATE_DB, BROKER: Dependency.BROKER, DATABASE: "database"}


@dataclass(frozen=True)
class DependencyCheck:
    name: str
    target: str
    ok: bool
    error: str | None = None
    #: Whether the process is unready without it.
    required: bool = True
    #: Since when this process has seen it fail (``None``: not failing, or not seen by it).
    down_since: datetime | None = None


@dataclass(frozen=True)
class Health:
    checks: list[DependencyCheck]
    queue_depths: dict[str, int] = field(default_factory=dict)

    @property
    def ready(self) -> bool:
        return all(c.ok for c in self.checks if c.required)


def check_dependencies(deployment: Deployment, outage_log: OutageLog | None = None) -> Health:
    """Ask each dependency now (a trivial query, a queue length); never raises.

    A long-running process passes its ``outage_log``: the checks then count as attempts (one
    log line per outage) and say since when each dependency has been failing. A one-shot command
    passes none, and says what it found itself."""
    import sqlalchemy as sa

    from sentinel.fleet import broker_url, load_fleet

    checks = []
    try:
        with deployment.state_engine.connect() as conn:
            conn.execute(sa.text("SELECT 1"))
        checks.append(_check(outage_log, STATE_DB, deployment.state_db_url, None))
    except Exception as exc:
        checks.append(_check(outage_log, STATE_DB, deployment.state_db_url, one_line(exc)))
    depths: dict[str, int] = {}
    url = broker_url()
    if url:
        try:
            fleet = load_fleet()
            depths = fleet.queue_depths() if fleet is not None else {}
            checks.append(_check(outage_log, BROKER, url, None))
        except Exception as exc:
            checks.append(_check(outage_log, BROKER, url, one_line(exc)))
    database = deployment.config.database.url
    error = deployment.adapter.connection_error()
    checks.append(_check(outage_log, DATABASE, database, error, required=False))
    return Health(checks, depths)


def _check(
    outage_log: OutageLog | None,
    name: str,
    url: str,
    error: str | None,
    *,
    required: bool = True,
) -> DependencyCheck:
    outage = None
    if outage_log is not None:
        dependency = _OUTAGE_NAMES[name]
        if error is None:
            outage_log.ok(dependency)
        else:
            outage_log.failed(dependency, error)
        outage = outage_log.current().get(dependency)
    return DependencyCheck(
        name=name,
        target=safe_url(url),
        ok=error is None,
        error=error,
        required=required,
        down_since=outage.since if outage is not None and error is not None else None,
    )
