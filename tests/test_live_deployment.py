"""A worker's deployment: it learns the guard's verdicts from the on-disk cache when it loads."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import yaml

from tests.alerting import make_data_db

PROBE = """
import sys
from workers.live_deployment import LiveDeployment
deployment, _ = LiveDeployment(path=sys.argv[1]).current()
deployment.close()
print("sqlglot" in sys.modules)
"""


def _config(tmp_path: Path) -> Path:
    url = make_data_db(tmp_path / "data.db")
    path = tmp_path / "alerts.yaml"
    alerts = [
        {"name": f"a{i}", "query": f"SELECT 'OK' AS status, {i} AS n", "schedule": "* * * * *"}
        for i in range(20)
    ]
    path.write_text(yaml.safe_dump({"database": {"url": url}, "alerts": alerts}))
    return path


def _imports_sqlglot(config: Path, env: dict[str, str]) -> bool:
    command = [sys.executable, "-c", PROBE, str(config)]
    probe = subprocess.run(command, env=env, capture_output=True, text=True, check=False)
    assert probe.returncode == 0, probe.stderr
    return probe.stdout.strip() == "True"


def test_a_worker_on_a_validated_file_never_imports_sqlglot(tmp_path: Path) -> None:
    config = _config(tmp_path)
    env = {**os.environ, "SENTINEL_GUARD_CACHE": str(tmp_path / "verdicts.sqlite3")}
    # First sight: the worker parses the queries once, and leaves the verdicts for the next.
    assert _imports_sqlglot(config, env)
    assert not _imports_sqlglot(config, env)
