"""The ``sqlsentinel`` command as a user runs it: a real process, real databases, real servers."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa

from sentinel.store.schema import HEAD_REVISION
from tests.alerting import THRESHOLD_QUERY, make_data_db
from tests.commands import sqlsentinel
from tests.databases import RUN_ID, DatabaseFactory
from tests.servers import SMTP_PASSWORD, SMTP_USERNAME, HTTPTestServer, SMTPTestServer

PASSWORD = "Sup3rS3cretPw"


def config_file(tmp_path: Path, database_url: str, alerts: list[dict[str, Any]]) -> str:
    import yaml

    path = tmp_path / "alerts.yaml"
    path.write_text(yaml.safe_dump({"database": {"url": database_url}, "alerts": alerts}))
    return str(path)


def alert(name: str = "low_metric", query: str = THRESHOLD_QUERY, **extra: Any) -> dict[str, Any]:
    return {"name": name, "query": query, "schedule": "*/5 * * * *", **extra}


def no_traceback(proc: subprocess.CompletedProcess[str]) -> None:
    assert "Traceback" not in proc.stderr + proc.stdout


def test_help_and_version() -> None:
    proc = sqlsentinel("--help")
    assert proc.returncode == 0
    for command in ("init", "validate", "run", "history", "status", "silence", "unsilence"):
        assert command in proc.stdout
    assert sqlsentinel("--version").stdout.strip().endswith("0.1.0")


def test_run_exit_codes_and_json(tmp_path: Path) -> None:
    data = make_data_db(tmp_path / "data.db", value=50)
    cfg = config_file(tmp_path, data, [alert()])
    ok = sqlsentinel("run", cfg)
    assert ok.returncode == 0, ok.stderr
    assert "low_metric" in ok.stdout and "OK" in ok.stdout

    make_data_db(tmp_path / "data.db", value=5)
    fired = sqlsentinel("run", cfg, "--json")
    assert fired.returncode == 1
    [result] = json.loads(fired.stdout)
    assert result["status"] == "failure" and result["query_result"]["actual_value"] == 5
    assert result["query_result"]["context"] == {"region": "eu"}

    unknown = sqlsentinel("run", cfg, "--alert", "nope")
    assert unknown.returncode == 2
    assert "unknown alert 'nope'" in unknown.stderr and "low_metric" in unknown.stderr
    no_traceback(unknown)


def test_bad_configs_are_one_line_errors(tmp_path: Path) -> None:
    bad_yaml = tmp_path / "bad.yaml"
    bad_yaml.write_text("alerts: [\n")
    for command in ("validate", "run", "status"):
        proc = sqlsentinel(command, str(bad_yaml))
        assert proc.returncode == 2, (command, proc.stderr)
        assert proc.stderr.startswith(f"error: {bad_yaml}:"), proc.stderr
        no_traceback(proc)
    missing = sqlsentinel("validate", str(tmp_path / "missing.yaml"))
    assert missing.returncode == 2 and "not found" in missing.stderr

    data = make_data_db(tmp_path / "data.db")
    cfg = config_file(
        tmp_path,
        data,
        [alert("a", schedule="61 * * * *"), alert("b", query="DROP TABLE metric"), alert("c")],
    )
    proc = sqlsentinel("validate", cfg)
    assert proc.returncode == 2
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 2
    assert f"{cfg}: alert 'a': schedule:" in lines[0]
    assert f"{cfg}: alert 'b': query:" in lines[1]
    # the refused statement never reached the database
    run = sqlsentinel("run", cfg)
    assert run.returncode == 2
    with sa.create_engine(data).connect() as conn:
        assert conn.execute(sa.text("SELECT COUNT(*) FROM metric")).scalar() == 1


def test_dry_run_writes_nothing(tmp_path: Path, postgres_url: str) -> None:
    data = make_data_db(tmp_path / "data.db", value=5)
    state = tmp_path / "state.db"
    cfg = config_file(tmp_path, data, [alert()])
    proc = sqlsentinel("run", cfg, "--dry-run", "--state-db", f"sqlite:///{state}")
    assert proc.returncode == 1, proc.stderr
    assert "would notify" not in proc.stdout  # no channels configured
    assert not state.exists()

    missing = config_file(tmp_path, f"sqlite:///{tmp_path / 'nope.db'}", [alert()])
    proc = sqlsentinel("run", missing, "--dry-run", "--state-db", f"sqlite:///{state}")
    assert proc.returncode == 1 and "unable to open database file" in proc.stdout
    assert not (tmp_path / "nope.db").exists() and not state.exists()

    proc = sqlsentinel("run", cfg, "--dry-run", "--state-db", postgres_url)
    assert proc.returncode == 1, proc.stderr
    engine = sa.create_engine(postgres_url)
    assert sa.inspect(engine).get_table_names() == []
    engine.dispose()


def test_failed_notification_shown_in_history_and_status(
    tmp_path: Path, http_server: HTTPTestServer
) -> None:
    http_server.respond(400)
    data = make_data_db(tmp_path / "data.db", value=5)
    hook = {"channel": "webhook", "webhook_url": http_server.url_for("/hooks/s3cr3t-t0ken")}
    cfg = config_file(tmp_path, data, [alert(notify=[hook])])
    state = f"sqlite:///{tmp_path / 'state.db'}"
    run = sqlsentinel("run", cfg, "--state-db", state)
    assert run.returncode == 1
    assert "webhook failed" in run.stdout and "400" in run.stdout

    history = sqlsentinel("history", cfg, "--state-db", state)
    assert history.returncode == 0, history.stderr
    assert "failure" in history.stdout and "HTTP 400" in history.stdout
    assert "1 executions" in history.stdout

    status = sqlsentinel("status", cfg, "--state-db", state, "--json")
    [row] = json.loads(status.stdout)
    assert row["state"]["current_status"] == "ALERT"
    assert "400" in row["last_run"]["notification_error"]
    for out in (run.stdout, history.stdout, status.stdout):
        assert "s3cr3t-t0ken" not in out


def test_silence_and_unsilence(tmp_path: Path, http_server: HTTPTestServer) -> None:
    data = make_data_db(tmp_path / "data.db", value=5)
    hook = {"channel": "webhook", "webhook_url": http_server.url_for("/hook")}
    cfg = config_file(tmp_path, data, [alert(notify=[hook])])
    env = {"STATE_DB_URL": f"sqlite:///{tmp_path / 'state.db'}"}
    silenced = sqlsentinel("silence", cfg, "low_metric", "--for", "2h", env=env)
    assert silenced.returncode == 0, silenced.stderr
    assert sqlsentinel("run", cfg, env=env).returncode == 1
    assert http_server.requests == []
    status = json.loads(sqlsentinel("status", cfg, "--json", env=env).stdout)
    assert status[0]["state"]["silence_until"] is not None

    assert sqlsentinel("unsilence", cfg, "low_metric", env=env).returncode == 0
    bad = sqlsentinel("silence", cfg, "low_metric", "--for", "soon", env=env)
    assert bad.returncode == 2 and "--for" in bad.stderr
    both = sqlsentinel("silence", cfg, "low_metric", env=env)
    assert both.returncode == 2


def test_password_never_shown(tmp_path: Path, postgres_url: str) -> None:
    url = sa.engine.make_url(postgres_url).set(password=PASSWORD)
    state_url = url.render_as_string(hide_password=False)
    data = make_data_db(tmp_path / "data.db")
    cfg = config_file(
        tmp_path,
        state_url,  # alerts query PostgreSQL; trust auth accepts any password
        [
            alert("fails", query="SELECT status FROM no_such_table"),
            alert("fine", query="SELECT 'OK' AS status"),
        ],
    )
    outputs = []
    for args in (
        ("validate", cfg),
        ("run", cfg),
        ("run", cfg, "--json"),
        ("history", cfg),
        ("history", cfg, "--json"),
        ("status", cfg, "--json"),
    ):
        proc = sqlsentinel("-v", *args)
        assert proc.returncode in (0, 1), proc.stderr
        no_traceback(proc)
        outputs.append(proc.stdout + proc.stderr)
    unreachable = url.set(port=1).render_as_string(hide_password=False)
    proc = sqlsentinel(
        "run", config_file(tmp_path, unreachable, [alert()]), "--state-db", f"sqlite:///{data[10:]}"
    )
    outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode == 1 and "error" in proc.stdout.lower()
    proc = sqlsentinel("init", "--state-db", unreachable)
    outputs.append(proc.stdout + proc.stderr)
    assert proc.returncode == 1
    no_traceback(proc)
    for out in outputs:
        assert PASSWORD not in out
    engine = sa.create_engine(postgres_url)
    with engine.connect() as conn:
        for table in ("sqlsentinel_executions", "sqlsentinel_configs", "sqlsentinel_state"):
            for row in conn.execute(sa.text(f"SELECT * FROM {table}")):
                assert PASSWORD not in str(tuple(row)), table
    engine.dispose()


def test_init_is_idempotent(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'state.db'}"
    first = sqlsentinel("init", "--state-db", url)
    assert first.returncode == 0 and f"revision {HEAD_REVISION}" in first.stdout
    assert sqlsentinel("init", "--state-db", url).returncode == 0
    tables = sa.inspect(sa.create_engine(url)).get_table_names()
    assert {
        "sqlsentinel_state",
        "sqlsentinel_executions",
        "sqlsentinel_configs",
        "sqlsentinel_outbox",
    } <= set(tables)


@pytest.mark.parametrize("kind", ["postgres", "postgresql"])
def test_heroku_urls(tmp_path: Path, postgres_url: str, kind: str) -> None:
    heroku = postgres_url.replace("postgresql+psycopg", kind)
    cfg = config_file(tmp_path, heroku, [alert("fine", query="SELECT 'OK' AS status")])
    proc = sqlsentinel("run", cfg)
    assert proc.returncode == 0, proc.stderr


def test_hundred_cli_runs_send_one_notification_per_channel(
    tmp_path: Path, http_server: HTTPTestServer, smtp_server: SMTPTestServer
) -> None:
    """The real ``run`` command, 100 times in a row, on an alert that always says ALERT."""
    from click.testing import CliRunner

    from sentinel.cli import cli

    data = make_data_db(tmp_path / "data.db", value=5)
    channels = [
        {"channel": "email", "recipients": ["oncall@example.com"]},
        {"channel": "slack", "webhook_url": http_server.url_for("/slack")},
        {"channel": "webhook", "webhook_url": http_server.url_for("/hook")},
    ]
    cfg = config_file(tmp_path, data, [alert(notify=channels)])
    env = {
        "STATE_DB_URL": f"sqlite:///{tmp_path / 'state.db'}",
        "SMTP_HOST": smtp_server.host,
        "SMTP_PORT": str(smtp_server.port),
        "SMTP_USERNAME": SMTP_USERNAME,
        "SMTP_PASSWORD": SMTP_PASSWORD,
        "SMTP_USE_TLS": "false",
    }
    runner = CliRunner()
    codes = [runner.invoke(cli, ["run", cfg], env=env).exit_code for _ in range(100)]
    assert codes == [1] * 100
    assert sorted(r.path for r in http_server.requests) == ["/hook", "/slack"]
    assert len(smtp_server.messages) == 1
    history = runner.invoke(cli, ["history", cfg, "--json", "--limit", "100"], env=env)
    stats = json.loads(history.output)["statistics"]
    assert stats["total_executions"] == 100 and stats["notifications_sent"] == 3


def test_state_database_with_a_wrong_password(
    tmp_path: Path, mariadb_databases: DatabaseFactory, mariadb_url: str
) -> None:
    user = f"sentinel_cli_{RUN_ID}"
    with mariadb_databases.admin.connect() as conn:
        conn.exec_driver_sql(f"CREATE USER '{user}'@'127.0.0.1' IDENTIFIED BY 'Right-Pw-123'")
    try:
        wrong = sa.make_url(mariadb_url).set(username=user, password=PASSWORD)
        state = wrong.render_as_string(hide_password=False)
        cfg = config_file(tmp_path, make_data_db(tmp_path / "data.db"), [alert()])
        for args in (("run", cfg), ("history", cfg), ("status", cfg), ("init",)):
            proc = sqlsentinel(*args, "--state-db", state)
            assert proc.returncode == 1, (args, proc.stderr)
            no_traceback(proc)
            assert proc.stderr.startswith("error: ") and "Access denied" in proc.stderr
            assert len(proc.stderr.strip().splitlines()) == 1
            assert PASSWORD not in proc.stdout + proc.stderr
    finally:
        with mariadb_databases.admin.connect() as conn:
            conn.exec_driver_sql(f"DROP USER IF EXISTS '{user}'@'127.0.0.1'")


def test_silences_by_label_are_listed_and_kept_as_an_audit_trail(tmp_path: Path) -> None:
    data = make_data_db(tmp_path / "data.db", value=5)
    cfg = config_file(
        tmp_path,
        data,
        [alert("a", labels={"team": "data"}), alert("b", labels={"team": "web"})],
    )
    env = {"STATE_DB_URL": f"sqlite:///{tmp_path / 'state.db'}"}
    made = sqlsentinel(
        "silence", cfg, "--match", "team=data", "--for", "1h", "--reason", "deploy", "--by", "ana",
        env=env,
    )  # fmt: skip
    assert made.returncode == 0, made.stderr
    assert made.stdout.startswith("silence 1: team=data until")
    listed = json.loads(sqlsentinel("silences", cfg, "--json", env=env).stdout)
    assert [(s["matchers"], s["created_by"], s["reason"]) for s in listed] == [
        ({"team": "data"}, "ana", "deploy")
    ]
    status = {
        r["alert"]: r for r in json.loads(sqlsentinel("status", cfg, "--json", env=env).stdout)
    }
    assert status["a"]["state"]["silence_until"] is not None
    assert status["b"]["state"]["silence_until"] is None
    assert sqlsentinel("unsilence", cfg, "--id", "1", env=env).stdout.strip() == "ended 1 silence"
    assert json.loads(sqlsentinel("silences", cfg, "--json", env=env).stdout) == []
    history = sqlsentinel("silences", cfg, "--all", env=env).stdout
    assert "team=data" in history and "ended" in history
    nobody = sqlsentinel("silence", cfg, "--match", "team=nobody", "--for", "1h", env=env)
    assert nobody.returncode == 2 and "no alert has the labels" in nobody.stderr
