"""What one fleet run costs the shared resources, measured from outside (for docs/capacity.md).

``--runs`` manual runs of trivial alerts (``SELECT 'OK' AS status``; data and state database = one
throw-away PostgreSQL database on 127.0.0.1:5432) are sent through a private redis-server to
``dramatiq workers.app -p 1 -t --threads`` after a warm-up of one run per alert, and the deltas
over the measured batch are divided by the runs:

- Redis commands (``INFO commandstats``: every command the broker, the workers and this process
  sent, the enqueue included), and which commands they were;
- PostgreSQL transactions committed and rolled back (``pg_stat_database`` of the bench database:
  the state's writes and the data query's read-only transaction alike);
- worker CPU (user + system of the worker processes);
- then, with the workers stopped, the state row lock's hold time: ``--runs`` runs in this process
  on one thread, timed from the ``SELECT … FOR UPDATE`` of ``sqlsentinel_state`` to the commit
  (how long a second run of the same alert would wait; runs of different alerts never do).

Round trips per run and the profile of a run are ``bench/fleet_throughput.py``'s (it counts them
in one process with SQLAlchemy events); this script only reads what the servers report.

Usage: .venv/bin/python bench/run_costs.py [--runs 3000] [--alerts 200] [--threads 8]
"""

from __future__ import annotations

import argparse
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import redis
import sqlalchemy as sa
from fleetkit import (
    READY,
    Processes,
    cpu_seconds,
    descendants,
    exit_on_signals,
    finished_runs,
    fleet_env,
    fleet_world,
    machine_note,
    wait_for_log,
    wait_until,
    write_config,
)


def command_counts(client: redis.Redis) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(value["calls"]) for name, value in stats.items()}


def transactions(engine: sa.Engine) -> tuple[int, int]:
    query = sa.text(
        "SELECT xact_commit, xact_rollback FROM pg_stat_database WHERE datname = current_database()"
    )
    with engine.connect() as conn:
        conn.execute(sa.text("SELECT pg_stat_clear_snapshot()"))
        commits, rollbacks = conn.execute(query).one()
    return int(commits), int(rollbacks)


def lock_hold_ms(config: Path, state_url: str, names: list[str], runs: int) -> list[float]:
    """Each run's state-row lock hold time, in milliseconds (in this process, one thread)."""
    from sentinel.config import load_config
    from sentinel.deployment import Deployment

    deployment = Deployment(load_config(config), state_url)
    executor = deployment.executor()
    engine = deployment.state_engine
    locked: dict[int, float] = {}
    held: list[float] = []

    def on_execute(conn: sa.Connection, _cursor: Any, statement: str, *_: Any) -> None:
        if "FOR UPDATE" in statement and "sqlsentinel_state" in statement:
            locked.setdefault(id(conn.connection.dbapi_connection), time.perf_counter())

    def on_commit(conn: sa.Connection) -> None:
        started = locked.pop(id(conn.connection.dbapi_connection), None)
        if started is not None:
            held.append((time.perf_counter() - started) * 1000)

    sa.event.listen(engine, "before_cursor_execute", on_execute)
    sa.event.listen(engine, "commit", on_commit)
    try:
        for i in range(runs):
            alert = deployment.config.alert(names[i % len(names)])
            executor.execute_alert(alert, deployment.adapter, triggered_by="CLI")
    finally:
        deployment.close()
    return held


def print_costs(
    runs: int,
    threads: int,
    took: float,
    cpu: float,
    held: list[float],
    redis_after: dict[str, int],
    redis_before: dict[str, int],
    pg_after: tuple[int, int],
    pg_before: tuple[int, int],
) -> None:
    # Our own polling of the executions table is one committed transaction per poll, and
    # INFO/pg_stat reads are ours too: both are small against thousands of runs, and said.
    deltas = {k: redis_after.get(k, 0) - redis_before.get(k, 0) for k in redis_after}
    commands = {k: v for k, v in sorted(deltas.items(), key=lambda kv: -kv[1]) if v > 0}
    commits, rollbacks = (pg_after[i] - pg_before[i] for i in (0, 1))
    print(f"{runs} runs through 1 worker process x {threads} threads in {took:.1f} s")
    print(f"  Redis commands per run: {sum(commands.values()) / runs:.2f}")
    for name, calls in commands.items():
        print(f"    {name:14s} {calls / runs:6.2f}")
    print(f"  PostgreSQL per run: {commits / runs:.2f} commits, {rollbacks / runs:.2f} rollbacks")
    print(f"  worker CPU per run: {cpu / runs * 1000:.2f} ms")
    if held:
        p50, p99 = held[len(held) // 2], held[int(len(held) * 0.99)]
        print(f"  state row lock held per run (one thread): p50 {p50:.2f} ms, p99 {p99:.2f} ms")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3000)
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--threads", type=int, default=8)
    args = parser.parse_args()
    exit_on_signals()
    print(f"machine: {machine_note()}", flush=True)
    with fleet_world() as world:
        names = [f"cost_{i:04d}" for i in range(args.alerts)]
        config = write_config(
            world.directory / "alerts.yaml",
            world.db_url,
            [{"name": n, "query": "SELECT 'OK' AS status", "schedule": "0 0 1 1 *"} for n in names],
        )
        env = fleet_env(world.redis_url, world.namespace, config, world.db_url)
        env["SENTINEL_METRICS"] = "off"
        os.environ.update(env)
        from workers import actors  # reads the namespace at import

        client = redis.Redis.from_url(world.redis_url)
        engine = sa.create_engine(world.db_url, poolclass=sa.NullPool)

        def done() -> int:
            return finished_runs(engine)

        def send(count: int) -> None:
            for i in range(count):
                actors.execute_alert.send_with_options(
                    kwargs={"alert_name": names[i % len(names)], "triggered_by": "CLI"}
                )

        def wait(count: int) -> Callable[[], bool]:
            return lambda: done() >= count

        with Processes(world.directory, env) as procs:
            parent, log = procs.workers(1, args.threads)
            wait_for_log(log, READY, 1, timeout=120)
            send(len(names))
            wait_until(wait(len(names)), 300, 0.2, "the warm-up runs")
            time.sleep(1.0)  # let the heartbeats and acks of the warm-up settle
            pids = [parent.pid, *descendants(parent.pid)]
            redis_before, pg_before = command_counts(client), transactions(engine)
            cpu_before, started = cpu_seconds(pids), time.perf_counter()
            send(args.runs)
            wait_until(wait(len(names) + args.runs), 1800, 0.2, f"{args.runs} runs")
            took = time.perf_counter() - started
            cpu = cpu_seconds(pids) - cpu_before
            redis_after, pg_after = command_counts(client), transactions(engine)
        client.close()
        engine.dispose()
        held = sorted(lock_hold_ms(config, world.db_url, names, args.runs))
    print_costs(
        args.runs, args.threads, took, cpu, held, redis_after, redis_before, pg_after, pg_before
    )


if __name__ == "__main__":
    main()
