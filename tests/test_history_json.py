"""``--json`` output gives each notification as a JSON object scripts can read, not a repr.

The real command in a process of its own, a real state database and a real HTTP server.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from tests.alerting import make_data_db
from tests.commands import sqlsentinel
from tests.servers import HTTPTestServer
from tests.test_cli import alert, config_file

FIELDS = {"notification_id", "channel", "event", "status", "error", "attempts"}


def notified(tmp_path: Path, state: str, http: HTTPTestServer) -> str:
    """A config whose alert fires into two webhooks (one sent on its second try, one refused),
    run once into ``state``; the config."""
    http.respond(503, retry_after="0")  # the first webhook's first try
    http.respond(200, 404)  # its second try, then the second webhook
    hooks = [
        {"channel": "webhook", "webhook_url": http.url_for("/hook")},
        {"channel": "webhook", "webhook_url": http.url_for("/gone")},
    ]
    cfg = config_file(tmp_path, make_data_db(tmp_path / "data.db"), [alert(notify=hooks)])
    run = sqlsentinel("run", cfg, "--state-db", state, "--json")
    assert run.returncode == 1, run.stderr
    assert [r.status for r in http.requests] == [503, 200, 404]
    [result] = json.loads(run.stdout)
    check(result["notifications"])
    return cfg


def check(notifications: list[Any]) -> None:
    assert all(isinstance(n, dict) and set(n) == FIELDS for n in notifications), notifications
    sent, refused = notifications
    assert isinstance(sent["notification_id"], int) and isinstance(refused["notification_id"], int)
    assert {k: sent[k] for k in FIELDS - {"notification_id"}} == {
        "channel": "webhook",
        "event": "firing",
        "status": "sent",
        "error": None,
        "attempts": 2,
    }
    assert [refused[k] for k in ("channel", "event", "status")] == ["webhook", "firing", "failed"]
    assert refused["attempts"] == 1 and "HTTP 404" in refused["error"]


def test_history_json_gives_each_notification_as_an_object(
    tmp_path: Path, state_db_url: str, http_server: HTTPTestServer
) -> None:
    cfg = notified(tmp_path, state_db_url, http_server)
    history = sqlsentinel("history", cfg, "--state-db", state_db_url, "--json")
    assert history.returncode == 0, history.stderr
    data = json.loads(history.stdout)
    [execution] = data["executions"]
    assert execution["status"] == "failure"
    check(execution["notifications"])
    assert data["statistics"]["notifications_sent"] == 1


def test_status_json_gives_the_last_runs_notifications_as_objects(
    tmp_path: Path, state_db_url: str, http_server: HTTPTestServer
) -> None:
    cfg = notified(tmp_path, state_db_url, http_server)
    status = sqlsentinel("status", cfg, "--state-db", state_db_url, "--json")
    assert status.returncode == 0, status.stderr
    [row] = json.loads(status.stdout)
    check(row["last_run"]["notifications"])


def test_enqueue_wait_json_conversion_gives_objects(
    tmp_path: Path, state_db_url: str, http_server: HTTPTestServer
) -> None:
    """``enqueue --wait --json`` prints the finished runs' records as ``history`` does (through
    ``report.to_json`` of ``asdict``); without a broker here, the same records from the state
    database go through the same expression."""
    from dataclasses import asdict

    from sentinel import report
    from sentinel.executor import ExecutionHistory
    from sentinel.store import create_state_engine

    notified(tmp_path, state_db_url, http_server)
    engine = create_state_engine(state_db_url)
    try:
        records = ExecutionHistory(engine).get_recent_executions("low_metric", 1)
    finally:
        engine.dispose()
    [execution] = json.loads(report.to_json([asdict(r) for r in records]))
    check(execution["notifications"])
