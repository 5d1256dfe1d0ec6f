"""Alert overviews: `status` and the API read all alerts in a fixed number of queries, and agree."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient

from sentinel.api import ApiContext, create_app
from sentinel.deployment import Deployment
from tests.alerting import THRESHOLD_QUERY, FakeClock, make_data_db, write_config


def _deployment(tmp_path: Path, alerts: int, state_url: str) -> Deployment:
    url = make_data_db(tmp_path / f"data{alerts}.db")
    config = write_config(
        tmp_path / f"alerts{alerts}.yaml",
        url,
        [
            {"name": f"a{i}", "query": THRESHOLD_QUERY, "schedule": f"{i % 60} * * * *"}
            for i in range(alerts)
        ],
    )
    deployment = Deployment(config, state_url, clock=FakeClock())
    deployment.run()
    return deployment


@pytest.fixture
def deployments(tmp_path: Path, state_db_url: str) -> Iterator[dict[int, Deployment]]:
    made = {n: _deployment(tmp_path, n, state_db_url) for n in (3, 60)}
    yield made
    for deployment in made.values():
        deployment.close()


def _statements(engine: sa.engine.Engine, work: Any) -> int:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        work()
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_status_reads_any_number_of_alerts_in_the_same_number_of_queries(
    deployments: dict[int, Deployment],
) -> None:
    few, many = deployments[3], deployments[60]
    assert _statements(few.state_engine, few.status) == _statements(many.state_engine, many.status)


def test_status_and_the_api_show_the_same_last_run_and_next_slot(
    deployments: dict[int, Deployment],
) -> None:
    deployment = deployments[60]
    rows = deployment.status()
    client = TestClient(
        create_app(deployment, ApiContext(deployment=deployment, clock=deployment.clock))
    )
    body = {a["name"]: a for a in client.get("/api/v1/alerts").json()}
    assert len(rows) == len(body) == 60
    for row in rows:
        api = body[row.alert.name]
        assert row.last_run is not None and row.last_run.id == row.state.last_execution_id
        assert api["last_result"] == row.last_run.status == "failure"
        assert api["state"] == row.state.current_status == "ALERT"
        assert row.next_run is not None
        assert datetime.fromisoformat(api["next_run"]).replace(tzinfo=None) == row.next_run
