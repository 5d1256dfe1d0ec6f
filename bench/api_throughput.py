"""Requests per second and latency of ``GET /api/v1/alerts`` and the status page ``GET /``, with
1,000 alerts (issue 10's target: the list at >= 300 requests/s with p99 < 50 ms).

Starts ``sqlsentinel api`` (uvicorn, one process) on a free loopback port over a SQLite state
database where every alert has run once, then sends requests to each path in turn from client
threads with keep-alive connections and prints throughput and p50/p99 latency, with the load on
the machine (client and server share it).

The first answer of each path is checked in full (every alert listed); the timed ones by status,
size and the number of alerts in them: decoding 370 kB of JSON costs the client more CPU than the
server spends answering, and on this machine that would measure the client.

Usage: python bench/api_throughput.py [ALERTS] [REQUESTS] [THREADS]
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml

sys.path.insert(0, str(Path(__file__).resolve().parent))
from fleetkit import cpu_seconds, free_port, machine_busy, machine_note


def main(alerts: int = 1000, requests: int = 2000, threads: int = 8) -> None:
    exe = shutil.which("sqlsentinel") or str(Path(sys.executable).parent / "sqlsentinel")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        # The alerts query a database that exists (the adapter opens it read-only, so it would not
        # be created): every run then records its outcome, ALERT or OK, not a connection error.
        sqlite3.connect(directory / "data.db").close()
        data = f"sqlite:///{directory / 'data.db'}"
        config = directory / "alerts.yaml"
        rows = [
            {
                "name": f"alert_{i:04d}",
                "query": f"SELECT CASE WHEN {i} % 7 = 0 THEN 'ALERT' ELSE 'OK' END AS status, "
                f"{i} AS actual_value, 100 AS threshold",
                "schedule": f"*/{1 + i % 5} * * * *",
                "labels": {"team": f"team{i % 4}"},
            }
            for i in range(alerts)
        ]
        config.write_text(yaml.safe_dump({"database": {"url": data}, "alerts": rows}))
        state = f"sqlite:///{directory / 'state.db'}"
        subprocess.run(
            [exe, "run", str(config), "--state-db", state], capture_output=True, check=False
        )
        port = free_port()
        env = {
            k: v
            for k, v in os.environ.items()
            if k not in ("SENTINEL_API_TOKEN", "REDIS_URL", "BROKER_URL")
        }
        server = subprocess.Popen(
            [exe, "api", str(config), "--port", str(port), "--state-db", state],
            env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
        )  # fmt: skip
        base = f"http://127.0.0.1:{port}"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(f"{base}/health", timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
            print(f"{alerts} alerts, {requests} requests a path, {threads} threads")
            for path, marker in (("/api/v1/alerts", b'{"name":'), ("/", b'<tr id="alert-')):
                measure(base, path, marker, alerts, requests, threads, server.pid)
        finally:
            server.terminate()
            server.wait(timeout=30)


def check_first(url: str, alerts: int) -> None:
    response = httpx.get(url, timeout=30)
    assert response.status_code == 200, response.text
    if url.endswith("/api/v1/alerts"):
        names = [a["name"] for a in response.json()]
    else:
        names = [line for line in response.text.splitlines() if '<tr id="alert-' in line]
    assert len(names) == alerts, (url, len(names))


def measure(
    base: str, path: str, marker: bytes, alerts: int, requests: int, threads: int, server: int
) -> None:
    url = base + path
    check_first(url, alerts)
    latencies: list[float] = []
    lock = threading.Lock()
    per_thread = requests // threads

    def client() -> None:
        mine = []
        with httpx.Client(timeout=30) as http:
            for _ in range(per_thread):
                started = time.perf_counter()
                response = http.get(url)
                mine.append(time.perf_counter() - started)
                assert response.status_code == 200 and response.content.count(marker) == alerts
        with lock:
            latencies.extend(mine)

    workers = [threading.Thread(target=client) for _ in range(threads)]
    busy, total = machine_busy()
    cpu = cpu_seconds([server])
    started = time.perf_counter()
    for w in workers:
        w.start()
    for w in workers:
        w.join()
    elapsed = time.perf_counter() - started
    cpu = cpu_seconds([server]) - cpu
    busy_after, total_after = machine_busy()
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    p50 = statistics.median(latencies)
    rate = len(latencies) / elapsed
    load = 100 * (busy_after - busy) / max(total_after - total, 1)
    print(f"GET {path}")
    print(f"  {rate:.0f} requests/s, p50 {p50 * 1000:.1f} ms, p99 {p99 * 1000:.1f} ms")
    # The server's CPU per request is the figure other load on the machine disturbs least.
    print(f"  server CPU {cpu / len(latencies) * 1000:.2f} ms a request")
    print(f"  CPU of the whole machine while measuring {load:.0f}%; {machine_note()}")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:4]]
    main(*args)
