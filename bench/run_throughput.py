"""``sqlsentinel run`` of 200 trivial alerts as a whole process, against the public peer.

Target (issue 10, item 4): our whole process at least 5 x faster than the public peer's (PyPI
``sqlsentinel``) on the same machine in the same run, and at least 2,000 executions/s for the
executor loop inside one process.

The peer is installed from PyPI into a venv of its own (``bench/.peer-venv``, kept between runs,
ignored by git; ``--peer-venv`` puts it elsewhere). Both commands run the same alerts file (the
peer reads the same ``database.url`` + ``alerts`` shape) against SQLite, each with a state
database of its own that was set up before timing (ours by a first run, the peer's by its
``init``). The two are alternated, 7 runs each, and the medians compared, so load from other
work on the machine falls on both alike. Our package's bytecode is compiled first, as a pip
install (the peer's) compiles it: an editable checkout run with PYTHONDONTWRITEBYTECODE would
otherwise compile every module at every start.

The SQL guard's verdict cache (``sentinel.guard_cache``) is pointed at a file in the temporary
directory: the untimed first run fills it, as the first run after a deploy does.

PostgreSQL is measured too when it answers on 127.0.0.1:5432 (ours only; the peer needs no
PostgreSQL to be compared).

Usage: python bench/run_throughput.py [--alerts 200] [--runs 7] [--peer-venv DIR]
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
import venv
from pathlib import Path

import sqlalchemy as sa
import yaml
from fleetkit import machine_note

POSTGRES_ADMIN = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
ROOT = Path(__file__).resolve().parent.parent
PEER_VENV = Path(__file__).resolve().parent / ".peer-venv"
TARGET_RATIO = 5.0
TARGET_LOOP_PER_S = 2000


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


def peer_executable(venv_dir: Path) -> Path:
    """The peer's ``sqlsentinel``, installed from PyPI into its own venv the first time."""
    exe = venv_dir / "bin" / "sqlsentinel"
    if not exe.exists():
        print(f"installing the peer (PyPI sqlsentinel) into {venv_dir} ...", flush=True)
        venv.EnvBuilder(with_pip=True, clear=True).create(venv_dir)
        subprocess.run(
            [str(venv_dir / "bin" / "python"), "-m", "pip", "install", "-q", "sqlsentinel"],
            check=True,
        )
    version = subprocess.run(
        [str(venv_dir / "bin" / "python"), "-m", "pip", "show", "sqlsentinel"],
        check=True,
        capture_output=True,
        text=True,
    ).stdout
    line = next((v for v in version.splitlines() if v.startswith("Version:")), "Version: ?")
    print(f"peer: PyPI sqlsentinel {line.split(':', 1)[1].strip()} in {venv_dir}")
    return exe


def our_executable() -> str:
    return shutil.which("sqlsentinel", path=str(Path(sys.executable).parent)) or str(
        Path(sys.executable).parent / "sqlsentinel"
    )


def timed(command: list[str], env: dict[str, str], ok_codes: tuple[int, ...] = (0,)) -> float:
    started = time.perf_counter()
    done = subprocess.run(command, check=False, env=env, capture_output=True, text=True)
    elapsed = time.perf_counter() - started
    if done.returncode not in ok_codes:
        raise SystemExit(f"{command[0]} exited {done.returncode}:\n{done.stdout}\n{done.stderr}")
    return elapsed


def compare_with_peer(directory: Path, count: int, runs: int, peer_venv: Path) -> None:
    peer = peer_executable(peer_venv)
    ours = our_executable()
    subprocess.run(
        [sys.executable, "-m", "compileall", "-q", str(ROOT / "sentinel"), str(ROOT / "workers")],
        check=True,
        capture_output=True,
    )
    data_url = f"sqlite:///{directory / 'data.db'}"
    sa.create_engine(data_url).connect().close()
    config = write_config(directory, data_url, count)
    our_state = f"sqlite:///{directory / 'our_state.db'}"
    peer_state = f"sqlite:///{directory / 'peer_state.db'}"
    env = {**os.environ, "SENTINEL_GUARD_CACHE": str(directory / "guard-verdicts.sqlite3")}
    env.pop("STATE_DB_URL", None)
    our_command = [ours, "run", str(config), "--state-db", our_state]
    peer_command = [str(peer), "run", str(config), "--state-db", peer_state]
    # Untimed: our first run creates the state tables and fills the guard's verdict cache; the
    # peer's state tables are made by its own ``init``, and one run warms its file cache.
    timed(our_command, env)
    timed([str(peer), "init", "--state-db", peer_state], env)
    timed(peer_command, env)

    our_times, peer_times = [], []
    for _ in range(runs):
        our_times.append(timed(our_command, env))
        peer_times.append(timed(peer_command, env))
    our_median, peer_median = statistics.median(our_times), statistics.median(peer_times)
    print(f"SQLite, `sqlsentinel run` of {count} alerts, whole process, alternated, {runs} runs "
          f"each ({machine_note()}):")  # fmt: skip
    for label, values in (("ours", our_times), ("peer", peer_times)):
        median = statistics.median(values)
        print(f"  {label}: median {median:.3f} s = {count / median:.0f} executions/s "
              f"(min {min(values):.3f} s, max {max(values):.3f} s)")  # fmt: skip
    ratio = peer_median / our_median
    print(f"  ratio peer/ours of the medians: {ratio:.2f} x (target >= {TARGET_RATIO:.0f} x)")


def run_cli(config: Path, state_url: str, count: int, label: str, env: dict[str, str]) -> None:
    command = [our_executable(), "run", str(config), "--state-db", state_url]
    timed(command, env)  # creates the state tables, fills the verdict cache
    best = min(timed(command, env) for _ in range(3))
    print(f"{label}: `sqlsentinel run` of {count} alerts, whole process: best {best:.3f} s "
          f"= {count / best:.0f} executions/s")  # fmt: skip


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
          f"executions/s (target >= {TARGET_LOOP_PER_S}); peak RSS {rss_mb:.0f} MB")  # fmt: skip


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


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--alerts", type=int, default=200)
    parser.add_argument("--runs", type=int, default=7)
    parser.add_argument("--peer-venv", type=Path, default=PEER_VENV)
    args = parser.parse_args()
    count = args.alerts
    with tempfile.TemporaryDirectory() as tmp:
        directory = Path(tmp)
        os.environ["SENTINEL_GUARD_CACHE"] = str(directory / "guard-verdicts.sqlite3")
        compare_with_peer(directory, count, args.runs, args.peer_venv)
        config = directory / "bench.yaml"
        run_in_process(config, f"sqlite:///{directory / 'our_state.db'}", count, "SQLite")

        found = postgres_database()
        if found:
            pg_url, admin = found
            pg_dir = directory / "pg"
            pg_dir.mkdir()
            pg_config = write_config(pg_dir, pg_url, count)
            try:
                run_cli(pg_config, pg_url, count, "PostgreSQL", dict(os.environ))
                run_in_process(pg_config, pg_url, count, "PostgreSQL")
            finally:
                with admin.connect() as conn:
                    conn.exec_driver_sql(
                        f"DROP DATABASE {sa.engine.make_url(pg_url).database} WITH (FORCE)"
                    )
                admin.dispose()


if __name__ == "__main__":
    main()
