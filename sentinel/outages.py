"""One log line per outage, not one per attempt: what a process knows about its dependencies.

A long-running process (scheduler, worker, notifier, API) keeps running while the state database,
the broker or a data database is away, retrying with back-off. Logging every attempt would bury
the one line an operator needs, so a dependency that fails is logged once when it goes away and
once when it is back (how long, how many attempts failed); attempts in between are counted. The
registry is per process and thread-safe, and health checks read it to say since when a dependency
has been failing.
"""

from __future__ import annotations

import logging
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sentinel.models import utcnow
from sentinel.redact import one_line


class Dependency(StrEnum):
    """What a process depends on, as its log lines and health checks name it."""

    STATE_DB = "state database"
    BROKER = "broker"
    REDIS = "redis"  # the scheduler's lease and slot keys (the broker too, unless it is RabbitMQ)


@dataclass
class Outage:
    since: datetime
    error: str
    failures: int = 1


class OutageLog:
    """Tracks which dependencies are failing now; logs the start and the end of each outage."""

    def __init__(
        self,
        logger: logging.Logger | None = None,
        clock: Callable[[], datetime] = utcnow,
    ):
        self.log = logger or logging.getLogger("sentinel.outages")
        self.clock = clock
        self._lock = threading.Lock()
        self._down: dict[str, Outage] = {}

    def failed(self, dependency: str, error: BaseException | str) -> None:
        """An attempt failed: logged if it starts an outage, counted otherwise."""
        message = one_line(error) if isinstance(error, BaseException) else error
        with self._lock:
            outage = self._down.get(dependency)
            if outage is not None:
                outage.failures += 1
                outage.error = message
                return
            self._down[dependency] = Outage(self.clock(), message)
        self.log.error("%s unavailable: %s (retrying until it is back)", dependency, message)

    def ok(self, dependency: str, attempt_started: datetime | None = None) -> None:
        """An attempt succeeded: ends the outage, if there was one (cheap when there was not).

        With many threads, an attempt that began before another thread saw the failure can
        still succeed (on a connection that was already open); ``attempt_started`` lets such a
        success leave the outage open, so one outage stays one pair of lines."""
        if dependency not in self._down:
            return
        with self._lock:
            outage = self._down.get(dependency)
            if outage is None or (attempt_started is not None and attempt_started < outage.since):
                return
            del self._down[dependency]
        if outage is not None:
            seconds = (self.clock() - outage.since).total_seconds()
            self.log.warning(
                "%s is back after %.0fs (%d failed attempts)", dependency, seconds, outage.failures
            )

    def current(self) -> dict[str, Outage]:
        """The dependencies failing now, with since when and the latest error."""
        with self._lock:
            return {name: Outage(o.since, o.error, o.failures) for name, o in self._down.items()}

    @contextmanager
    def watch(self, dependency: str, *faults: type[BaseException]) -> Iterator[None]:
        """Record how the block went for ``dependency``: ``faults`` are recorded and re-raised."""
        started = self.clock()
        try:
            yield
        except faults as exc:
            self.failed(dependency, exc)
            raise
        self.ok(dependency, attempt_started=started)


#: This process's outages (one registry per process: every thread reports to it).
outages = OutageLog()
