"""End-to-end alert executions per second through the real fleet, against a ceiling.

What is measured: N manual runs of trivial alerts (``SELECT 'OK' AS status``; data and state
database = one throw-away PostgreSQL database on 127.0.0.1:5432) enqueued from this process with
``workers.actors.execute_alert.send_with_options`` and executed by
``dramatiq workers.app -p 2 -t 8`` (environment as in tests/fleet.py, a private redis-server,
SENTINEL_METRICS=off). The clock runs from the first enqueue until all N executions are
finished (``sqlsentinel_executions`` rows whose status is not ``running``).

The ceiling, in the same run, on the same processes x threads: a bare Dramatiq actor
(``bench/ceiling_actor.py``) doing the database work of a run in one transaction: insert an
execution-like row, run the query, ``SELECT … FOR UPDATE`` the alert's state row and update it.

Target: fleet rate / ceiling rate >= 0.7.

The phases alternate (ceiling, fleet, ceiling, fleet: ``--rounds 2``), because other work on
a 2-core box moves these figures; the best rate of each kind is compared. Each phase boots its
workers, runs every alert once to warm up (config load, pools, state rows),
then is timed. N defaults, per phase, to what its workers do in ``--seconds`` (15 s), measured
on a calibration batch of two runs per alert; ``--count`` fixes it for both. Afterwards, with
the workers stopped, executions of each kind run in this process, single-threaded, counting
driver round trips, statements, commits and rollbacks from libpq's own protocol trace (see
``Counter``) and pool checkouts, against the target of at most 8 round trips and 2 commits per
execution; and the fleet's executor is profiled (top cProfile entries), to show where the gap
comes from.

Usage: .venv/bin/python bench/fleet_throughput.py [--count N] [--rounds 2] [--alerts 200]
       [--processes 2] [--threads 8] [--seconds 15]
"""

from __future__ import annotations

import argparse
import cProfile
import io
import os
import pstats
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import sqlalchemy as sa
from fleetkit import (
    BENCH_DIR,
    READY,
    Processes,
    cpu_seconds,
    descendants,
    exit_on_signals,
    finished_runs,
    fleet_env,
    fleet_world,
    machine_busy,
    machine_note,
    wait_for_log,
    wait_until,
    write_config,
)
from psycopg.pq import Trace

QUERY = "SELECT 'OK' AS status"
TARGET_RATIO = 0.7
TARGET_ROUND_TRIPS = 8
TARGET_COMMITS = 2


@dataclass
class Phase:
    name: str
    count: int
    seconds: float
    enqueue_seconds: float
    worker_cpu_ms: float  # CPU of the worker processes per execution
    machine_busy: float  # share of both cores busy during the phase (everything on the box)
    log_errors: int

    @property
    def rate(self) -> float:
        return self.count / self.seconds


class Fleet:
    """Runs one timed phase: boot workers, warm up, send N messages, wait for N finished rows."""

    def __init__(self, procs: Processes, names: list[str], processes: int, threads: int):
        self.procs = procs
        self.names = names
        self.processes = processes
        self.threads = threads
        self.baseline = 0  # executions finished before the current batch

    def phase(
        self,
        name: str,
        module: str,
        extra: list[str],
        send: Callable[[str], object],
        finished: Callable[[], int],
        count: int | None,
        calibrate_seconds: float,
    ) -> Phase:
        process, log = self.procs.workers(self.processes, self.threads, module, extra)
        try:
            wait_for_log(log, READY, self.processes, timeout=120)
            self.baseline = finished()
            pids = [process.pid, *descendants(process.pid)]
            self._batch(send, finished, len(self.names), timeout=120)  # warm up: every alert once
            if count is None:  # calibrate: what the workers do in calibrate_seconds
                sample = 2 * len(self.names)
                took = self._batch(send, finished, sample, timeout=300)
                count = max(len(self.names), int(round(sample / took * calibrate_seconds, -2)))
            cpu_before, (busy0, total0) = cpu_seconds(pids), machine_busy()
            started = time.perf_counter()
            enqueue = self._send(send, count)
            took = self._wait(finished, count, started, timeout=600)
            busy1, total1 = machine_busy()
            worker_cpu = cpu_seconds(pids) - cpu_before
        finally:
            self.procs.stop(process)
        text = log.read_text(errors="replace")
        return Phase(
            name=name,
            count=count,
            seconds=took,
            enqueue_seconds=enqueue,
            worker_cpu_ms=worker_cpu / count * 1000,
            machine_busy=(busy1 - busy0) / (total1 - total0),
            log_errors=text.count("Traceback") + text.count(" ERROR "),
        )

    def _send(self, send: Callable[[str], object], count: int) -> float:
        started = time.perf_counter()
        for index in range(count):
            send(self.names[index % len(self.names)])
        return time.perf_counter() - started

    def _batch(
        self, send: Callable[[str], object], finished: Callable[[], int], n: int, timeout: float
    ) -> float:
        started = time.perf_counter()
        self._send(send, n)
        return self._wait(finished, n, started, timeout)

    def _wait(self, finished: Callable[[], int], n: int, started: float, timeout: float) -> float:
        target = self.baseline + n
        wait_until(lambda: finished() >= target, timeout, 0.02, f"{n} executions")
        took = time.perf_counter() - started
        self.baseline = target
        return took


class Counter:
    """What some engines' connections said to PostgreSQL, from libpq's own protocol trace.

    Each pooled connection is traced (``PQtrace``) from its first checkout: a driver round trip
    is one ``ReadyForQuery`` from the server (the answer that ends every exchange, however many
    statements a pipeline carried); a statement is one ``CommandComplete`` or ``ErrorResponse``;
    a commit is a ``COMMIT`` or a write (INSERT/UPDATE/DELETE) run outside a transaction block
    (autocommit); a rollback is a ``ROLLBACK``. Pool checkouts come from SQLAlchemy's events."""

    WRITES = ("INSERT", "UPDATE", "DELETE")

    def __init__(self, engines: list[sa.Engine], directory: Path):
        self.directory = directory
        self.checkouts = 0
        self.traced: list[tuple[Any, Path]] = []
        self.listeners: list[tuple[Any, str, Callable[..., None]]] = []
        for engine in engines:
            sa.event.listen(engine.pool, "checkout", self._checkout)
            self.listeners.append((engine.pool, "checkout", self._checkout))

    def _checkout(self, dbapi_connection: Any, record: Any, _proxy: Any) -> None:
        self.checkouts += 1
        if record.info.get("bench_traced") is self:
            return
        record.info["bench_traced"] = self
        path = self.directory / f"trace-{len(self.traced)}.txt"
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
        pgconn = dbapi_connection.pgconn
        pgconn.trace(fd)
        pgconn.set_trace_flags(Trace.SUPPRESS_TIMESTAMPS | Trace.REGRESS_MODE)
        self.traced.append((pgconn, path))

    def remove(self) -> dict[str, int]:
        for target, event, listener in self.listeners:
            sa.event.remove(target, event, listener)
        counts = {"statements": 0, "round trips": 0, "commits": 0, "rollbacks": 0}
        for pgconn, path in self.traced:
            pgconn.untrace()  # flushes the trace
            self._count(path.read_text(errors="replace"), counts)
        return counts

    def _count(self, trace: str, counts: dict[str, int]) -> None:
        in_block = False
        for line in trace.splitlines():
            parts = line.split("\t")
            if len(parts) < 3 or parts[0] != "B":
                continue
            message, rest = parts[2], "\t".join(parts[3:]).strip()
            if message == "ReadyForQuery":
                counts["round trips"] += 1
                in_block = rest in ("T", "E")
            elif message == "ErrorResponse":
                counts["statements"] += 1
            elif message == "CommandComplete":
                counts["statements"] += 1
                tag = rest.strip('"')
                if tag == "BEGIN":
                    in_block = True
                elif tag == "COMMIT":
                    counts["commits"] += 1
                    in_block = False
                elif tag == "ROLLBACK":
                    counts["rollbacks"] += 1
                    in_block = False
                elif tag.startswith(self.WRITES) and not in_block:
                    counts["commits"] += 1


def profile(run: Callable[[int], None], runs: int) -> pstats.Stats:
    profiler = cProfile.Profile()
    profiler.enable()
    for i in range(runs):
        run(i)
    profiler.disable()
    return pstats.Stats(profiler, stream=io.StringIO())


def driver_waits(stats: pstats.Stats) -> int:
    """Calls of psycopg's Connection.wait (the count this benchmark used to call round trips:
    one per statement outside a pipeline, one per queued statement inside one)."""
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = stats.stats  # type: ignore[attr-defined]
    return sum(
        calls
        for (file, _, name), (_, calls, *_rest) in raw.items()
        if name == "wait" and file.endswith("psycopg/connection.py")
    )


def in_process(config: Path, state_url: str, names: list[str], runs: int) -> None:
    """One thread, no broker: the cost of one execution of each kind, and what it consists of."""
    import ceiling_actor

    from sentinel.config import load_config
    from sentinel.deployment import Deployment
    from sentinel.executor import AlertExecutor

    deployment = Deployment(load_config(config), state_url)
    executor = AlertExecutor(deployment.state_engine, deployment.notification_factory)
    alerts = [deployment.config.alert(n) for n in names]
    ceiling_engine = ceiling_actor.engine()

    def fleet_run(i: int) -> None:
        executor.execute_alert(alerts[i % len(alerts)], deployment.adapter, triggered_by="CLI")

    def ceiling_run(i: int) -> None:
        ceiling_actor.ceiling_execute.fn(names[i % len(names)])

    print(f"\nIn this process, one thread, {runs} executions each (workers stopped):")
    kinds = {
        "fleet executor": (fleet_run, [deployment.state_engine, deployment.adapter.engine]),
        "ceiling actor body": (ceiling_run, [ceiling_engine]),
    }
    profiles = {}
    for label, (run, used) in kinds.items():
        for i in range(len(names)):  # warm
            run(i)
        started = time.perf_counter()
        cpu = time.process_time()
        for i in range(runs):
            run(i)
        wall = (time.perf_counter() - started) / runs * 1000
        cpu_ms = (time.process_time() - cpu) / runs * 1000
        with tempfile.TemporaryDirectory() as traces:
            counter = Counter(used, Path(traces))
            for i in range(runs):
                run(i)
            counts = counter.remove()
        per = {k: v / runs for k, v in counts.items()}
        profiles[label] = profile(run, runs)
        waits = driver_waits(profiles[label]) / runs
        print(
            f"  {label:19s} {wall:5.2f} ms/execution wall, {cpu_ms:5.2f} ms CPU in this process; "
            f"per execution: {per['round trips']:.1f} driver round trips, "
            f"{per['statements']:.1f} statements, {counter.checkouts / runs:.1f} pool checkouts, "
            f"{per['commits']:.1f} commits, {per['rollbacks']:.1f} rollbacks "
            f"(and {waits:.1f} calls of psycopg's Connection.wait)"
        )
        if label == "fleet executor":
            verdict = (
                "meets"
                if per["round trips"] <= TARGET_ROUND_TRIPS and per["commits"] <= TARGET_COMMITS
                else "MISSES"
            )
            print(
                f"  {verdict} the target of at most {TARGET_ROUND_TRIPS} round trips and "
                f"{TARGET_COMMITS} commits per execution"
            )

    print(
        f"\ncProfile of the fleet executor ({runs} runs, one thread), sentinel functions by "
        "cumulative wall time, ms per execution:"
    )
    raw: dict[tuple[str, int, str], tuple[int, int, float, float, Any]] = profiles[
        "fleet executor"
    ].stats  # type: ignore[attr-defined]
    root = str(Path(__file__).resolve().parents[1]) + "/"
    rows = sorted(
        (
            (entry[3], file, line, name)
            for (file, line, name), entry in raw.items()
            if "/sentinel/" in file
        ),
        reverse=True,
    )
    for cumulative, file, line, name in rows[:14]:
        print(f"  {cumulative / runs * 1000:6.2f}  {file.removeprefix(root)}:{line}({name})")
    deployment.close()
    ceiling_engine.dispose()


Kind = tuple[str, list[str], Callable[[str], object], Callable[[], int]]


def compare(runner: Fleet, kinds: dict[str, Kind], args: argparse.Namespace) -> None:
    """Alternate the phases for ``args.rounds`` rounds; print each and the ratio of the best."""
    counts: dict[str, int | None] = dict.fromkeys(kinds, args.count)
    results: dict[str, list[Phase]] = {kind: [] for kind in kinds}
    for round_ in range(1, args.rounds + 1):
        for kind, (module, extra, send, finished) in kinds.items():
            phase = runner.phase(kind, module, extra, send, finished, counts[kind], args.seconds)
            counts[kind] = phase.count  # later rounds repeat the calibrated count
            results[kind].append(phase)
            print(
                f"  round {round_}: {phase.name:28s} {phase.count:6d} runs in "
                f"{phase.seconds:6.2f} s = {phase.rate:7.1f} executions/s (enqueue "
                f"took {phase.enqueue_seconds:.2f} s; worker CPU "
                f"{phase.worker_cpu_ms:.2f} ms/execution; machine busy "
                f"{phase.machine_busy:.0%}; errors in worker log: {phase.log_errors})",
                flush=True,
            )
    ceiling, fleet = (max(r.rate for r in results[kind]) for kind in kinds)
    ratio = fleet / ceiling
    verdict = "meets" if ratio >= TARGET_RATIO else "MISSES"
    print(
        f"  best of {args.rounds}: ceiling {ceiling:.1f}/s, fleet {fleet:.1f}/s; ratio "
        f"fleet/ceiling = {ratio:.2f} ({verdict} the target >= {TARGET_RATIO}); per round: "
        + ", ".join(f"{f.rate / c.rate:.2f}" for c, f in zip(*results.values(), strict=True))
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--count", type=int, default=None, help="runs per phase (default: auto)")
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--processes", type=int, default=2)
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=15.0, help="auto count: ceiling time")
    parser.add_argument("--rounds", type=int, default=2, help="ceiling, fleet, ceiling, ...")
    parser.add_argument("--profile-runs", type=int, default=500)
    args = parser.parse_args()
    exit_on_signals()

    names = [f"bench_{i:04d}" for i in range(args.alerts)]
    with fleet_world() as (directory, redis_url, db_url, namespace):
        alerts = [{"name": n, "query": QUERY, "schedule": "* * * * *"} for n in names]
        config = write_config(directory / "alerts.yaml", db_url, alerts)
        env = fleet_env(redis_url, namespace, config, db_url)
        os.environ.update(
            {
                k: env[k]
                for k in (
                    "REDIS_URL",
                    "SENTINEL_NAMESPACE",
                    "SENTINEL_CONFIG",
                    "STATE_DB_URL",
                    "SENTINEL_METRICS",
                )
            }
        )

        import ceiling_actor  # after the environment: it builds its broker at import

        import workers.app  # noqa: F401 - sets the fleet's broker and declares the actors
        from sentinel.store import create_state_engine
        from sentinel.store.schema import ensure_schema
        from workers.actors import execute_alert

        state = create_state_engine(db_url)
        ensure_schema(state)
        ceiling_actor.create_tables(state, names)

        def fleet_finished() -> int:
            return finished_runs(state)

        def fleet_send(name: str) -> object:
            return execute_alert.send_with_options(
                kwargs={"alert_name": name, "triggered_by": "CLI"}
            )

        def ceiling_send(name: str) -> object:
            return ceiling_actor.ceiling_execute.send_with_options(
                kwargs={"alert_name": name, "triggered_by": "CLI"}
            )

        print(
            f"{args.processes} worker processes x {args.threads} threads, {args.alerts} alerts, "
            f"query {QUERY!r}, PostgreSQL {state.url.database} (data + state), "
            f"machine: {machine_note()}"
        )
        kinds: dict[str, Kind] = {
            "ceiling (bare actor, 1 txn)": (
                "ceiling_actor",
                ["--path", str(BENCH_DIR)],
                ceiling_send,
                lambda: ceiling_actor.finished(state),
            ),
            "fleet (execute-alert)": ("workers.app", [], fleet_send, fleet_finished),
        }
        with Processes(directory, env) as procs:
            compare(Fleet(procs, names, args.processes, args.threads), kinds, args)
        with state.connect() as conn:
            rows = conn.execute(
                sa.text("SELECT status, count(*) FROM sqlsentinel_executions GROUP BY status")
            ).all()
        statuses = {str(status): int(n) for status, n in rows}
        print(f"  fleet execution statuses: {statuses}")

        print(f"  machine after the phases: {machine_note()}")
        in_process(config, db_url, names, args.profile_runs)
        state.dispose()


if __name__ == "__main__":
    main()
