"""Loading and validating config files: every problem reported, located, and nothing leaked."""

from __future__ import annotations

from pathlib import Path

import pytest

from sentinel.config import ConfigLoader, ConfigValidator, load_config
from sentinel.errors import ConfigurationError, ValidationError

GOOD = """
database:
  url: "sqlite://"
alerts:
  - name: ok_alert
    query: SELECT 'OK' AS status
    schedule: "*/5 * * * *"
"""


def write(tmp_path: Path, text: str) -> str:
    path = tmp_path / "alerts.yaml"
    path.write_text(text)
    return str(path)


def test_good_file_loads(tmp_path: Path) -> None:
    config = load_config(write(tmp_path, GOOD))
    assert [a.name for a in config.alerts] == ["ok_alert"]
    assert config.alerts[0].timezone == "UTC"
    assert config.database.timeout == 30.0


def test_env_substitution_braced_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SENTINEL_TEST_DB", "sqlite://")
    monkeypatch.setenv("HOME", "/home/leak")
    text = """
database:
  url: ${SENTINEL_TEST_DB}
alerts:
  - name: a
    description: "${SENTINEL_MISSING_WITH_DEFAULT:-fallback} and $${NOT_A_VAR}"
    query: SELECT 'OK' AS status, '$HOME' AS home, '$1' AS one
    schedule: "0 * * * *"
"""
    config = load_config(write(tmp_path, text))
    alert = config.alerts[0]
    assert config.database.url == "sqlite://"
    assert alert.description == "fallback and ${NOT_A_VAR}"
    assert "'$HOME'" in alert.query and "'$1'" in alert.query


def test_missing_variable_is_named(tmp_path: Path) -> None:
    text = GOOD.replace('"sqlite://"', "${SENTINEL_SURELY_UNSET_VAR}")
    with pytest.raises(ValidationError) as info:
        ConfigLoader(write(tmp_path, text)).load()
    assert "SENTINEL_SURELY_UNSET_VAR" in str(info.value)
    assert "database.url" in str(info.value)


def test_every_problem_reported_at_once(tmp_path: Path) -> None:
    text = """
database:
  url: "sqlite://"
alerts:
  - name: bad_cron
    query: SELECT 'OK' AS status
    schedule: "not a cron"
  - name: never
    query: SELECT 'OK' AS status
    schedule: "0 0 30 2 *"
  - name: bad_tz
    query: SELECT 'OK' AS status
    schedule: "0 * * * *"
    timezone: Mars/Olympus
  - name: writes
    query: DELETE FROM orders
    schedule: "0 * * * *"
  - name: two_statements
    query: SELECT 'OK' AS status; DROP TABLE orders
    schedule: "0 * * * *"
  - name: bad_channel
    query: SELECT 'OK' AS status
    schedule: "0 * * * *"
    notify:
      - channel: pager
  - name: typo
    query: SELECT 'OK' AS status
    schedule: "0 * * * *"
    schedul: "0 * * * *"
  - name: good
    query: SELECT 'OK' AS status
    schedule: "0 * * * *"
  - name: good
    query: SELECT 'OK' AS status
    schedule: "0 * * * *"
"""
    path = write(tmp_path, text)
    with pytest.raises(ValidationError) as info:
        load_config(path)
    text_issues = [str(i) for i in info.value.issues]
    by_alert = {i.alert: i for i in info.value.issues}
    assert "never fires" in by_alert["never"].message
    assert set(by_alert) == {
        "bad_cron",
        "never",
        "bad_tz",
        "writes",
        "two_statements",
        "bad_channel",
        "typo",
        "good",
    }
    assert by_alert["bad_cron"].field == "schedule"
    assert by_alert["bad_tz"].field == "timezone" and "Mars/Olympus" in by_alert["bad_tz"].message
    assert by_alert["writes"].field == "query"
    assert by_alert["two_statements"].field == "query"
    assert "did you mean 'schedule'" in by_alert["typo"].message
    assert "duplicate" in by_alert["good"].message
    assert all(t.startswith(path) for t in text_issues)


def test_malformed_yaml_names_the_line(tmp_path: Path) -> None:
    path = write(tmp_path, "database:\n  url: [unclosed\nalerts: []\n")
    with pytest.raises(ConfigurationError) as info:
        ConfigLoader(path).load()
    assert str(info.value).startswith(f"{path}:")
    assert "invalid YAML" in str(info.value)


def test_durations_and_defaults(tmp_path: Path) -> None:
    text = """
database:
  url: "sqlite://"
  timeout: 2m
defaults:
  min_interval: 4h
alerts:
  - name: inherits
    query: SELECT 'OK' AS status
    schedule: "0 * * * *"
  - name: overrides
    query: SELECT 'OK' AS status
    schedule: "0 * * * *"
    min_interval: 90s
    timeout: 15
"""
    config = load_config(write(tmp_path, text))
    assert config.database.timeout == 120
    assert [a.min_interval for a in config.alerts] == [14400, 90]
    assert config.alerts[1].timeout == 15


def test_validator_is_the_spec_api() -> None:
    data = {
        "database": {"url": "sqlite://"},
        "alerts": [{"name": "a", "query": "SELECT 1 AS status", "schedule": "* * * * *"}],
    }
    alerts = ConfigValidator().validate(data)
    assert alerts[0].name == "a"


def test_template_syntax_errors_are_reported(tmp_path: Path) -> None:
    text = (
        GOOD
        + """    notify:
      - channel: webhook
        webhook_url: http://127.0.0.1:9/hook
        template: "{{ actual_value "
"""
    )
    with pytest.raises(ValidationError) as info:
        load_config(write(tmp_path, text))
    [issue] = info.value.issues
    assert issue.alert == "ok_alert" and issue.field == "notify[0].template"


def test_a_defaults_block_is_checked_by_the_alert_fields_own_rules() -> None:
    """defaults: takes exactly the fields alerts inherit, validated as an alert validates them."""
    from sentinel.config import ConfigValidator
    from sentinel.errors import ValidationError

    data = {
        "database": {"url": "sqlite://"},
        "defaults": {"timeout": "banana", "fire_after": 0, "query": "SELECT 1", "timeut": 3},
        "alerts": [{"name": "a", "query": "SELECT 'OK' AS status", "schedule": "* * * * *"}],
    }
    with pytest.raises(ValidationError) as caught:
        ConfigValidator("alerts.yaml", check_sql=False).validate(data)
    by_field = {issue.field: issue.message for issue in caught.value.issues}
    assert set(by_field) == {
        "defaults.timeout",
        "defaults.fire_after",
        "defaults.query",
        "defaults.timeut",
    }
    assert by_field["defaults.query"] == "'query' is set per alert, not in defaults"
    assert by_field["defaults.timeut"] == "unknown field 'timeut' (did you mean 'timeout'?)"
