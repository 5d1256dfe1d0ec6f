"""A real fleet for tests: a Redis server of the test's own, ``dramatiq workers`` and
``sqlsentinel scheduler`` processes, all on loopback, each test in its own namespace."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
import yaml

from tests.databases import CI
from tests.servers import HTTPTestServer

__all__ = ["FleetHarness", "RedisServer", "fleet", "rabbitmq_url", "redis_server"]

BIN = Path(sys.executable).parent


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


class RedisServer:
    """``redis-server`` on a free loopback port, nothing on disk; can be restarted mid-test."""

    def __init__(self, directory: Path):
        self.port = free_port()
        self.directory = directory
        self.url = f"redis://127.0.0.1:{self.port}/0"
        self.process: subprocess.Popen[bytes] | None = None

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                "redis-server", "--port", str(self.port), "--bind", "127.0.0.1",
                "--save", "", "--appendonly", "no", "--dir", str(self.directory),
            ],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
        )  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return
            except OSError:
                time.sleep(0.05)
        raise RuntimeError("redis-server did not start")

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.wait()
            self.process = None

    def restart(self) -> None:
        self.stop()
        self.start()


@pytest.fixture
def redis_server(tmp_path: Path) -> Iterator[RedisServer]:
    if shutil.which("redis-server") is None:
        if CI:
            raise RuntimeError("redis-server is not installed")
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path)
    server.start()
    yield server
    server.stop()


RABBITMQ_URL = os.environ.get("SENTINEL_TEST_RABBITMQ", "amqp://guest:guest@127.0.0.1:5672/%2F")


@pytest.fixture
def rabbitmq_url() -> str:
    """RabbitMQ on loopback (CI starts it); a test's queues live under its own namespace."""
    try:
        with socket.create_connection(("127.0.0.1", 5672), timeout=2):
            pass
    except OSError as exc:
        if CI:
            raise RuntimeError(f"RabbitMQ is not available: {exc}") from exc
        pytest.skip(f"RabbitMQ is not available: {exc}")
    return RABBITMQ_URL


def delete_rabbitmq_queues(url: str, namespace: str) -> None:
    """Drop the queues Dramatiq declared for ``namespace`` (main, delay and dead-letter)."""
    import pika

    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        for queue in ("alerts", "notifications"):
            for suffix in ("", ".DQ", ".XQ"):
                channel.queue_delete(f"{namespace}.{queue}{suffix}")
    finally:
        connection.close()


@dataclass
class FleetHarness:
    """Starts and kills fleet processes; their logs go to files under ``directory``."""

    directory: Path
    env: dict[str, str]
    processes: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def _start(self, name: str, args: list[str]) -> subprocess.Popen[bytes]:
        log = open(self.directory / f"{name}-{len(self.processes)}.log", "wb")  # noqa: SIM115
        process = subprocess.Popen(
            args, env=self.env, stdout=log, stderr=subprocess.STDOUT, start_new_session=True
        )
        log.close()
        self.processes.append(process)
        return process

    def worker(
        self, processes: int = 1, threads: int = 4, queues: list[str] | None = None
    ) -> subprocess.Popen[bytes]:
        """``dramatiq workers`` (every queue, or the named ones under the test's namespace)."""
        args = [str(BIN / "dramatiq"), "workers.app", "-p", str(processes), "-t", str(threads)]
        if queues:
            args += ["--queues", *(f"{self.env['SENTINEL_NAMESPACE']}.{q}" for q in queues)]
        return self._start("worker", [*args, "--worker-shutdown-timeout", "5000"])

    def scheduler(self, config: str) -> subprocess.Popen[bytes]:
        return self._start("scheduler", [str(BIN / "sqlsentinel"), "-v", "scheduler", config])

    def command(self, name: str, *args: str) -> subprocess.Popen[bytes]:
        """Any ``sqlsentinel`` command, started now (``run``, ``init``, ``api`` ...)."""
        return self._start(name, [str(BIN / "sqlsentinel"), "-v", *args])

    def alive(self) -> list[subprocess.Popen[bytes]]:
        return [p for p in self.processes if p.poll() is None]

    @staticmethod
    def kill(process: subprocess.Popen[bytes], sig: int = signal.SIGKILL) -> None:
        """Kill the process and everything it started (Dramatiq's worker processes)."""
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, sig)
        process.wait(timeout=30)

    def stop_all(self) -> None:
        for process in self.processes:
            if process.poll() is None:
                self.kill(process, signal.SIGTERM)

    def logs(self) -> str:
        return "\n".join(
            p.read_text(errors="replace") for p in sorted(self.directory.glob("*.log"))
        )


@pytest.fixture
def fleet(tmp_path: Path, redis_server: RedisServer) -> Iterator[FleetHarness]:
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "STATE_DB"))}
    env.update(
        REDIS_URL=redis_server.url,
        SENTINEL_NAMESPACE=f"t{uuid.uuid4().hex[:8]}",
        SENTINEL_METRICS="off",
        PYTHONUNBUFFERED="1",
    )
    harness = FleetHarness(tmp_path, env)
    yield harness
    harness.stop_all()


# -- what fleet tests write and check -------------------------------------------------------
ALERTING = 25
QUIET = 25


def write_config(
    tmp_path: Path,
    state_url: str,
    http: HTTPTestServer | None,
    alerting: int = ALERTING,
    quiet: int = QUIET,
    *,
    query_suffix: str = "",
) -> str:
    """``alerting`` alerts that fire (each with a webhook of its own) and ``quiet`` ones, all due
    every minute, against the database ``state_url`` (the data and, by default, the state)."""
    alerts: list[dict[str, Any]] = []
    for i in range(alerting):
        alerts.append(
            {
                "name": f"fires_{i:03d}",
                "query": f"SELECT 'ALERT' AS status, {i} AS actual_value{query_suffix}",
                "schedule": "* * * * *",
                "timeout": "5s",
                "notify": [{"channel": "webhook", "webhook_url": http.url_for(f"/hook/{i}")}]
                if http is not None
                else [],
            }
        )
    for i in range(quiet):
        alerts.append(
            {
                "name": f"quiet_{i:03d}",
                "query": f"SELECT 'OK' AS status{query_suffix}",
                "schedule": "* * * * *",
            }
        )
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump({"database": {"url": state_url}, "alerts": alerts}))
    return str(path)


def configure(fleet: FleetHarness, config: str, state_url: str) -> None:
    fleet.env.update(
        SENTINEL_CONFIG=config,
        STATE_DB_URL=state_url,
        # Shorter recovery bounds, so a killed worker's run is retried within the test.
        SENTINEL_STALE_CLAIM_GRACE_SECONDS="10",
        SENTINEL_DELIVERY_LEASE_SECONDS="20",
    )


def assert_nothing_left_running(state_url: str) -> None:
    """No execution, scheduled or manual, is still ``running``."""
    engine = sa.create_engine(state_url, poolclass=sa.NullPool)
    try:
        with engine.connect() as conn:
            running = conn.execute(
                sa.text(
                    "SELECT alert_name, scheduled_for FROM sqlsentinel_executions "
                    "WHERE status = 'running'"
                )
            ).all()
    finally:
        engine.dispose()
    assert running == [], f"{len(running)} runs left running: {running[:5]}"


def runs_by_slot(state_url: str) -> dict[datetime, list[tuple[str, str]]]:
    """Scheduled runs per slot, read through the typed table (SQLite stores text)."""
    from sentinel.store.tables import executions

    engine = sa.create_engine(state_url, poolclass=sa.NullPool)
    query = sa.select(
        executions.c.scheduled_for, executions.c.alert_name, executions.c.status
    ).where(executions.c.scheduled_for.is_not(None))
    try:
        with engine.connect() as conn:
            rows = conn.execute(query).all()
    except (sa.exc.ProgrammingError, sa.exc.OperationalError):
        return {}  # no tables yet (OperationalError on SQLite), or not reachable for a moment
    finally:
        engine.dispose()
    slots: dict[datetime, list[tuple[str, str]]] = {}
    for slot, name, status in rows:
        slots.setdefault(slot, []).append((name, status))
    return slots


def wait_for_slots(
    state_url: str, slots: list[datetime], timeout: float, total: int = ALERTING + QUIET
) -> None:
    """Until every alert has a finished run for each slot (or the time is up)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = runs_by_slot(state_url)
        if all(
            len([s for _, s in found.get(slot, []) if s != "running"]) == total for slot in slots
        ):
            return
        time.sleep(1)


def minute(moment: datetime) -> datetime:
    return moment.replace(second=0, microsecond=0)


def assert_each_slot_once(
    state_url: str, slots: list[datetime], alerting: int = ALERTING, quiet: int = QUIET
) -> None:
    found = runs_by_slot(state_url)
    for slot in slots:
        names = sorted(name for name, _ in found.get(slot, []))
        expected = sorted(
            [f"fires_{i:03d}" for i in range(alerting)] + [f"quiet_{i:03d}" for i in range(quiet)]
        )
        assert names == expected, f"slot {slot}: {len(names)} runs"
        assert {s for _, s in found[slot]} <= {"success", "failure"}


def assert_notified_once(http: HTTPTestServer, alerting: int = ALERTING) -> None:
    keys = {r.headers.get("idempotency-key") for r in http.requests}
    paths = {r.path for r in http.requests}
    assert paths == {f"/hook/{i}" for i in range(alerting)}
    assert len(keys) == alerting  # one notification per alert; a retry reuses its key
