"""Executions per second and peak memory of ``sqlsentinel run`` with 200 trivial alerts.

Target: at least 900 executions/s on SQLite (five times the public peer's 180/s). Measured two ways:
the whole ``sqlsentinel run`` process (start-up, config, migrations check, 200 runs) and the
executor loop alone inside one process. PostgreSQL is used when it answers on 127.0.0.1:5432.

Usage: python bench/run_throughput.py [ALERTS]
"""

from __future__ import annotations

import resource
import shutil
import subprocess
import sys
import tempfile
import time
import uuid
from pathlib import Path

import sqlalchemy as sa
import yaml

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"


def write_config(directory: Path, data_url: str, count: int) -> Path:
    alerts = [
        {
            "name": f"trivial_{i:04d}",
            "query": f"SELECT CASE WHEN {i} % 2 = 0 THEN 'OK' ELSE 'OK' END AS status, "
            f"{i} AS actual_value, 100 AS threshold",
            "schedule": "* * * * *",
        }
        for i in range(count)
    ]
    path = directory / "bench.yaml"
    path.write_text(yaml.safe_dump({"database": {"url": data_url}, "alerts": alerts}))
    return path


def run_cli(config: Path, state_url: str, count: int, label: str) -> None:
    exe = shutil.which("sqlsentinel") or str(Path(sys.executable).parent / "sqlsentinel")
    # First run creates the state tables; it is not what is measured.
    subprocess.run(
        [exe, "run", str(config), "--state-db", state_url], check=True, capture_output=True
    )
    times = []
    for _ in range(3):
        started = time.perf_counter()
        subprocess.run(
            [exe, "run", str(config), "--state-db", state_url], check=True, capture_output=True
        )
        times.append(time.perf_counter() - started)
    best = min(times)
    peak_mb = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(f"{label}: `sqlsentinel run` of {count} alerts, whole process: best {best:.3f} s "
          f"= {count / best:.0f} executions/s; peak RSS of a run {peak_mb:.0f} MB")  # fmt: skip


def run_in_process(config: Path, state_url: str, count: int, label: str) -> None:
    from sentinel.deployment import Deployment

    deployment = Deployment.from_file(str(config), state_url)
    deployment.run()  # warm: connections, schema check, statement caches
    best = float("inf")
    for _ in range(3):
        started = time.perf_counter()
        results = deployment.run()
        best = min(best, time.perf_counter() - started)
        assert len(results) == count and all(r.status == "success" for r in results)
    deployment.close()
    rss_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"{label}: executor loop in one process: best {best:.3f} s = {count / best:.0f} "
          f"executions/s; peak RSS of this process {rss_mb:.0f} MB")  # fmt: skip


def postgres_database() -> tuple[str, sa.Engine] | None:
    admin = sa.create_engine(POSTGRES_ADMIN, isolation_level="AUTOCOMMIT", poolclass=sa.NullPool)
    name = f"sentinel_bench_{uuid.uuid4().hex[:8]}"
    try:
        with admin.connect() as conn:
            conn.exec_driver_sql(f"CREATE DATABASE {name}")
    except sa.exc.OperationalError:
        print("PostgreSQL: not reachable on 127.0.0.1:5432, skipped")
        return None
    url = sa.engine.make_url(POSTGRES_ADMIN).set(database=name)
    return url.render_as_string(hide_password=False), admin


def main(count: int = 200) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        data_url = f"sqlite:///{directory / 'data.db'}"
        sa.create_engine(data_url).connect().close()
        config = write_config(directory, data_url, count)
        state = f"sqlite:///{directory / 'state.db'}"
        run_cli(config, state, count, "SQLite")
        run_in_process(config, state, count, "SQLite")

        found = postgres_database()
        if found:
            pg_url, admin = found
            pg_config = write_config(directory, pg_url, count)
            try:
                run_cli(pg_config, pg_url, count, "PostgreSQL")
                run_in_process(pg_config, pg_url, count, "PostgreSQL")
            finally:
                with admin.connect() as conn:
                    conn.exec_driver_sql(
                        f"DROP DATABASE {sa.engine.make_url(pg_url).database} WITH (FORCE)"
                    )
                admin.dispose()


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 200)
