"""The Procfile and deploy files are what a deployment runs: check them against the real CLI."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from sentinel.config import load_config

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent


def procfile() -> dict[str, str]:
    lines = (ROOT / "Procfile").read_text().splitlines()
    return dict(line.split(": ", 1) for line in lines if line.strip())


def test_procfile_has_the_process_types() -> None:
    assert set(procfile()) == {"web", "release", "scheduler", "worker", "notifier"}


def test_release_runs_the_migrations(tmp_path: Path) -> None:
    env = {**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"}
    env.pop("STATE_DB_URL", None)
    env["DATABASE_URL"] = f"sqlite:///{tmp_path / 'state.db'}"
    proc = subprocess.run(
        ["bash", "-c", procfile()["release"]], env=env, capture_output=True, text=True, check=False
    )
    assert proc.returncode == 0, proc.stderr
    assert "schema revision" in proc.stdout


def test_workers_listen_to_their_namespaced_queues() -> None:
    types = procfile()
    assert '"${SENTINEL_NAMESPACE:-sqlsentinel}.alerts"' in types["worker"]
    assert '"${SENTINEL_NAMESPACE:-sqlsentinel}.notifications"' in types["notifier"]
    for kind in ("worker", "notifier"):
        # Heroku sends SIGKILL 30 s after SIGTERM: workers must be done before that.
        assert "--worker-shutdown-timeout 25000" in types[kind]


def test_compose_file_and_its_config_are_valid(monkeypatch: pytest.MonkeyPatch) -> None:
    compose = yaml.safe_load((ROOT / "deploy" / "docker-compose.yml").read_text())
    assert {"redis", "postgres", "scheduler", "worker-1", "worker-2", "notifier"} <= set(
        compose["services"]
    )
    monkeypatch.setenv("DATABASE_URL", "postgresql://postgres@127.0.0.1/test")
    config = load_config(ROOT / "deploy" / "alerts.yaml")
    assert [a.name for a in config.alerts] == ["too_many_connections", "long_running_queries"]
