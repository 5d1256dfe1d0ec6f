"""Requests per second and latency of ``GET /api/v1/alerts`` with 1,000 alerts.

Starts ``sqlsentinel api`` (uvicorn, one process) on a free loopback port over a SQLite state
database where every alert has run once, then sends requests from client threads with keep-alive
connections and prints throughput and p50/p99 latency.

Usage: python bench/api_throughput.py [ALERTS] [REQUESTS] [THREADS]
"""

from __future__ import annotations

import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import yaml


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def main(alerts: int = 1000, requests: int = 2000, threads: int = 8) -> None:
    exe = shutil.which("sqlsentinel") or str(Path(sys.executable).parent / "sqlsentinel")
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
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
        url = f"http://127.0.0.1:{port}/api/v1/alerts"
        try:
            deadline = time.monotonic() + 30
            while time.monotonic() < deadline:
                try:
                    if httpx.get(url, timeout=5).status_code == 200:
                        break
                except httpx.TransportError:
                    time.sleep(0.1)
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
                        assert response.status_code == 200 and len(response.json()) == alerts
                with lock:
                    latencies.extend(mine)

            workers = [threading.Thread(target=client) for _ in range(threads)]
            started = time.perf_counter()
            for w in workers:
                w.start()
            for w in workers:
                w.join()
            elapsed = time.perf_counter() - started
        finally:
            server.terminate()
            server.wait(timeout=30)
    latencies.sort()
    p99 = latencies[int(len(latencies) * 0.99) - 1]
    print(f"GET /api/v1/alerts: {alerts} alerts, {len(latencies)} requests, {threads} threads")
    p50 = statistics.median(latencies)
    rate = len(latencies) / elapsed
    print(f"  {rate:.0f} requests/s, p50 {p50 * 1000:.0f} ms, p99 {p99 * 1000:.0f} ms")


if __name__ == "__main__":
    args = [int(a) for a in sys.argv[1:4]]
    main(*args)
