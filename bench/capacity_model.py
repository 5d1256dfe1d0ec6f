"""Past one machine, by simulation: what a crowded minute needs, and which resource runs out first.

A fluid simulation of one minute boundary, in 10 ms steps. At the boundary ``--alerts`` runs fall
due at once (the worst case: every alert on ``* * * * *``). Scheduler replicas push them onto the
broker, each at its measured cost per message, one shard per replica at a time; workers take them
off at the rate the slowest shared resource allows: worker CPU on ``--hosts`` hosts, the state
database's commits and round trips, Redis commands. Printed: when the last message is enqueued
and the p99 enqueue lateness, when the last run finishes, each resource's utilisation while it
drains, and the first bottleneck.

The per-run costs default to what ``bench/fleet_throughput.py`` and ``bench/scheduler_load.py``
measured on the 2-core development machine (docs/capacity.md says when and how); the capacities
(commits per second of the state database, Redis commands per second) are those of one
commodity server and are arguments, because they are the deployment's, not ours.

Usage: python bench/capacity_model.py [--alerts 1000000] [--hosts 16] [--cores 8]
       [--replicas 1] [--shards 1] [--worker-cpu-ms 3.3] [--enqueue-us 25] ...
"""

from __future__ import annotations

import argparse
from dataclasses import dataclass

STEP = 0.01  # seconds


@dataclass(frozen=True)
class Costs:
    """What one run costs each shared resource (measured), and what each resource can give."""

    worker_cpu_ms: float
    enqueue_us: float  # scheduler CPU per message, pipelined
    redis_commands: float  # per run: enqueue, fetch, ack, slot claim, notification queue
    pg_round_trips: float
    pg_commits: float
    query_ms: float  # the alert query's own time on the warehouse (a thread waits, no CPU)
    threads_per_core: int
    pg_commits_per_second: float
    pg_round_trips_per_second: float
    redis_commands_per_second: float


@dataclass(frozen=True)
class Minute:
    enqueued_at: float  # when the last message was on the broker
    p99_lateness: float
    finished_at: float  # when the last run finished
    rate: float  # runs per second while draining
    bottleneck: str
    utilisation: dict[str, float]


def simulate(alerts: int, hosts: int, cores: int, replicas: int, shards: int, c: Costs) -> Minute:
    # Replicas work in parallel, each on the shards it owns; one unsharded replica does it all.
    pushers = max(1, min(replicas, shards))
    push_rate = pushers * 1e6 / c.enqueue_us
    held_ms = c.worker_cpu_ms + c.query_ms
    limits = {
        "worker CPU": hosts * cores * 1000.0 / c.worker_cpu_ms,
        # threads that wait on the warehouse: each holds a run for cpu + query time
        "worker threads": hosts * cores * c.threads_per_core * 1000.0 / held_ms,
        "state db commits": c.pg_commits_per_second / c.pg_commits,
        "state db round trips": c.pg_round_trips_per_second / c.pg_round_trips,
        "redis commands": c.redis_commands_per_second / c.redis_commands,
    }
    drain = min(limits.values())
    bottleneck = min(limits, key=lambda name: limits[name])
    queued = enqueued = done = 0.0
    t, p99_at, enqueued_at = 0.0, None, None
    while done < alerts - 0.5:  # floats: the last fraction of a run is rounding
        t += STEP
        pushed = min(alerts - enqueued, push_rate * STEP)
        enqueued += pushed
        queued += pushed
        if p99_at is None and enqueued >= 0.99 * alerts:
            p99_at = t
        if enqueued_at is None and enqueued >= alerts:
            enqueued_at = t
        ran = min(queued, drain * STEP)
        queued -= ran
        done += ran
    return Minute(
        enqueued_at=enqueued_at or t,
        p99_lateness=p99_at or t,
        finished_at=t,
        rate=drain,
        bottleneck=bottleneck,
        utilisation={name: min(1.0, drain / limit) for name, limit in limits.items()},
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    add = parser.add_argument
    add("--alerts", type=int, default=1_000_000)
    add("--hosts", type=int, default=16)
    add("--cores", type=int, default=8)
    add("--replicas", type=int, default=1, help="active scheduler replicas (one per shard owner)")
    add("--shards", type=int, default=1)
    add("--worker-cpu-ms", type=float, default=3.3)
    add("--enqueue-us", type=float, default=253.0)
    add("--redis-commands", type=float, default=6.0)
    add("--pg-round-trips", type=float, default=27.0)
    add("--pg-commits", type=float, default=2.0)
    add("--query-ms", type=float, default=50.0)
    add("--threads-per-core", type=int, default=4)
    add("--pg-commits-per-second", type=float, default=30_000.0)
    add("--pg-round-trips-per-second", type=float, default=400_000.0)
    add("--redis-commands-per-second", type=float, default=200_000.0)
    args = parser.parse_args()
    costs = Costs(
        worker_cpu_ms=args.worker_cpu_ms,
        enqueue_us=args.enqueue_us,
        redis_commands=args.redis_commands,
        pg_round_trips=args.pg_round_trips,
        pg_commits=args.pg_commits,
        query_ms=args.query_ms,
        threads_per_core=args.threads_per_core,
        pg_commits_per_second=args.pg_commits_per_second,
        pg_round_trips_per_second=args.pg_round_trips_per_second,
        redis_commands_per_second=args.redis_commands_per_second,
    )
    minute = simulate(args.alerts, args.hosts, args.cores, args.replicas, args.shards, costs)
    print(
        f"{args.alerts:,} alerts due at one boundary, {args.hosts} hosts x {args.cores} cores, "
        f"{args.replicas} scheduler replica(s) over {args.shards} shard(s)"
    )
    print(
        f"  last message enqueued   {minute.enqueued_at:8.1f} s  (p99 {minute.p99_lateness:.1f} s)"
    )
    print(f"  last run finished       {minute.finished_at:8.1f} s  ({minute.rate:,.0f} runs/s)")
    print(f"  first bottleneck        {minute.bottleneck}")
    for name, share in sorted(minute.utilisation.items(), key=lambda item: -item[1]):
        print(f"  {name:22s}  {share:6.0%} busy while draining")
    fits = minute.finished_at <= 60 and minute.p99_lateness <= 5
    print(f"  fits in the minute (p99 enqueue <= 5 s, all done <= 60 s): {'yes' if fits else 'no'}")


if __name__ == "__main__":
    main()
