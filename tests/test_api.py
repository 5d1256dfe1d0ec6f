"""The REST API through httpx (FastAPI's TestClient) against real state databases."""

from __future__ import annotations

import os
import subprocess
import sys
from typing import Any

import pytest
from fastapi.testclient import TestClient

from sentinel.api import ApiContext, create_app
from sentinel.deployment import Deployment
from tests.api_app import TOKEN, ApiWorld

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def client(world: ApiWorld, **kwargs: Any) -> TestClient:
    return TestClient(world.app(**kwargs))


def assert_error(response: Any, status: int, code: str) -> dict[str, Any]:
    assert response.status_code == status, response.text
    body = response.json()
    assert set(body) == {"error"} and body["error"]["status"] == status
    assert body["error"]["code"] == code
    assert "Traceback" not in response.text
    return dict(body["error"])


def test_health_ready_and_the_alert_list(api_world: ApiWorld) -> None:
    api = client(api_world, public_read=True)
    assert api.get("/health").json() == {"status": "ok"}
    ready = api.get("/ready").json()
    assert ready["ready"] is True and ready["checks"]["state_db"]["ok"] is True
    alerts = {a["name"]: a for a in api.get("/api/v1/alerts").json()}
    assert set(alerts) == {"low_metric", "fine", "broken"}
    low = alerts["low_metric"]
    assert (low["state"], low["last_value"], low["threshold"], low["severity"]) == (
        "ALERT",
        5.0,
        10.0,
        "critical",
    )
    assert low["next_run"] is not None and low["labels"] == {"team": "data"}
    assert alerts["broken"]["last_result"] == "error"


def test_alert_detail_status_and_unknown_alert(api_world: ApiWorld) -> None:
    api = client(api_world, public_read=True)
    detail = api.get("/api/v1/alerts/low_metric").json()
    assert detail["query"].startswith("SELECT CASE")
    assert detail["notify"][0]["target"].endswith("/…") and "s3cret" not in str(detail)
    status = api.get("/api/v1/alerts/low_metric/status").json()
    assert status["state"] == "ALERT" and status["consecutive_alerts"] == 3
    error = assert_error(api.get("/api/v1/alerts/nope"), 404, "not_found")
    assert "low_metric" in error["message"]


def test_history_is_paginated_newest_first_and_needs_the_token(api_world: ApiWorld) -> None:
    api = client(api_world, public_read=True)
    assert_error(api.get("/api/v1/alerts/low_metric/history"), 401, "unauthorized")
    assert api.get("/api/v1/alerts/low_metric/history").headers["www-authenticate"] == "Bearer"
    first = api.get("/api/v1/alerts/low_metric/history?limit=2", headers=AUTH).json()
    assert len(first["items"]) == 2 and first["next_before"] is not None
    ids = [i["id"] for i in first["items"]]
    assert ids == sorted(ids, reverse=True)
    second = api.get(
        f"/api/v1/alerts/low_metric/history?limit=2&before={first['next_before']}", headers=AUTH
    ).json()
    assert len(second["items"]) == 1 and second["next_before"] is None
    assert second["items"][0]["id"] < ids[-1]
    bad = assert_error(
        api.get("/api/v1/alerts/low_metric/history?limit=0", headers=AUTH), 422, "invalid_request"
    )
    assert bad["fields"][0]["field"].endswith("limit")


def test_execute_silence_and_unsilence(api_world: ApiWorld) -> None:
    api = client(api_world)
    assert_error(api.post("/api/v1/alerts/fine/execute"), 401, "unauthorized")
    assert_error(
        api.post("/api/v1/alerts/fine/execute", headers={"Authorization": "Bearer wrong"}),
        401,
        "unauthorized",
    )
    run = api.post("/api/v1/alerts/fine/execute", headers=AUTH)
    assert run.status_code == 202
    body = run.json()
    assert body["status"] == "finished" and body["result"] == "success"
    history = api.get("/api/v1/alerts/fine/history?limit=1", headers=AUTH).json()
    assert history["items"][0]["id"] == body["execution_id"]
    assert history["items"][0]["triggered_by"] == "API"

    silenced = api.post(
        "/api/v1/alerts/low_metric/silence",
        json={"duration": "2h", "reason": "deploy"},
        headers=AUTH,
    )
    assert silenced.status_code == 201, silenced.text
    assert silenced.json()["reason"] == "deploy" and silenced.json()["alert_name"] == "low_metric"
    status = api.get("/api/v1/alerts/low_metric/status", headers=AUTH).json()
    assert status["silenced_until"] is not None
    invalid = assert_error(
        api.post("/api/v1/alerts/low_metric/silence", json={"duration": "soon"}, headers=AUTH),
        422,
        "invalid_request",
    )
    assert invalid["fields"]
    assert_error(
        api.post("/api/v1/alerts/low_metric/silence", json={}, headers=AUTH), 422, "invalid_request"
    )
    assert api.delete("/api/v1/alerts/low_metric/silence", headers=AUTH).json() == {"ended": 1}
    assert (
        api.get("/api/v1/alerts/low_metric/status", headers=AUTH).json()["silenced_until"] is None
    )


def test_read_only_status_is_closed_unless_opened(api_world: ApiWorld) -> None:
    closed = client(api_world)
    assert closed.get("/health").status_code == 200
    for path in ("/api/v1/alerts", "/api/v1/alerts/fine", "/api/v1/stats", "/metrics"):
        assert_error(closed.get(path), 401, "unauthorized")
        assert closed.get(path, headers=AUTH).status_code == 200
    no_token = client(api_world, token=None)
    assert no_token.get("/api/v1/alerts/low_metric/history").status_code == 200


def test_stats_and_metrics(api_world: ApiWorld) -> None:
    api = client(api_world, public_read=True)
    stats = api.get("/api/v1/stats").json()
    assert stats["alerts"] == 3 and stats["by_state"] == {"ALERT": 1, "OK": 1, "NEVER_RUN": 1}
    assert stats["executions_last_day"] == 9 and stats["failures_last_day"] == 3
    assert stats["failure_rate_last_day"] == pytest.approx(100 * 3 / 9)
    metrics = api.get("/metrics").text
    assert 'sqlsentinel_alerts{state="ALERT"} 1.0' in metrics
    assert 'sqlsentinel_executions{window="1d"} 9.0' in metrics


def test_unreachable_state_database_is_a_503_without_secrets(api_world: ApiWorld) -> None:
    deployment = Deployment(
        api_world.deployment.config, "postgresql://u:Hidden-Pw-99@127.0.0.1:1/x"
    )
    api = TestClient(create_app(deployment, ApiContext(deployment=deployment, public_read=True)))
    ready = api.get("/ready")
    assert ready.status_code == 503 and ready.json()["checks"]["state_db"]["ok"] is False
    listing = api.get("/api/v1/alerts")
    assert_error(listing, 503, "state_database_unavailable")
    for response in (ready, listing):
        assert "Hidden-Pw-99" not in response.text
    deployment.close()


def test_outages_show_in_ready_and_metrics_without_failing_them(
    api_world: ApiWorld, tmp_path: Any
) -> None:
    """A data database that is away is reported but keeps the process ready; with the state
    database away too, /metrics still answers, saying which dependency is down since when."""
    api_world.deployment.adapter.dispose()  # no pooled connection keeps the old file open
    (tmp_path / "data.db").unlink()  # the alerts' database is gone (SQLite opens it read-only)
    api = client(api_world, public_read=True)
    ready = api.get("/ready")
    assert ready.status_code == 200, ready.text
    database = ready.json()["checks"]["database"]
    assert database["ok"] is False and database["required"] is False and database["error"]
    metrics = api.get("/metrics").text
    assert 'sqlsentinel_dependency_up{dependency="database"} 0.0' in metrics
    assert 'sqlsentinel_dependency_up{dependency="state_db"} 1.0' in metrics

    deployment = Deployment(
        api_world.deployment.config, "postgresql://u:Hidden-Pw-99@127.0.0.1:1/x"
    )
    down = TestClient(create_app(deployment, ApiContext(deployment=deployment, public_read=True)))
    first = down.get("/ready").json()["checks"]["state_db"]
    again = down.get("/ready").json()["checks"]["state_db"]
    assert first["down_since"] is not None and again["down_since"] == first["down_since"]
    scraped = down.get("/metrics")
    assert scraped.status_code == 200
    assert 'sqlsentinel_dependency_up{dependency="state_db"} 0.0' in scraped.text
    assert "Hidden-Pw-99" not in scraped.text
    deployment.close()


def test_the_cli_refuses_a_public_bind_without_a_token(tmp_path: Any) -> None:
    cfg = tmp_path / "a.yaml"
    cfg.write_text(
        "database: {url: 'sqlite://'}\n"
        "alerts: [{name: a, query: \"SELECT 'OK' AS status\", schedule: '* * * * *'}]\n"
    )
    env = {k: v for k, v in os.environ.items() if k != "SENTINEL_API_TOKEN"}
    proc = subprocess.run(
        [sys.executable, "-m", "sentinel", "api", str(cfg), "--host", "0.0.0.0"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert proc.returncode == 2 and "SENTINEL_API_TOKEN" in proc.stderr


def test_a_method_a_path_does_not_take_is_a_405_that_says_which_it_does(
    api_world: ApiWorld,
) -> None:
    """RFC 9110: a 405 lists in ``Allow`` every method the path takes, even across routes."""
    api = client(api_world)
    wrong = api.put("/api/v1/alerts/low_metric/silence", headers=AUTH)
    assert_error(wrong, 405, "method_not_allowed")
    assert {m.strip() for m in wrong.headers["allow"].split(",")} == {"POST", "DELETE"}  # 2 routes
    listed = api.post("/api/v1/alerts", headers=AUTH)
    assert_error(listed, 405, "method_not_allowed")
    assert listed.headers["allow"] == "GET"
