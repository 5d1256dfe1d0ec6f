"""Shared plumbing of the fleet benchmarks (not a benchmark itself).

A private ``redis-server`` on a free loopback port, a throw-away PostgreSQL database
(``sentinel_bench_<random>`` on 127.0.0.1:5432, dropped at the end), subprocesses started in their
own session so that they and their children (Dramatiq's worker processes) can be killed by process
group, and readings from ``/proc``: the RSS and CPU time of a process tree.

Every resource is a context manager, and :func:`exit_on_signals` turns SIGTERM/SIGHUP into
``SystemExit``, so a benchmark cleans up after itself even when it fails or is interrupted.
"""

from __future__ import annotations

import contextlib
import math
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from types import FrameType
from typing import Any, NamedTuple

import sqlalchemy as sa
import yaml

BIN = Path(sys.executable).parent
BENCH_DIR = Path(__file__).resolve().parent
POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
CLK_TCK = os.sysconf("SC_CLK_TCK")
READY = "Worker process is ready for action."


def exit_on_signals() -> None:
    """SIGTERM and SIGHUP raise SystemExit (like Ctrl-C raises KeyboardInterrupt), so every
    ``finally`` and ``with`` block runs and nothing this benchmark started is left behind."""

    def _raise(signum: int, _frame: FrameType | None) -> None:
        raise SystemExit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(signum, _raise)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextlib.contextmanager
def redis_server(directory: Path) -> Iterator[str]:
    """A private ``redis-server`` on a free loopback port, nothing on disk; yields its URL."""
    port = free_port()
    process = subprocess.Popen(
        [
            "redis-server", "--port", str(port), "--bind", "127.0.0.1", "--save", "",
            "--appendonly", "no", "--dir", str(directory),
        ],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )  # fmt: skip
    try:
        deadline = time.monotonic() + 10
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                    break
            except OSError:
                if time.monotonic() > deadline or process.poll() is not None:
                    raise RuntimeError("redis-server did not start") from None
                time.sleep(0.05)
        yield f"redis://127.0.0.1:{port}/0"
    finally:
        process.kill()
        process.wait()


@contextlib.contextmanager
def postgres_database() -> Iterator[str]:
    """A new database ``sentinel_bench_<random>``, dropped (with its connections) at the end."""
    admin = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"sentinel_bench_{uuid.uuid4().hex[:10]}"
    with admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE DATABASE {name}")
    try:
        url = sa.make_url(POSTGRES_ADMIN).set(database=name)
        yield url.render_as_string(hide_password=False)
    finally:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        admin.dispose()


def write_config(path: Path, database_url: str, alerts: Sequence[dict[str, Any]]) -> Path:
    text = yaml.safe_dump(
        {"database": {"url": database_url}, "alerts": list(alerts)},
        sort_keys=False,
        width=1000,
    )
    path.write_text(text)
    return path


def fleet_env(redis_url: str, namespace: str, config: Path, state_url: str) -> dict[str, str]:
    """The environment of fleet processes, as tests/fleet.py sets it."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "STATE_DB"))}
    env.update(
        REDIS_URL=redis_url,
        SENTINEL_NAMESPACE=namespace,
        SENTINEL_CONFIG=str(config),
        STATE_DB_URL=state_url,
        SENTINEL_METRICS="off",
        PYTHONUNBUFFERED="1",
    )
    return env


class FleetWorld(NamedTuple):
    """Where a benchmark's fleet lives: a scratch directory, a private Redis, a database of its
    own, and a namespace no other run shares."""

    directory: Path
    redis_url: str
    db_url: str
    namespace: str


@contextlib.contextmanager
def fleet_world() -> Iterator[FleetWorld]:
    with (
        tempfile.TemporaryDirectory(prefix="sentinel-bench-") as tmp,
        redis_server(Path(tmp)) as redis_url,
        postgres_database() as db_url,
    ):
        yield FleetWorld(Path(tmp), redis_url, db_url, f"bench{uuid.uuid4().hex[:8]}")


def run_child(args: Sequence[str], what: str) -> None:
    """Run this benchmark again as a child process (a fresh interpreter for each measurement),
    ended with us; a failing child ends the benchmark with ``what`` named."""
    child = subprocess.Popen([sys.executable, *args])
    try:
        child.wait()
    finally:
        if child.poll() is None:
            child.terminate()
            child.wait(timeout=60)
    if child.returncode:
        raise SystemExit(f"{what} failed (exit {child.returncode})")


class Processes:
    """Subprocesses in their own sessions, killed with everything they started on :meth:`stop`."""

    def __init__(self, directory: Path, env: dict[str, str]):
        self.directory = directory
        self.env = env
        self.started: list[subprocess.Popen[bytes]] = []

    def start(self, name: str, args: list[str]) -> tuple[subprocess.Popen[bytes], Path]:
        log_path = self.directory / f"{name}-{len(self.started)}.log"
        with open(log_path, "wb") as log:
            process = subprocess.Popen(
                args,
                env=self.env,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
                cwd=BENCH_DIR.parent,
            )
        self.started.append(process)
        return process, log_path

    def workers(
        self, processes: int, threads: int, module: str = "workers.app", extra: Sequence[str] = ()
    ) -> tuple[subprocess.Popen[bytes], Path]:
        args = [str(BIN / "dramatiq"), module, "-p", str(processes), "-t", str(threads), *extra]
        return self.start(f"dramatiq-{module}", [*args, "--worker-shutdown-timeout", "5000"])

    def stop(self, process: subprocess.Popen[bytes]) -> None:
        """SIGTERM to the process group, then SIGKILL whatever is left after 10 s."""
        for sig, grace in ((signal.SIGTERM, 10.0), (signal.SIGKILL, 10.0)):
            if process.poll() is not None:
                break
            with contextlib.suppress(ProcessLookupError):
                os.killpg(process.pid, sig)
            with contextlib.suppress(subprocess.TimeoutExpired):
                process.wait(timeout=grace)
        # Children of a parent that exited first are still in its process group.
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)

    def stop_all(self) -> None:
        for process in self.started:
            self.stop(process)

    def __enter__(self) -> Processes:
        return self

    def __exit__(self, *_: object) -> None:
        self.stop_all()


def wait_for_log(path: Path, text: str, count: int, timeout: float) -> float:
    """Until ``text`` occurs ``count`` times in the log file; returns the seconds waited."""
    started = time.monotonic()
    while True:
        found = path.read_text(errors="replace").count(text) if path.exists() else 0
        if found >= count:
            return time.monotonic() - started
        if time.monotonic() - started > timeout:
            tail = path.read_text(errors="replace")[-3000:] if path.exists() else ""
            raise RuntimeError(f"{path.name}: {found}/{count} x {text!r} after {timeout}s\n{tail}")
        time.sleep(0.05)


def wait_until(
    predicate: Callable[[], bool], timeout: float, interval: float = 0.05, what: str = ""
) -> float:
    started = time.monotonic()
    while not predicate():
        if time.monotonic() - started > timeout:
            raise RuntimeError(f"timed out after {timeout:.0f}s waiting for {what or predicate}")
        time.sleep(interval)
    return time.monotonic() - started


def descendants(pid: int) -> list[int]:
    """Every live descendant of ``pid`` (children first), read from /proc."""
    found: list[int] = []
    queue = [pid]
    while queue:
        current = queue.pop(0)
        for children in Path(f"/proc/{current}/task").glob("*/children"):
            with contextlib.suppress(OSError):
                for child in children.read_text().split():
                    found.append(int(child))
                    queue.append(int(child))
    return found


def status_kb(pid: int, field: str = "VmRSS") -> int:
    """A ``kB`` field of /proc/<pid>/status (VmRSS, VmHWM, RssAnon ...); 0 if gone."""
    with contextlib.suppress(OSError):
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith(f"{field}:"):
                return int(line.split()[1])
    return 0


def cpu_seconds(pids: Sequence[int]) -> float:
    """User + system CPU seconds of the given processes (utime + stime from /proc/<pid>/stat)."""
    total = 0
    for pid in pids:
        with contextlib.suppress(OSError):
            fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
            total += int(fields[11]) + int(fields[12])
    return total / CLK_TCK


def machine_busy() -> tuple[float, float]:
    """(busy, total) jiffies of all CPUs from /proc/stat; diff two readings for utilisation."""
    values = [int(v) for v in Path("/proc/stat").read_text().splitlines()[0].split()[1:]]
    idle = values[3] + values[4]
    return float(sum(values) - idle), float(sum(values))


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of a non-empty sequence."""
    ordered = sorted(values)
    rank = max(1, min(len(ordered), math.ceil(q / 100 * len(ordered))))
    return ordered[rank - 1]


def machine_note() -> str:
    """The load average, to print with the figures: other work on the box skews them."""
    one, five, _ = os.getloadavg()
    return f"{os.cpu_count()} cores, load average {one:.2f} (1 min) {five:.2f} (5 min)"


_FINISHED_RUNS = sa.text("SELECT count(*) FROM sqlsentinel_executions WHERE status <> 'running'")


def finished_runs(engine: sa.Engine) -> int:
    """Executions that have ended, whatever their status; 0 before the first run creates the
    tables (the workers migrate the state database themselves)."""
    try:
        with engine.connect() as conn:
            return int(conn.execute(_FINISHED_RUNS).scalar_one())
    except sa.exc.ProgrammingError:
        return 0
