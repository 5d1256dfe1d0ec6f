"""Defects of issue 9 around dry runs and silences, each against real databases, the real API and
the real ``sqlsentinel`` process."""

from __future__ import annotations

import os
from pathlib import Path

import sqlalchemy as sa
import yaml

from sentinel.config import load_config
from sentinel.service import SentinelService
from tests.alerting import THRESHOLD_QUERY, make_data_db
from tests.databases import POSTGRES_ADMIN_URL


def _service(tmp_path: Path, state_url: str, alerts: list[dict[str, object]]) -> SentinelService:
    data = make_data_db(tmp_path / "data.db", value=5)
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump({"database": {"url": data}, "alerts": alerts}))
    return SentinelService(load_config(path), state_url)


def _low_metric(**extra: object) -> dict[str, object]:
    return {"name": "low_metric", "query": THRESHOLD_QUERY, "schedule": "*/5 * * * *", **extra}


# -- defect 5: the dry run's read-only state engine is disposed ---------------------------------
def _open_state_connections(state_url: str) -> int:
    """Connections this process (or the server) still holds to the state database."""
    url = sa.engine.make_url(state_url)
    if url.get_backend_name() == "sqlite":
        state_file = Path(str(url.database)).resolve()
        held = 0
        for fd in os.listdir("/proc/self/fd"):
            try:
                target = os.readlink(f"/proc/self/fd/{fd}")
            except OSError:
                continue
            held += target == str(state_file)
        return held
    admin = sa.create_engine(POSTGRES_ADMIN_URL, poolclass=sa.NullPool)
    try:
        with admin.connect() as conn:
            return int(
                conn.execute(
                    sa.text("SELECT count(*) FROM pg_stat_activity WHERE datname = :name"),
                    {"name": url.database},
                ).scalar_one()
            )
    finally:
        admin.dispose()


def test_dry_runs_leave_no_state_connection_open(tmp_path: Path, state_db_url: str) -> None:
    setup = _service(tmp_path, state_db_url, [_low_metric()])
    setup.run()  # the state exists: a dry run opens it read-only
    setup.close()
    assert _open_state_connections(state_db_url) == 0

    service = _service(tmp_path, state_db_url, [_low_metric()])
    for _ in range(3):
        [result] = service.run(dry_run=True)
        assert result.status == "failure"
    assert _open_state_connections(state_db_url) <= 1  # one read-only engine, built once
    service.close()
    assert _open_state_connections(state_db_url) == 0
