"""The API's alert list (``sentinel.api.listing``) answers exactly what the full overview builds,
however the state changes between requests, in a fixed number of queries."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from fastapi.testclient import TestClient
from pydantic import TypeAdapter

from sentinel.api import ApiContext, create_app, schemas, views
from sentinel.api.listing import AlertList
from sentinel.deployment import Deployment
from tests.alerting import THRESHOLD_QUERY, FakeClock, make_data_db, write_config

SUMMARIES = TypeAdapter(list[schemas.AlertSummary])


def _alerts(count: int) -> list[dict[str, Any]]:
    alerts: list[dict[str, Any]] = [
        {
            "name": f"a{i}",
            "query": THRESHOLD_QUERY,
            "schedule": f"*/{1 + i % 7} * * * *",
            "labels": {"team": f"t{i % 3}"},
            "fire_after": 1 + i % 2,
        }
        for i in range(count)
    ]
    alerts[0]["enabled"] = False
    alerts[1]["mute"] = [{"start": "12:05", "end": "12:20"}]
    alerts[2]["mute"] = [{"cron": "*/10 * * * *", "duration": 90}]
    return alerts


@pytest.fixture
def world(tmp_path: Path, state_db_url: str) -> Iterator[tuple[Deployment, FakeClock, Path]]:
    data = tmp_path / "data.db"
    config = write_config(tmp_path / "alerts.yaml", make_data_db(data), _alerts(12))
    clock = FakeClock()
    deployment = Deployment(config, state_db_url, clock=clock)
    yield deployment, clock, data
    deployment.close()


def _same(listing: AlertList, deployment: Deployment) -> None:
    now = deployment.clock()
    expected = SUMMARIES.dump_json(views.summaries(deployment, now))
    assert listing.json(now) == expected
    assert SUMMARIES.dump_json(listing.summaries(now)) == expected


def test_the_list_matches_the_full_overview_through_every_kind_of_change(
    world: tuple[Deployment, FakeClock, Path],
) -> None:
    deployment, clock, data = world
    listing = AlertList(deployment)
    _same(listing, deployment)  # nothing has run yet
    deployment.run("a3")
    _same(listing, deployment)  # one alert ran
    deployment.run()
    _same(listing, deployment)  # all ran: pending and firing
    deployment.run()
    _same(listing, deployment)
    make_data_db(data, value=50.0)  # recovery: new values and results
    clock.advance(seconds=30)
    deployment.run()
    _same(listing, deployment)
    silence = deployment.silence("a4", clock.now + timedelta(minutes=10))
    assert silence
    _same(listing, deployment)  # silenced by name
    deployment.silence(None, clock.now + timedelta(seconds=200), matchers={"team": "t1"})
    _same(listing, deployment)  # silenced by labels
    deployment.unsilence("a4")
    _same(listing, deployment)
    for _ in range(70):  # next slots pass, mute windows open and close, silences run out
        clock.advance(seconds=20)
        _same(listing, deployment)
    clock.now -= timedelta(hours=1)  # a clock set back is answered for, too
    _same(listing, deployment)


def test_the_api_and_the_page_serve_the_list(world: tuple[Deployment, FakeClock, Path]) -> None:
    deployment, clock, _ = world
    deployment.run()
    ctx = ApiContext(deployment=deployment, clock=clock)
    client = TestClient(create_app(deployment, ctx))
    for _ in range(2):  # built, then reused
        body = client.get("/api/v1/alerts").content
        assert body == SUMMARIES.dump_json(views.summaries(deployment, clock.now))
        page = client.get("/").text
        assert page.count('<tr id="alert-') == 12
    deployment.silence("a5", clock.now + timedelta(minutes=10))
    assert client.get("/api/v1/alerts").content == SUMMARIES.dump_json(
        views.summaries(deployment, clock.now)
    )
    row = next(line for line in client.get("/").text.splitlines() if 'id="alert-a5"' in line)
    assert "silenced" in row


def _statements(engine: sa.engine.Engine, listing: AlertList, deployment: Deployment) -> int:
    seen: list[str] = []

    def count(*args: Any) -> None:
        seen.append(args[2])

    sa.event.listen(engine, "before_cursor_execute", count)
    try:
        listing.json(deployment.clock())
    finally:
        sa.event.remove(engine, "before_cursor_execute", count)
    return len(seen)


def test_a_request_reads_the_same_few_statements_whatever_the_number_of_alerts(
    tmp_path: Path, state_db_url: str
) -> None:
    counts = []
    for n in (5, 80):
        url = make_data_db(tmp_path / f"data{n}.db")
        config = write_config(tmp_path / f"alerts{n}.yaml", url, _alerts(n))
        deployment = Deployment(config, state_db_url, clock=FakeClock())
        try:
            deployment.run()
            listing = AlertList(deployment)
            first = _statements(deployment.state_engine, listing, deployment)
            deployment.run("a3")  # one new run to read
            changed = _statements(deployment.state_engine, listing, deployment)
            again = _statements(deployment.state_engine, listing, deployment)
            counts.append((first, changed, again))
        finally:
            deployment.close()
    assert counts[0] == counts[1]
    first, changed, again = counts[0]
    assert again < changed <= first  # only the runs it has not seen are read


def test_the_list_reads_the_states_as_the_table_types_convert_them(
    world: tuple[Deployment, FakeClock, Path],
) -> None:
    """The fast read (one JSON text on SQLite, plain columns elsewhere) gives the values a read
    through the table's own types gives, an unknown status name and odd characters included."""
    from sentinel.store.overview import read_alert_list
    from sentinel.store.tables import state

    deployment, clock, _ = world
    deployment.run()
    engine = deployment.state_engine
    with engine.begin() as conn:
        conn.execute(
            sa.update(state).where(state.c.alert_name == "a4").values(current_status="LATER")
        )
        conn.execute(
            state.insert().values(
                alert_name='by hand "quoted" \\ ü',
                status_since=clock.now.replace(microsecond=7),
                consecutive_alerts=3,
                created_at=clock.now,
                updated_at=clock.now,
            )
        )
    columns = [state.c[n] for n in ("alert_name", "current_status", "status_since")]
    columns += [state.c.consecutive_alerts, state.c.last_execution_id]
    with engine.connect() as conn:
        expected = sorted(tuple(r) for r in conn.execute(sa.select(*columns)))
    reading = read_alert_list(engine, {"a4"}, clock.now, set())
    assert sorted(reading.rows) == expected
    assert ("a4", "LATER") in [r[:2] for r in reading.rows]
    assert any(r[2] == clock.now.replace(microsecond=7) for r in reading.rows)
    # Unchanged states are not converted again; a changed one is read as it now is.
    assert read_alert_list(engine, {"a4"}, clock.now, set(), reading).rows is reading.rows
    with engine.begin() as conn:
        conn.execute(sa.update(state).where(state.c.alert_name == "a4").values(current_status="OK"))
    changed = read_alert_list(engine, {"a4"}, clock.now, set(), reading)
    assert ("a4", "OK") in [r[:2] for r in changed.rows]
