"""The fleet scheduler under load: enqueue lateness of a crowded minute, and a 100,000-alert clock.

(a) Enqueue lateness. 10,000 alerts on ``* * * * *`` (distinct queries), the real
    ``workers.scheduler.FleetScheduler`` running in this process (its own ``run`` loop in a thread)
    against a private redis-server, state in a throw-away PostgreSQL database. Every message it
    sends is timed: lateness = time the enqueue returned - the slot it is for (for messages
    pushed in pipelined round trips, the time their round trip returned). Cross-checked from Redis:
    a second client samples the queue's length every few milliseconds across the boundary, and the
    k-th message's lateness is when the length first reached k. Target: p99 < 1 s. With
    ``--path pipelined`` (the default) the scheduler builds the slot's messages ahead and pushes
    them through Dramatiq's enqueue script in pipelined round trips (workers/pipelined_enqueue.py);
    ``--path one-by-one`` sends each with ``RedisBroker.enqueue``, as RabbitMQ deployments do.
    The scheduler's RSS is read 2.5 s after the boundary's batch (the alerts file is written by
    another process, and sends are noted per push, so the bench's own memory is hardly counted).
    ``--no-drain`` skips the workers
    (for 100,000 alerts: ``--alerts-a 100000 --no-drain``; target p99 < 5 s, RSS < 300 MB).
    To reach a minute boundary quickly the scheduler is given a clock shifted by a constant
    (``FleetScheduler(clock=...)``): it starts ``--lead`` seconds before a boundary, first catches
    up the previous slot (those 10,000 messages are timed separately, then flushed), then
    enqueues the boundary's slot, which is what is measured. Then ``dramatiq workers.app -p 4 -t 8``
    is started on the queued 10,000 runs: does a minute's worth of runs execute within the
    minute on this machine (2 cores, PostgreSQL and Redis on the same box)?

(b) A scheduler holding 100,000 alerts over 200 distinct (cron, time zone) schedules (20 crons x
    10 zones, distinct query per alert): time and where the time goes to ``load_config`` (stages
    timed in one pass; cProfile top entries on a 10,000-alert subset), time and memory to build
    ``DueRuns``, CPU per idle ``ScheduleLoop.tick`` and per tick that pops a due batch (three
    simulated hours, a fixed clock). Plus two per-message costs a worker pays with a config this
    size: ``SentinelConfig.alert(name)`` and the SQL guard with more distinct queries than its
    cache holds.

(c) Config load time against the number of distinct notification secrets (one webhook URL per
    alert), each size in a fresh interpreter: ``register_secret`` recompiles one regex of every
    secret each time a new one is added.

Each part runs in a fresh interpreter (a child of this script), so memory figures are its own.

Usage: .venv/bin/python bench/scheduler_load.py [--parts abc] [--alerts-a 10000]
       [--alerts-b 100000] [--secrets 250,500,1000] [--lead 25]
"""

from __future__ import annotations

import argparse
import cProfile
import gc
import io
import logging
import multiprocessing
import os
import pstats
import resource
import subprocess
import sys
import tempfile
import threading
import time
import tracemalloc
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa
import yaml
from fleetkit import (
    READY,
    Processes,
    exit_on_signals,
    fleet_env,
    fleet_world,
    machine_note,
    percentile,
    run_child,
    status_kb,
    wait_for_log,
    wait_until,
    write_config,
)

TARGET_P99_SECONDS = 1.0  # 10,000 alerts due at one minute
TARGET_P99_SECONDS_100K = 5.0  # 100,000 alerts due at one minute, with the scheduler's RSS:
TARGET_RSS_MB_100K = 300
CRONS = [f"{minute} * * * *" for minute in range(0, 60, 3)]  # 20 crons
ZONES = [
    "UTC", "Europe/Berlin", "America/New_York", "Asia/Tokyo", "Australia/Sydney",
    "America/Los_Angeles", "Europe/London", "Asia/Kolkata", "America/Sao_Paulo",
    "Africa/Johannesburg",
]  # fmt: skip


def mb(kb: int) -> str:
    return f"{kb / 1024:.0f} MB"


def epoch(naive_utc: datetime) -> float:
    return naive_utc.replace(tzinfo=UTC).timestamp()


def stats_line(values: list[float]) -> str:
    return (
        f"p50 {percentile(values, 50) * 1000:.0f} ms, p99 {percentile(values, 99) * 1000:.0f} ms, "
        f"max {max(values) * 1000:.0f} ms, min {min(values) * 1000:.0f} ms"
    )


# -- (a) ---------------------------------------------------------------------------------------


def part_a(
    count: int,
    lead: float,
    processes: int,
    threads: int,
    drain_timeout: float,
    path: str,
    drain_too: bool,
) -> None:
    print(
        f"(a) {count} alerts on '* * * * *', FleetScheduler in this process, private Redis, "
        f"enqueue path: {path}"
    )
    with fleet_world() as (directory, redis_url, db_url, namespace):
        # Written by a process of its own: building and dumping 100,000 alerts is not the
        # scheduler's memory, and would be counted in this process's RSS.
        config = directory / "alerts.yaml"
        writer = multiprocessing.get_context("spawn").Process(
            target=write_due_alerts, args=(config, db_url, count)
        )
        writer.start()
        writer.join()
        env = fleet_env(redis_url, namespace, config, db_url)
        for key in ("REDIS_URL", "SENTINEL_NAMESPACE", "SENTINEL_CONFIG", "STATE_DB_URL"):
            os.environ[key] = env[key]
        os.environ["SENTINEL_METRICS"] = "off"
        slot, scheduler = enqueue_minute(config, namespace, count, lead, path)
        if not drain_too:
            return
        with Processes(directory, env) as procs:
            drain(procs, db_url, slot, count, processes, threads, drain_timeout, namespace)
        sweep_capacity(scheduler, slot, count)
        profile_enqueue(scheduler, slot, min(count, 2000))


class LeaseLosses(logging.Handler):
    """Counts the scheduler's 'lost the scheduler lease' warnings."""

    def __init__(self) -> None:
        super().__init__(logging.WARNING)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if "lost the scheduler lease" in record.getMessage():
            self.count += 1


class Sends:
    """When each enqueue returned, noted per push and slot, not per run: 200,000 tuples would
    be 18 MB of the bench's own in the scheduler's RSS."""

    def __init__(self) -> None:
        self.pushes: list[tuple[str, float, int]] = []  # (slot, when it returned, runs)
        self.count = 0

    def add(self, slot: str, when: float, runs: int = 1) -> None:
        self.pushes.append((slot, when, runs))
        self.count += runs

    def __len__(self) -> int:
        return self.count

    def each(self) -> list[tuple[str, float]]:
        """One (slot, when) per run, in order."""
        return [(slot, when) for slot, when, runs in self.pushes for _ in range(runs)]


def timed_pipeline(broker: Any, sends: Sends, shift: list[timedelta]) -> Any:
    """The scheduler's PipelinedEnqueue, noting when each push returned (on the shifted clock)."""
    from workers.actors import execute_alert
    from workers.pipelined_enqueue import PipelinedEnqueue

    class TimedPipelinedEnqueue(PipelinedEnqueue):
        def push(self, runs: Any) -> list[str]:
            ids = super().push(runs)
            returned = time.time() + shift[0].total_seconds()
            for slot, runs_of_slot in Counter(run.slot for run in runs).items():
                sends.add(slot.isoformat(), returned, runs_of_slot)
            return ids

    return TimedPipelinedEnqueue(broker, execute_alert)


class QueueLengths(threading.Thread):
    """Samples a Redis list's length on its own connection: when messages landed, as Redis saw."""

    def __init__(self, url: str, key: str) -> None:
        super().__init__(name="queue-lengths", daemon=True)
        import redis

        self.client = redis.Redis.from_url(url)
        self.key = key
        self.samples: list[tuple[float, int]] = []
        self.stopped = threading.Event()

    def run(self) -> None:
        while not self.stopped.is_set():
            length = int(self.client.llen(self.key))
            self.samples.append((time.time(), length))
            time.sleep(0.002)

    def stop(self) -> None:
        time.sleep(0.05)  # a last sample after the last push
        self.stopped.set()
        self.join()

    def lateness(self, count: int, slot_epoch: float) -> list[float]:
        """The k-th message's lateness: when the length first reached k, less the slot."""
        late, k = [], 1
        for when, length in self.samples:
            while k <= min(length, count):
                late.append(when - slot_epoch)
                k += 1
        return late


def write_due_alerts(path: Path, db_url: str, count: int) -> None:
    alerts = [
        {
            "name": f"due_{i:05d}",
            "query": f"SELECT 'OK' AS status, {i} AS actual_value",
            "schedule": "* * * * *",
        }
        for i in range(count)
    ]
    write_config(path, db_url, alerts)


def enqueue_minute(
    config: Path, namespace: str, count: int, lead: float, path: str
) -> tuple[datetime, Any]:
    """Runs the scheduler across one minute boundary and prints the lateness of its enqueues.

    Returns the slot and the (stopped) FleetScheduler."""
    from sentinel.models import utcnow
    from workers import keys
    from workers.dramatiq_fleet import create_fleet
    from workers.scheduler import FleetScheduler

    fleet = create_fleet()
    client: Any = getattr(fleet.broker, "client")  # noqa: B009 - RedisBroker's client
    queue = keys.queue_name(namespace, keys.ALERTS)
    shift = [timedelta(0)]
    sends = Sends()  # when each enqueue returned, on the scheduler's clock
    losses = LeaseLosses()
    logging.getLogger("workers.scheduler").addHandler(losses)

    def clock() -> datetime:
        return utcnow() + shift[0]

    def send(name: str, slot: str | None, triggered_by: str, options: dict[str, Any]) -> str:
        message_id = fleet.send_run(name, slot, triggered_by, options)
        sends.add(slot or "", time.time() + shift[0].total_seconds())
        return message_id

    started = time.perf_counter()
    scheduler = FleetScheduler(
        str(config),
        client,
        send,
        namespace,
        clock=clock,
        pipeline=timed_pipeline(fleet.broker, sends, shift) if path == "pipelined" else None,
    )
    print(
        f"  FleetScheduler built (load_config of {count} alerts, DueRuns) in "
        f"{time.perf_counter() - started:.2f} s; process RSS then {mb(status_kb(os.getpid()))}"
    )

    real = utcnow()
    boundary = real.replace(second=0, microsecond=0) + timedelta(minutes=2)
    shift[0] = boundary - timedelta(seconds=lead) - real
    stop = threading.Event()
    thread = threading.Thread(target=scheduler.run, args=(stop,), name="fleet-scheduler")
    begun = time.time() + shift[0].total_seconds()
    thread.start()
    try:
        wait_until(lambda: len(sends) >= count, lead + 60, 0.01, "the catch-up enqueues")
        catch_up = [when - begun for slot, when in sends.each()[:count]]
        print(
            f"  catch-up of the previous slot at start: {count} enqueued in "
            f"{max(catch_up):.2f} s after the scheduler thread started"
        )
        if clock() > boundary - timedelta(seconds=1):
            raise RuntimeError(f"catch-up ran past the boundary: rerun with --lead > {lead}")
        fleet.broker.flush(queue)  # only the boundary's messages stay queued
        lengths = QueueLengths(os.environ["REDIS_URL"], f"{namespace}:{queue}")
        wait_until(lambda: clock() >= boundary - timedelta(seconds=0.5), lead, 0.01, "boundary")
        lengths.start()
        lost_before = losses.count
        commands_before = redis_commands(client)
        wait_until(lambda: len(sends) >= 2 * count, 120, 0.01, "the boundary's enqueues")
        commands = redis_commands(client)
        lengths.stop()
        time.sleep(2.5)  # the ticks right after the batch: is the lease still held?
        lost_after = losses.count
        rss = status_kb(os.getpid())  # once the batch is over, as the scheduler then runs
    finally:
        stop.set()
        thread.join(timeout=60)
        logging.getLogger("workers.scheduler").removeHandler(losses)
    report_minute(
        sends.each()[count:],
        boundary,
        {n: c - commands_before.get(n, 0) for n, c in commands.items()},
        lengths.lateness(count, epoch(boundary) - shift[0].total_seconds()),
        f"{namespace}:{queue}",
        (lost_before, lost_after - lost_before),
        rss,
    )
    return boundary, scheduler


def report_minute(
    sends: list[tuple[str, float]],
    boundary: datetime,
    commands: dict[str, int],
    stored: list[float],
    where: str,
    lost: tuple[int, int],
    rss: int,
) -> None:
    from workers.leases import LEASE_TTL_MS

    iso = boundary.isoformat()
    lateness = [when - epoch(boundary) for slot, when in sends if slot == iso]
    count = len(lateness)
    assert count == len(sends), f"{count} of {len(sends)} sends were for {iso}"
    spread = max(lateness) - min(lateness)
    print(
        f"  slot {iso}: {count} enqueued, lateness (enqueue returned - slot): "
        f"{stats_line(lateness)}"
    )
    target = TARGET_P99_SECONDS_100K if count >= 100_000 else TARGET_P99_SECONDS
    verdict = "meets" if percentile(lateness, 99) < target else "MISSES"
    per_run = {name: calls / count for name, calls in commands.items() if calls >= count / 2}
    breakdown = ", ".join(f"{n} {v:.1f}" for n, v in sorted(per_run.items(), key=lambda kv: -kv[1]))
    print(
        f"    {verdict} the target p99 < {target:.0f} s; first to last enqueue "
        f"{spread:.2f} s = {count / spread:.0f} enqueues/s = {spread / count * 1e6:.0f} us per "
        f"run, one after another; Redis commands per run (Lua-internal ones included): {breakdown}"
    )
    print(
        f"  cross-check from Redis ({len(stored)} messages seen in the list {where} by a second "
        f"client sampling LLEN, when the length reached k - slot): {stats_line(stored)}"
    )
    print(
        f"  scheduler lease (TTL {LEASE_TTL_MS} ms) lost {lost[0]}x after the catch-up batch, "
        f"{lost[1]}x after the boundary's batch (it is renewed between ticks, not during a batch)"
    )
    rss_verdict = ""
    if count >= 100_000:
        meets = rss / 1024 < TARGET_RSS_MB_100K
        rss_verdict = f": {'meets' if meets else 'MISSES'} the target < {TARGET_RSS_MB_100K} MB"
    print(
        f"  scheduler process RSS after the boundary's batch: {mb(rss)} "
        f"(peak {mb(status_kb(os.getpid(), 'VmHWM'))}){rss_verdict}"
    )


def redis_commands(client: Any) -> dict[str, int]:
    stats = client.info("commandstats")
    return {name.removeprefix("cmdstat_"): int(v["calls"]) for name, v in stats.items()}


def sweep_capacity(scheduler: Any, slot: datetime, count: int) -> None:
    """How long one FleetScheduler.sweep() takes to check the enqueued runs against the state
    database, once their deadline (enqueue + timeout + stale-claim grace) has passed.

    The catch-up slot's messages were flushed on purpose, so the sweep rightly sends those again;
    the boundary's runs all finished and are only checked off."""
    from sentinel.defaults import SWEEP_INTERVAL_SECONDS

    recovery = scheduler.recovery
    due_at = recovery.latest_deadline()
    if due_at is None:
        print("  sweep: skipped, no run is awaited")
        return
    wait = (due_at - scheduler.clock()).total_seconds()
    if wait > 120:
        print(f"  sweep: skipped, the awaited runs are due only in {wait:.0f} s")
        return
    time.sleep(max(0.0, wait) + 0.5)
    before = recovery.awaiting
    sent: list[str] = []
    send = scheduler.send

    def count_sent(alert_name: str, *_: Any) -> str:
        sent.append(alert_name)
        return "-"

    scheduler.send = count_sent
    started = time.perf_counter()
    try:
        scheduler.sweep()
    finally:
        scheduler.send = send
    took = time.perf_counter() - started
    checked = before - recovery.awaiting + len(sent)
    per_minute = checked * 60 / SWEEP_INTERVAL_SECONDS
    print(
        f"  sweep(): {checked} of {before} awaited runs checked against the state database in "
        f"{took:.2f} s by one call ({len(sent)} owed, sent again); every "
        f"{SWEEP_INTERVAL_SECONDS:.0f} s that is at most {per_minute:.0f} runs/minute against "
        f"{count} enqueued per minute"
    )


def profile_enqueue(scheduler: Any, slot: datetime, runs: int) -> None:
    """cProfile of FleetScheduler.enqueue_runs on a batch of due runs (a slot not yet claimed)."""
    from sentinel.scheduling.due import DueRun

    batch = [DueRun(a, slot + timedelta(days=1)) for a in scheduler.loop.alerts[:runs]]
    profiler = cProfile.Profile()
    started = time.perf_counter()
    profiler.enable()
    scheduler.enqueue_runs(batch)
    profiler.disable()
    took = time.perf_counter() - started
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("cumulative").print_stats(16)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("ncalls"))
    print(
        f"  cProfile of FleetScheduler.enqueue_runs({runs} runs) ({took:.2f} s under the "
        "profiler), top entries by cumulative time:"
    )
    site = str(Path(yaml.__file__).parents[1]) + "/"
    root = str(Path(__file__).resolve().parents[1]) + "/"
    for line in lines[start : start + 17]:
        print("    " + line.replace(site, "").replace(root, ""))


def drain(
    procs: Processes,
    db_url: str,
    slot: datetime,
    count: int,
    processes: int,
    threads: int,
    timeout: float,
    namespace: str,
) -> None:
    """Start workers on the queued minute; how long until every run of the slot is finished."""
    engine = sa.create_engine(db_url, poolclass=sa.NullPool)
    query = sa.text(
        "SELECT count(*) FILTER (WHERE status <> 'running'), min(claimed_at), max(finished_at), "
        "count(*) FILTER (WHERE status = 'success'), count(*) "
        "FROM sqlsentinel_executions WHERE scheduled_for = :slot"
    )
    started_real = datetime.now(UTC).replace(tzinfo=None)
    started = time.monotonic()
    process, log = procs.workers(processes, threads)
    ready = wait_for_log(log, READY, processes, timeout=120)
    row: Any = None

    def done() -> bool:
        nonlocal row
        with engine.connect() as conn:
            row = conn.execute(query, {"slot": slot}).one()
        return int(row[0]) >= count or time.monotonic() - started > timeout

    wait_until(done, timeout + 10, 0.25, "the drain")
    procs.stop(process)
    engine.dispose()
    finished, first_claim, last_finish, successes, rows = row
    label = f"  dramatiq workers.app -p {processes} -t {threads}"
    if first_claim is None:
        print(f"{label}: nothing executed within {timeout:.0f} s")
        return
    drain_s = (last_finish - first_claim).total_seconds()
    print(
        f"{label}: ready {ready:.1f} s after start; first run claimed "
        f"{(first_claim - started_real).total_seconds():.1f} s after start (each worker loads "
        f"the {count}-alert config on its first message)"
    )
    status = "all" if finished >= count else f"ONLY {finished} of"
    print(
        f"    {status} {count} runs finished ({successes} success) in {drain_s:.1f} s from the "
        f"first claim to the last finish = {finished / drain_s:.0f} runs/s; "
        + (
            "fits in the minute"
            if finished >= count and drain_s < 60
            else "does NOT fit in one minute on this machine"
        )
    )
    if finished < count:
        print(
            f"    after {timeout:.0f} s: {rows} execution rows for the slot ({finished} finished)"
        )
        text = log.read_text(errors="replace").splitlines()
        problems = [ln for ln in text if any(w in ln for w in ("ERROR", "WARNING", "Trace"))]
        for line in problems[:8]:
            print(f"    worker log: {line[:300]}")


# -- (b) ---------------------------------------------------------------------------------------


def big_alerts(count: int) -> list[dict[str, Any]]:
    return [
        {
            "name": f"alert_{i:06d}",
            "query": f"SELECT CASE WHEN count(*) > {i} THEN 'ALERT' ELSE 'OK' END AS status, "
            f"count(*) AS actual_value FROM events WHERE kind = 'k{i % 97}'",
            "schedule": CRONS[i % len(CRONS)],
            "timezone": ZONES[(i // len(CRONS)) % len(ZONES)],
        }
        for i in range(count)
    ]


def yaml_loader_in_use() -> str:
    """Which YAML loader ConfigLoader.load calls, read from its source (it has changed)."""
    import inspect

    from sentinel.config import ConfigLoader

    source = inspect.getsource(ConfigLoader.load)
    return "CSafeLoader when available" if "CSafeLoader" in source else "yaml.safe_load"


def load_stages(alerts: list[dict[str, Any]], directory: Path, url: str) -> None:
    """What load_config spends its time on, each step measured on its own on the same alerts
    (fresh query texts each time, so the SQL guard's cache never helps), against a whole call."""
    from croniter import croniter

    from sentinel.config import AlertConfig, load_config
    from sentinel.sqlguard import check_query, dialect_for_url

    def fresh(tag: str) -> list[dict[str, Any]]:
        return [{**a, "query": f"{a['query']} AND tag = '{tag}'"} for a in alerts]

    times: dict[str, float] = {}
    path = write_config(directory / "stages.yaml", url, fresh("whole"))
    started = time.perf_counter()
    load_config(path)
    total = time.perf_counter() - started
    text = write_config(directory / "stages.yaml", url, fresh("parts")).read_text()
    started = time.perf_counter()
    data = yaml.safe_load(text)
    times["YAML parse with yaml.SafeLoader (pure Python)"] = time.perf_counter() - started
    started = time.perf_counter()
    yaml.load(text, Loader=yaml.CSafeLoader)
    times["YAML parse with yaml.CSafeLoader (libyaml)"] = time.perf_counter() - started
    started = time.perf_counter()
    models = [AlertConfig.model_validate(item) for item in data["alerts"]]
    times["AlertConfig.model_validate (pydantic, validators)"] = time.perf_counter() - started
    started = time.perf_counter()
    for model in models:
        croniter.is_valid(model.schedule)
    times["  of which croniter.is_valid (once per alert, not cached)"] = (
        time.perf_counter() - started
    )
    dialect = dialect_for_url(url)
    started = time.perf_counter()
    for model in models:
        check_query(model.query, dialect)
    times["SQL guard: sqlglot parse of each distinct query"] = time.perf_counter() - started
    print(
        f"  where load_config's time goes ({len(alerts)} alerts of the same shape; its YAML "
        f"parser: {yaml_loader_in_use()}):"
    )
    print(f"    {total:6.2f} s  100%  load_config, whole")
    for label, seconds in times.items():
        print(f"    {seconds:6.2f} s  {seconds / total:4.0%}  {label}")


def part_b(count: int, profile_count: int) -> None:
    from sentinel.config import load_config
    from sentinel.scheduling.due import DueRuns

    schedules = len(CRONS) * len(ZONES)
    print(
        f"(b) {count} alerts over {schedules} distinct (cron, time zone) schedules, distinct "
        "queries"
    )
    with tempfile.TemporaryDirectory(prefix="sentinel-bench-") as tmp:
        url = "postgresql://postgres@127.0.0.1:5432/not_connected"
        path = write_config(Path(tmp) / "big.yaml", url, big_alerts(count))
        print(f"  config file {path.stat().st_size / 1e6:.1f} MB")
        subset = big_alerts(profile_count)
        load_stages(subset, Path(tmp), url)  # first, while the heap is small
        sub_path = write_config(Path(tmp) / "sub.yaml", url, subset[::-1])
        print_profile(sub_path, profile_count)
        gc.collect()

        rss0 = status_kb(os.getpid())
        started = time.perf_counter()
        config = load_config(path)
        load_s = time.perf_counter() - started
        rss1 = status_kb(os.getpid())
        print(
            f"  load_config of all {count}: {load_s:.1f} s ({load_s / count * 1e6:.0f} us per "
            f"alert); RSS {mb(rss0)} -> {mb(rss1)} (+{mb(rss1 - rss0)})"
        )

        now = datetime(2026, 1, 5, 10, 1, 30)
        started = time.perf_counter()
        due = DueRuns(config.alerts, now)
        build_s = time.perf_counter() - started
        rss2 = status_kb(os.getpid())
        tracemalloc.start()
        second = DueRuns(config.alerts, now)
        current, peak = tracemalloc.get_traced_memory()
        tracemalloc.stop()
        del second
        print(
            f"  DueRuns: built in {build_s * 1000:.0f} ms, {len(due.groups)} schedules, "
            f"{len(due)} alerts; RSS now {mb(rss2)}; tracemalloc of a second build: "
            f"{current / 1e6:.1f} MB kept, {peak / 1e6:.1f} MB peak"
        )

        ticks(path, config, now)
        worker_costs(config)
    print(f"  peak RSS of this process: {mb(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)}")


def print_profile(path: Path, count: int) -> None:
    from sentinel.config import load_config

    profiler = cProfile.Profile()
    profiler.enable()
    load_config(path)
    profiler.disable()
    out = io.StringIO()
    pstats.Stats(profiler, stream=out).sort_stats("tottime").print_stats(12)
    lines = out.getvalue().splitlines()
    start = next(i for i, line in enumerate(lines) if line.strip().startswith("ncalls"))
    print(f"  cProfile of load_config ({count} alerts), top entries by own time:")
    site = str(Path(yaml.__file__).parents[1]) + "/"
    root = str(Path(__file__).resolve().parents[1]) + "/"
    for line in lines[start : start + 13]:
        print("    " + line.replace(site, "").replace(root, ""))


def ticks(path: Path, config: Any, start: datetime) -> None:
    from sentinel.scheduling.due import DueRun
    from sentinel.scheduling.loop import ScheduleLoop

    batches: list[int] = []

    def submit(runs: list[DueRun]) -> None:
        batches.append(len(runs))

    moment = [start]
    loop = ScheduleLoop(str(path), submit, clock=lambda: moment[0], config=config)
    first = loop.due.next_fire()
    assert first is not None and first > start + timedelta(seconds=60)
    idle_ticks = 20_000
    cpu = time.process_time()
    for i in range(idle_ticks):
        moment[0] = start + timedelta(milliseconds=i)  # 20 s of ticks before the first slot
        loop.tick(moment[0])
    idle_us = (time.process_time() - cpu) / idle_ticks * 1e6
    assert not batches
    print(
        f"  idle ScheduleLoop.tick (nothing due; includes the config file's os.stat): "
        f"{idle_us:.1f} us CPU per tick"
    )

    for collect in (False, True):  # the collector on second: with warm caches
        pops(path, config, first, collect)


def pops(path: Path, config: Any, first: datetime, collect: bool) -> None:
    """Three simulated hours, one tick per minute boundary; CPU of the ticks that pop a batch."""
    from sentinel.scheduling.due import DueRun
    from sentinel.scheduling.loop import ScheduleLoop

    batches: list[int] = []

    def submit(runs: list[DueRun]) -> None:
        batches.append(len(runs))

    moment = [first - timedelta(seconds=30)]
    loop = ScheduleLoop(str(path), submit, clock=lambda: moment[0], config=config)
    costs: list[tuple[int, float]] = []
    minute = first
    full_collections = gc.get_stats()[2]["collections"]
    if not collect:
        gc.disable()
    try:
        for _ in range(180):
            moment[0] = minute
            before = len(batches)
            cpu = time.process_time()
            loop.tick(minute)
            spent = time.process_time() - cpu
            if len(batches) > before:
                costs.append((batches[-1], spent))
            minute += timedelta(minutes=1)
    finally:
        gc.enable()
    full_collections = gc.get_stats()[2]["collections"] - full_collections
    sizes = [size for size, _ in costs]
    per_batch = [spent for _, spent in costs]
    per_run = sum(per_batch) / sum(sizes) * 1e6
    print(
        f"  ticks that pop a due batch (3 simulated hours, garbage collector "
        f"{'on' if collect else 'off'}, {full_collections} full collections): {len(costs)} "
        f"batches of {min(sizes)}-{max(sizes)} runs; CPU per pop: median "
        f"{percentile(per_batch, 50) * 1000:.1f} ms, mean {sum(per_batch) / len(costs) * 1000:.1f}"
        f" ms, max {max(per_batch) * 1000:.1f} ms ({per_run:.2f} us per due run)"
    )


def worker_costs(config: Any) -> None:
    from sentinel.sqlguard import check_query

    names = [a.name for a in config.alerts]
    sample = names[:: max(1, len(names) // 200)]  # spread over the list: the mean is a half scan
    started = time.perf_counter()
    for name in sample:
        config.alert(name)
    lookup_ms = (time.perf_counter() - started) / len(sample) * 1000
    started = time.perf_counter()
    for _ in range(20):
        config.alert(names[-1])
    last_ms = (time.perf_counter() - started) / 20 * 1000
    print(
        f"  SentinelConfig.alert(name), called by the execute-alert actor for every message (a "
        f"linear scan of {len(names)} alerts): mean {lookup_ms:.2f} ms, {last_ms:.2f} ms for the "
        "last alert"
    )
    queries = [a.query for a in config.alerts[:2000]]
    check_query(queries[0], "postgres")
    started = time.perf_counter()
    for _ in range(2000):
        check_query(queries[0], "postgres")
    hit_us = (time.perf_counter() - started) / 2000 * 1e6
    started = time.perf_counter()
    for query in queries:  # 2000 distinct texts cycle through a 1024-entry LRU: every one misses
        check_query(query, "postgres")
    miss_us = (time.perf_counter() - started) / len(queries) * 1e6
    print(
        f"  SQL guard per execution (DatabaseAdapter.fetch_first_row): {hit_us:.1f} us when the "
        f"query is in its 1024-entry cache, {miss_us:.0f} us when not (more than 1024 distinct "
        f"queries: every execution re-parses)"
    )


# -- (c) ---------------------------------------------------------------------------------------

_SECRETS_CHILD = """
import sys, time
from sentinel.config import load_config
started = time.perf_counter()
load_config(sys.argv[1])
print(time.perf_counter() - started)
"""


def part_c(sizes: list[int]) -> None:
    print(
        "(c) load_config with one distinct webhook URL (a registered secret) per alert, each "
        "in a fresh interpreter:"
    )
    with tempfile.TemporaryDirectory(prefix="sentinel-bench-") as tmp:
        for size in sizes:
            alerts = [
                {
                    "name": f"hooked_{i:05d}",
                    "query": "SELECT 'OK' AS status",
                    "schedule": "* * * * *",
                    "notify": [
                        {"channel": "webhook", "webhook_url": f"https://hooks.example.com/h/{i}"}
                    ],
                }
                for i in range(size)
            ]
            url = "postgresql://postgres@127.0.0.1:5432/not_connected"
            path = write_config(Path(tmp) / f"hooks{size}.yaml", url, alerts)
            plain = write_config(
                Path(tmp) / f"plain{size}.yaml",
                url,
                [{k: v for k, v in a.items() if k != "notify"} for a in alerts],
            )
            with_hooks = child_seconds(path)
            without = child_seconds(plain)
            print(
                f"  {size:5d} alerts: {with_hooks:6.2f} s with a webhook each, {without:5.2f} s "
                "without notify"
            )


def child_seconds(path: Path) -> float:
    result = subprocess.run(
        [sys.executable, "-c", _SECRETS_CHILD, str(path)],
        check=True,
        capture_output=True,
        text=True,
        timeout=600,
    )
    return float(result.stdout.strip().splitlines()[-1])


# -- driver ------------------------------------------------------------------------------------


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--parts", default="abc", help="which parts to run (a, b, c)")
    parser.add_argument("--alerts-a", type=int, default=10_000)
    parser.add_argument("--lead", type=float, default=25.0, help="(a) seconds before boundary")
    parser.add_argument("--processes", type=int, default=4, help="(a) worker processes")
    parser.add_argument("--threads", type=int, default=8, help="(a) threads per worker")
    parser.add_argument("--drain-timeout", type=float, default=180.0)
    parser.add_argument("--path", choices=("pipelined", "one-by-one"), default="pipelined")
    parser.add_argument("--no-drain", action="store_true", help="(a) no workers afterwards")
    parser.add_argument("--alerts-b", type=int, default=100_000)
    parser.add_argument("--profile-alerts", type=int, default=10_000)
    parser.add_argument("--secrets", default="250,500,1000", help="(c) sizes, comma-separated")
    parser.add_argument("--child", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    exit_on_signals()
    logging.basicConfig(level=logging.WARNING, format="%(levelname)s %(name)s %(message)s")

    print(f"machine: {machine_note()}", flush=True)
    if not args.child:  # each part in a fresh interpreter
        argv = sys.argv[1:]
        passed = [
            a
            for i, a in enumerate(argv)
            if not a.startswith("--parts") and (i == 0 or argv[i - 1] != "--parts")
        ]
        for part in args.parts:
            run_child([__file__, *passed, "--parts", part, "--child"], f"part {part}")
            print(flush=True)
        return
    if "a" in args.parts:
        part_a(
            args.alerts_a,
            args.lead,
            args.processes,
            args.threads,
            args.drain_timeout,
            args.path,
            not args.no_drain,
        )
    if "b" in args.parts:
        part_b(args.alerts_b, args.profile_alerts)
    if "c" in args.parts:
        part_c([int(s) for s in args.secrets.split(",") if s])
    sys.stdout.flush()


if __name__ == "__main__":
    main()
