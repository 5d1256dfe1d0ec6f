"""Defects of issue 9 around dry runs and silences, each against real databases, the real API and
the real ``sqlsentinel`` process."""

from __future__ import annotations

import json
import os
import re
from datetime import timedelta
from pathlib import Path

import pytest
import sqlalchemy as sa
import yaml
from fastapi.testclient import TestClient

from sentinel.config import load_config
from sentinel.deployment import Deployment
from sentinel.durations import parse_duration
from sentinel.store.schema import ensure_schema
from sentinel.store.tables import silences
from tests.alerting import THRESHOLD_QUERY, make_data_db
from tests.api_app import TOKEN, ApiWorld
from tests.commands import sqlsentinel
from tests.databases import POSTGRES_ADMIN_URL
from tests.test_cli import alert, config_file, no_traceback

AUTH = {"Authorization": f"Bearer {TOKEN}"}


def _deployment(tmp_path: Path, state_url: str, alerts: list[dict[str, object]]) -> Deployment:
    data = make_data_db(tmp_path / "data.db", value=5)
    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump({"database": {"url": data}, "alerts": alerts}))
    return Deployment(load_config(path), state_url)


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
    setup = _deployment(tmp_path, state_db_url, [_low_metric()])
    setup.run()  # the state exists: a dry run opens it read-only
    setup.close()
    assert _open_state_connections(state_db_url) == 0

    deployment = _deployment(tmp_path, state_db_url, [_low_metric()])
    for _ in range(3):
        [result] = deployment.run(dry_run=True)
        assert result.status == "failure"
    assert _open_state_connections(state_db_url) <= 1  # one read-only engine, built once
    deployment.close()
    assert _open_state_connections(state_db_url) == 0


# -- defect 6: unsilencing by name says which label silences still cover the alert -------------
def _label_silence(world: ApiWorld) -> int:
    until = world.deployment.clock() + timedelta(hours=3)
    return world.deployment.silence(
        None, until, matchers={"team": "data"}, reason="migration", created_by="ana"
    )


def test_api_unsilence_lists_the_label_silences_that_remain(api_world: ApiWorld) -> None:
    api = TestClient(api_world.app())
    own = api.post("/api/v1/alerts/low_metric/silence", json={"duration": "2h"}, headers=AUTH)
    assert own.status_code == 201, own.text
    label_id = _label_silence(api_world)

    done = api.delete("/api/v1/alerts/low_metric/silence", headers=AUTH)
    assert done.status_code == 200, done.text
    body = done.json()
    assert body["ended"] == 1
    [left] = body["still_silenced_by"]
    assert left["id"] == label_id and left["matchers"] == {"team": "data"}
    assert left["alert_name"] is None and (left["created_by"], left["reason"]) == (
        "ana",
        "migration",
    )
    status = api.get("/api/v1/alerts/low_metric/status", headers=AUTH).json()
    assert status["silenced_until"] is not None  # honestly still silenced, and the body said why

    again = api.delete("/api/v1/alerts/low_metric/silence", headers=AUTH).json()
    assert again["ended"] == 0 and [s["id"] for s in again["still_silenced_by"]] == [label_id]
    assert api.delete("/api/v1/alerts/fine/silence", headers=AUTH).json() == {"ended": 0}


def test_page_unsilence_says_what_still_silences_the_alert(api_world: ApiWorld) -> None:
    page = TestClient(api_world.app(token=None), follow_redirects=False)
    assert page.post("/alerts/low_metric/silence", data={"duration": "1h"}).status_code == 303
    label_id = _label_silence(api_world)
    shown = page.get("/alerts/low_metric").text
    assert f"silence {label_id}:" in shown and "team=data" in shown

    done = page.post("/alerts/low_metric/unsilence", data={"next": "/alerts/low_metric"})
    assert done.status_code == 200 and "Still silenced" in done.text
    assert f"silence {label_id}:" in done.text and "team=data" in done.text
    assert f"unsilence CONFIG --id {label_id}" in done.text and "migration" in done.text
    assert 'href="/alerts/low_metric"' in done.text
    # With nothing left, the form goes back where it came from, as before.
    page.post("/alerts/fine/silence", data={"duration": "1h"})
    back = page.post("/alerts/fine/unsilence", data={"next": "/alerts/fine"})
    assert back.status_code == 303 and back.headers["location"] == "/alerts/fine"


def test_cli_unsilence_prints_each_label_silence_that_remains(tmp_path: Path) -> None:
    data = make_data_db(tmp_path / "data.db", value=5)
    cfg = config_file(tmp_path, data, [alert(labels={"team": "data"})])
    env = {"STATE_DB_URL": f"sqlite:///{tmp_path / 'state.db'}"}
    by_label = sqlsentinel("silence", cfg, "--match", "team=data", "--for", "2h", "--by", "ana",
                           "--reason", "migration", env=env)  # fmt: skip
    assert by_label.returncode == 0, by_label.stderr
    assert sqlsentinel("silence", cfg, "low_metric", "--for", "1h", env=env).returncode == 0

    done = sqlsentinel("unsilence", cfg, "low_metric", env=env)
    assert done.returncode == 0, done.stderr
    no_traceback(done)
    first, left = done.stdout.strip().splitlines()
    assert first == "ended 1 silence"
    assert left.startswith("low_metric is still silenced by silence 1 (team=data, until ")
    assert "by ana: migration" in left and f"sqlsentinel unsilence {cfg} --id 1" in left
    status = json.loads(sqlsentinel("status", cfg, "--json", env=env).stdout)
    assert status[0]["state"]["silence_until"] is not None
    assert sqlsentinel("unsilence", cfg, "--id", "1", env=env).stdout.strip() == "ended 1 silence"
    assert sqlsentinel("unsilence", cfg, "low_metric", env=env).stdout.strip() == "ended 0 silences"


# -- defect 8: the silence endpoint reads back only the row it inserted ------------------------
def test_silence_endpoint_reads_only_its_own_row(api_world: ApiWorld) -> None:
    engine = api_world.deployment.state_engine
    ensure_schema(engine)
    past = api_world.deployment.clock() - timedelta(days=30)
    history = [
        {"alert_name": "low_metric", "matchers": {}, "created_by": "old", "reason": f"#{i}",
         "starts_at": past, "ends_at": past + timedelta(hours=1), "created_at": past}
        for i in range(300)
    ]  # fmt: skip
    with engine.begin() as conn:
        conn.execute(silences.insert(), history)

    statements: list[str] = []

    def record(_conn: object, _cursor: object, statement: str, *_args: object) -> None:
        statements.append(" ".join(statement.split()).lower())

    api = TestClient(api_world.app())
    sa.event.listen(engine, "before_cursor_execute", record)
    try:
        made = api.post(
            "/api/v1/alerts/low_metric/silence",
            json={"duration": "2h", "reason": "deploy", "created_by": "ana"},
            headers=AUTH,
        )
    finally:
        sa.event.remove(engine, "before_cursor_execute", record)
    assert made.status_code == 201, made.text
    body = made.json()
    assert body["id"] > 300 and body["alert_name"] == "low_metric" and body["matchers"] == {}
    assert (body["reason"], body["created_by"]) == ("deploy", "ana")
    assert body["ends_at"] is not None and body["starts_at"] is not None
    table = silences.name.lower()
    reads = [s for s in statements if s.startswith("select") and f"from {table}" in s]
    assert reads and all(f"where {table}.id =" in s for s in reads), reads
    assert len(statements) <= 8, statements  # a few, whatever the history's size


# -- defect 9: absurd durations and times are bad requests, never a 500 or an OverflowError -----
ABSURD = "08763078887.2h"  # a million years
OVERFLOWS = ("9999-12-31T23:00:00-05:00", "0001-01-01T00:30:00+01:00")  # not a date in UTC


def test_api_answers_422_naming_the_field(api_world: ApiWorld) -> None:
    api = TestClient(api_world.app())
    bodies = [
        ({"duration": ABSURD}, "duration"),
        ({"duration": "3651d"}, "duration"),
        ({"duration": "9" * 400}, "duration"),
        *(({"until": until}, "until") for until in OVERFLOWS),
        ({"duration": "1h", "reason": "nul\x00byte"}, "reason"),
        ({"duration": "1h", "created_by": "\x00"}, "created_by"),
        ({"until": -3482}, "until"),  # a number is not a time
        ({"duration": "2h", "until": None}, "until"),  # the schema says a string, never null
    ]
    for body, field in bodies:
        answer = api.post("/api/v1/alerts/low_metric/silence", json=body, headers=AUTH)
        assert answer.status_code == 422, (body, answer.text)
        error = answer.json()["error"]
        assert error["code"] == "invalid_request"
        assert [f["field"] for f in error["fields"]] == [field], (body, error)
    assert (
        "at most 10 years"
        in api.post(
            "/api/v1/alerts/low_metric/silence", json={"duration": ABSURD}, headers=AUTH
        ).json()["error"]["fields"][0]["message"]
    )
    assert api_world.deployment.silences() == []
    far = api.get(f"/api/v1/alerts/low_metric/history?before={10**30}", headers=AUTH)
    assert far.status_code == 422 and far.json()["error"]["fields"][0]["field"].endswith("before")
    fine = api.post("/api/v1/alerts/low_metric/silence", json={"duration": "3650d"}, headers=AUTH)
    assert fine.status_code == 201, fine.text


def test_page_refuses_an_absurd_duration(api_world: ApiWorld) -> None:
    page = TestClient(api_world.app(token=None), follow_redirects=False)
    for form in ({"duration": ABSURD}, {"duration": "1h", "reason": "nul\x00"}):
        refused = page.post("/alerts/low_metric/silence", data=form)
        assert refused.status_code == 400 and "Not silenced" in refused.text
    assert api_world.deployment.silences() == []


def test_cli_says_what_is_wrong_in_one_line_and_exits_2(tmp_path: Path) -> None:
    data = make_data_db(tmp_path / "data.db", value=5)
    cfg = config_file(tmp_path, data, [alert()])
    env = {"STATE_DB_URL": f"sqlite:///{tmp_path / 'state.db'}"}
    for args, option in [
        (("--for", ABSURD), "--for"),
        (("--for", "9" * 400), "--for"),
        *((("--until", until), "--until") for until in OVERFLOWS),
    ]:
        proc = sqlsentinel("silence", cfg, "low_metric", *args, env=env)
        assert proc.returncode == 2, (args, proc.stderr)
        no_traceback(proc)
        [line] = proc.stderr.strip().splitlines()
        assert line.startswith(f"error: {option}: ") and "unexpected" not in line, line
    assert "at most 10 years" in sqlsentinel("silence", cfg, "low_metric", "--for", ABSURD).stderr
    assert json.loads(sqlsentinel("silences", cfg, "--all", "--json", env=env).stdout) == []

    absurd = config_file(tmp_path, data, [alert(min_interval=ABSURD)])
    checked = sqlsentinel("validate", absurd)
    assert checked.returncode == 2 and "min_interval" in checked.stderr, checked.stderr
    no_traceback(checked)


def test_the_documented_duration_pattern_is_the_ten_year_bound() -> None:
    from sentinel.durations import MAX_DURATION, duration_pattern

    pattern = re.compile(duration_pattern())
    for text in ("2h", " 4 H ", "1.5", "90s", "315360000", "5256000m", "87600h", "3650d",
                 "3650.0d", "0003649.99d", "521w", "0"):  # fmt: skip
        assert pattern.fullmatch(text) and parse_duration(text) <= MAX_DURATION, text
    for text in ("315360001", "5256001m", "87600.5h", "3651d", "522w", ABSURD, "9" * 400,
                 "2x", ".5h", "h", "-1h"):  # fmt: skip
        assert not pattern.fullmatch(text), text
        with pytest.raises(ValueError):
            parse_duration(text)
    assert not pattern.fullmatch("\u0663h")  # digits 0-9 only, as JSON Schema reads the pattern
