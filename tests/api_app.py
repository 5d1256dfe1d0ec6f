"""An API over a real state database and a small config, with some history to show."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
import yaml

from sentinel.api import ApiContext, create_app
from sentinel.config import load_config
from sentinel.deployment import Deployment
from tests.alerting import THRESHOLD_QUERY, make_data_db

__all__ = ["TOKEN", "ApiWorld", "api_world"]

TOKEN = "api-t0ken-for-tests"


class ApiWorld:
    def __init__(self, tmp_path: Path, state_url: str, http_url: str) -> None:
        data = make_data_db(tmp_path / "data.db", value=5)
        alerts = [
            {
                "name": "low_metric",
                "description": "metric below 10",
                "query": THRESHOLD_QUERY,
                "schedule": "*/5 * * * *",
                "severity": "critical",
                "labels": {"team": "data"},
                "notify": [{"channel": "webhook", "webhook_url": f"{http_url}/hooks/s3cret-path"}],
            },
            {
                "name": "fine",
                "query": "SELECT 'OK' AS status, 3 AS actual_value",
                "schedule": "0 * * * *",
            },
            {"name": "broken", "query": "SELECT status FROM nowhere", "schedule": "0 9 * * 1-5"},
        ]
        path = tmp_path / "alerts.yaml"
        path.write_text(yaml.safe_dump({"database": {"url": data}, "alerts": alerts}))
        self.deployment = Deployment(load_config(path), state_url)
        for _ in range(3):
            self.deployment.run()

    def app(self, token: str | None = TOKEN, public_read: bool = False):  # type: ignore[no-untyped-def]
        context = ApiContext(deployment=self.deployment, token=token, public_read=public_read)
        return create_app(self.deployment, context)


@pytest.fixture
def api_world(tmp_path: Path, state_db_url: str, http_server: object) -> Iterator[ApiWorld]:
    world = ApiWorld(tmp_path, state_db_url, http_server.url)  # type: ignore[attr-defined]
    yield world
    world.deployment.close()
