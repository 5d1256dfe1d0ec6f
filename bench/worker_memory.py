"""Resident memory of one fleet worker process: after boot, and after thousands of runs.

``dramatiq workers.app -p 1 -t 8`` (environment as in tests/fleet.py: a private redis-server on
loopback, a throw-away PostgreSQL database as data and state database, SENTINEL_METRICS=off)
starts a parent process that forks one worker process; the figures are the worker's (the child,
found through /proc/<pid>/task/*/children), with the parent's for reference: VmRSS (everything
resident, shared library pages included), RssAnon (the process's own heap) and VmHWM (peak).

"After boot" is once the worker logged that it is ready and has idled for 2 s; then execute-alert
runs are sent over the config's alerts in turn (``SELECT 'OK' AS status``), which loads the
config, opens the connection pools and imports what a run needs, and the worker is measured again
at each of ``--checkpoints`` (runs finished so far), once they finished and it idled for 2 s.
Done for each config size in ``--alerts`` (the worker holds the whole config in memory).

Target (issue 10): with 1,000 alerts, VmRSS <= 90 MB after 10,000 runs and no growth between
10,000 and 20,000 runs (within 1 MB): the default ``--alerts 1000 --checkpoints 10000,20000``.

Usage: .venv/bin/python bench/worker_memory.py [--alerts 1000] [--checkpoints 10000,20000]
       [--threads 8]
"""

from __future__ import annotations

import argparse
import functools
import os
import subprocess
import time
import uuid
from collections.abc import Callable
from pathlib import Path

import sqlalchemy as sa
from fleetkit import (
    BIN,
    READY,
    Processes,
    descendants,
    exit_on_signals,
    finished_runs,
    fleet_env,
    fleet_world,
    machine_note,
    run_child,
    status_kb,
    wait_for_log,
    wait_until,
    write_config,
)

IDLE_SECONDS = 2.0
TARGET_RSS_MB = 90.0
GROWTH_TOLERANCE_MB = 1.0


def memory(pid: int) -> str:
    return (
        f"VmRSS {status_kb(pid, 'VmRSS') / 1024:5.1f} MB, "
        f"RssAnon {status_kb(pid, 'RssAnon') / 1024:5.1f} MB, "
        f"VmHWM {status_kb(pid, 'VmHWM') / 1024:5.1f} MB"
    )


def finished_at_least(done: Callable[[], int], count: int) -> bool:
    return done() >= count


def measure(
    directory: Path, redis_url: str, db_url: str, alerts: int, checkpoints: list[int], threads: int
) -> None:
    namespace = f"bench{uuid.uuid4().hex[:8]}"
    config = write_config(
        directory / f"alerts-{alerts}.yaml",
        db_url,
        [
            {
                "name": f"mem_{i:05d}",
                "query": f"SELECT 'OK' AS status, {i} AS actual_value",
                "schedule": "* * * * *",
            }
            for i in range(alerts)
        ],
    )
    env = fleet_env(redis_url, namespace, config, db_url)
    for key in ("REDIS_URL", "SENTINEL_NAMESPACE", "SENTINEL_CONFIG", "STATE_DB_URL"):
        os.environ[key] = env[key]
    os.environ["SENTINEL_METRICS"] = "off"
    # The actor module reads the namespace at import: import it for this namespace only once.
    from workers import actors

    assert namespace == actors.NS, "run one namespace per process"
    state = sa.create_engine(db_url, poolclass=sa.NullPool)

    def done() -> int:
        return finished_runs(state)

    # As in a deployment, the file was validated before workers start (the scheduler, `validate`
    # or an earlier worker on the host), so the guard's verdicts are in the on-disk cache.
    command = [str(BIN / "sqlsentinel"), "validate", str(config)]
    subprocess.run(command, env=env, capture_output=True, check=True)
    print(f"{alerts} alerts (validated first), dramatiq workers.app -p 1 -t {threads}:")
    with Processes(directory, env) as procs:
        parent, log = procs.workers(1, threads)
        booted = wait_for_log(log, READY, 1, timeout=120)
        time.sleep(IDLE_SECONDS)
        children = descendants(parent.pid)
        assert children, "no worker process found under the dramatiq parent"
        worker = children[0]
        print(f"  after boot ({booted:.1f} s to ready, then {IDLE_SECONDS:.0f} s idle):")
        print(f"    worker process {worker}: {memory(worker)}")
        print(f"    parent process {parent.pid}: {memory(parent.pid)}")
        sent, rss = 0, {}  # runs sent so far; VmRSS in MB at each checkpoint
        for checkpoint in checkpoints:
            started = time.monotonic()
            for i in range(sent, checkpoint):
                actors.execute_alert.send_with_options(
                    kwargs={"alert_name": f"mem_{i % alerts:05d}", "triggered_by": "CLI"}
                )
            sent = checkpoint
            wait_until(functools.partial(finished_at_least, done, sent), 1800, 0.2, f"{sent} runs")
            took = time.monotonic() - started
            time.sleep(IDLE_SECONDS)
            rss[checkpoint] = status_kb(worker, "VmRSS") / 1024
            print(f"  after {checkpoint} runs ({took:.1f} s for the last batch, then idle):")
            print(f"    worker process {worker}: {memory(worker)}")
            print(f"    parent process {parent.pid}: {memory(parent.pid)}")
        if len(rss) >= 2:
            first, last = checkpoints[0], checkpoints[-1]
            growth = rss[last] - rss[first]
            print(
                f"  worker VmRSS {rss[first]:.1f} MB after {first} runs (target <= "
                f"{TARGET_RSS_MB:.0f} MB: {'met' if rss[first] <= TARGET_RSS_MB else 'NOT met'}), "
                f"growth to {last} runs {growth:+.1f} MB (target <= {GROWTH_TOLERANCE_MB:.0f} MB: "
                f"{'met' if growth <= GROWTH_TOLERANCE_MB else 'NOT met'})"
            )
        others = [pid for pid in descendants(parent.pid) if pid != worker]
        if others:
            print(f"    other processes under the parent: {others}")
    state.dispose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", default="1000", help="config sizes, comma-separated")
    parser.add_argument("--checkpoints", default="10000,20000", help="runs finished, each measured")
    parser.add_argument("--threads", type=int, default=8)
    parser.add_argument("--child", type=int, default=None, help=argparse.SUPPRESS)
    args = parser.parse_args()
    exit_on_signals()
    print(f"machine: {machine_note()}", flush=True)
    sizes = [int(s) for s in args.alerts.split(",") if s]
    if args.child is None and len(sizes) > 1:  # one namespace (and actor import) per process
        for size in sizes:
            options = ["--checkpoints", args.checkpoints, "--threads", str(args.threads)]
            command = [__file__, "--alerts", str(size), *options, "--child", str(size)]
            run_child(command, f"{size} alerts")
        return
    checkpoints = sorted(int(c) for c in args.checkpoints.split(",") if c)
    with fleet_world() as world:
        for size in sizes:
            measure(world.directory, world.redis_url, world.db_url, size, checkpoints, args.threads)


if __name__ == "__main__":
    main()
