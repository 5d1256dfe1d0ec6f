"""The status page, end to end: real state databases, the real app, and a real browser.

The HTML is checked through the app (``TestClient``) for content, escaping, auth and redirects, and
in headless Chromium (Playwright, against uvicorn on loopback) for what people actually see:
a table that works without JavaScript, a silence button that silences, and a visible chart.
"""

from __future__ import annotations

import re
import shutil
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import pytest
import yaml
from fastapi import FastAPI
from fastapi.testclient import TestClient

from sentinel.api import ApiContext, create_app
from sentinel.api.chart import chart
from sentinel.api.page import local_path
from sentinel.config import load_config
from sentinel.deployment import Deployment
from sentinel.enums import ExecutionStatus
from sentinel.models import ExecutionRecord
from tests.alerting import THRESHOLD_QUERY, FakeClock, make_data_db
from tests.databases import CI

MALICIOUS = "<script>alert(1)</script>"
OK_QUERY = "SELECT 'OK' AS status, value * 3 AS actual_value, 50 AS threshold FROM metric"
VALUES = (6.0, 8.0, 4.0, 9.5, 12.0, 7.0, 3.0, 5.0)  # low_metric ends firing, slow_burn pending
ARTIFACTS = Path(__file__).resolve().parent.parent / "test-artifacts"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-dev-shm-usage",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
]
Build = Callable[..., tuple[Deployment, TestClient]]


def _alerts() -> list[dict[str, Any]]:
    every = {"schedule": "*/5 * * * *"}
    return [
        {"name": "low_metric", "description": MALICIOUS, "query": THRESHOLD_QUERY,
         "severity": "critical", **every},
        {"name": "healthy", "description": "Triple the metric stays below 50", "query": OK_QUERY,
         **every},
        {"name": "slow_burn", "description": "Fires after ten low runs", "fire_after": 10,
         "query": THRESHOLD_QUERY, **every},
        {"name": "dormant", "query": THRESHOLD_QUERY, "enabled": False, **every},
    ]  # fmt: skip


def make_deployment(tmp_path: Path, state_url: str) -> tuple[Deployment, FakeClock]:
    """Four alerts with history: one firing, one OK, one pending, one that never ran."""
    data = tmp_path / "metrics.db"
    url = make_data_db(data)
    config = tmp_path / "alerts.yaml"
    config.write_text(yaml.safe_dump({"database": {"url": url}, "alerts": _alerts()}))
    clock = FakeClock()
    deployment = Deployment(load_config(config), state_url, clock=clock)
    for value in VALUES:
        make_data_db(data, value)
        deployment.run()
        clock.advance(minutes=5)
    return deployment, clock


@pytest.fixture
def build(tmp_path: Path) -> Iterator[Build]:
    """``build(state_url, token=None, public_read=False)``: a deployment with runs, and a client."""
    deployments: list[Deployment] = []

    def factory(state_url: str | None = None, **auth: Any) -> tuple[Deployment, TestClient]:
        deployment, clock = make_deployment(tmp_path, state_url or f"sqlite:///{tmp_path / 's.db'}")
        deployments.append(deployment)
        app = create_app(deployment, ApiContext(deployment=deployment, clock=clock, **auth))
        return deployment, TestClient(app, follow_redirects=False)

    yield factory
    for deployment in deployments:
        deployment.close()


def row(html: str, name: str) -> str:
    match = re.search(rf'<tr id="alert-{name}".*?</tr>', html, re.DOTALL)
    assert match, f"no row for {name}"
    return match.group(0)


def test_index_lists_every_alert_with_its_state(build: Build, state_db_url: str) -> None:
    _, client = build(state_db_url)
    page = client.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert re.search(
        r"ALERT</span> <b>1</b>.*PENDING</span> <b>1</b>.*OK</span> <b>1</b>", html, re.DOTALL
    )
    assert 'class="badge state-alert">ALERT<' in row(html, "low_metric")
    assert 'class="badge state-ok">OK<' in row(html, "healthy")
    assert 'class="badge state-pending">PENDING 3/10<' in row(html, "slow_burn")
    assert 'class="badge state-never">never run<' in row(html, "dormant")
    low = row(html, "low_metric")
    assert 'href="/alerts/low_metric"' in low and "5 <span" in low and "vs 10" in low
    assert "2026-03-01 12:35:00\u00a0UTC" in low and "failure" in low  # the last run and its result
    assert 'action="/alerts/low_metric/silence"' in low and 'value="4h"' in low
    assert 'name="token"' not in html  # no token configured: no token field
    assert "frame-ancestors 'none'" in page.headers["content-security-policy"]
    css = client.get("/static/style.css")
    assert css.status_code == 200 and css.headers["content-type"].startswith("text/css")
    assert ".state-alert" in css.text


def test_alert_page_shows_history_and_chart(build: Build, state_db_url: str) -> None:
    _, client = build(state_db_url)
    html = client.get("/alerts/low_metric").text
    assert html.count('<tr class="run">') == len(VALUES)
    assert html.index("2026-03-01 12:35:00\u00a0UTC") < html.index("2026-03-01 12:00:00\u00a0UTC")
    assert "<svg" in html and '<polyline class="series" points="' in html
    assert 'class="threshold"' in html and "stroke-dasharray" in html
    points = re.search(r'points="([^"]+)"', html)
    assert points and len(points.group(1).split()) == len(VALUES)
    assert '<pre class="query">SELECT CASE WHEN value &lt; 10 THEN &#39;ALERT&#39;' in html
    assert "*/5 * * * *</code> in UTC" in html and "fire_after" in html


def test_unknown_alert_is_a_404_page(build: Build) -> None:
    _, client = build()
    page = client.get("/alerts/no_such_alert")
    assert page.status_code == 404 and page.headers["content-type"].startswith("text/html")
    assert "Unknown alert" in page.text and "Traceback" not in page.text
    refused = client.post("/alerts/no_such_alert/silence", data={"duration": "1h"})
    assert refused.status_code == 404 and "Unknown alert" in refused.text


def test_everything_is_escaped(build: Build) -> None:
    _, client = build()
    for html in (client.get("/").text, client.get("/alerts/low_metric").text):
        assert MALICIOUS not in html and "<script" not in html
        assert "&lt;script&gt;alert(1)&lt;/script&gt;" in html
    page = client.get("/alerts/%3Cb%3Ex")
    assert page.status_code == 404 and "<b>x" not in page.text and "&lt;b&gt;" in page.text


def test_silence_and_unsilence_forms(build: Build, state_db_url: str) -> None:
    deployment, client = build(state_db_url)
    form = {"duration": "4h", "reason": "deploying a fix", "next": "/#alert-low_metric"}
    done = client.post("/alerts/low_metric/silence", data=form)
    assert done.status_code == 303 and done.headers["location"] == "/#alert-low_metric"
    [active] = deployment.silences()
    assert active.alert_name == "low_metric" and active.reason == "deploying a fix"
    status = client.get("/api/v1/alerts/low_metric/status").json()
    assert status["silenced_until"].startswith("2026-03-01T16:40:00")
    low = row(client.get("/").text, "low_metric")
    assert "silenced</span> until<br>2026-03-01 16:40:00\u00a0UTC" in low
    assert 'action="/alerts/low_metric/unsilence"' in low
    assert "silenced</span> until" in client.get("/alerts/low_metric").text

    back = client.post("/alerts/low_metric/unsilence", data={"next": "/alerts/low_metric"})
    assert back.status_code == 303 and back.headers["location"] == "/alerts/low_metric"
    assert deployment.silences() == []
    assert client.get("/api/v1/alerts/low_metric/status").json()["silenced_until"] is None


def test_bad_duration_is_refused(build: Build) -> None:
    deployment, client = build()
    for duration in ("soon", "0h", "-1h"):
        page = client.post("/alerts/low_metric/silence", data={"duration": duration})
        assert page.status_code == 400 and "Not silenced" in page.text
    assert deployment.silences() == []


@pytest.mark.parametrize(
    "target", ["https://evil.example/", "//evil.example/x", "/\\evil.example", "javascript:x", ""]
)
def test_next_never_leaves_the_site(build: Build, target: str) -> None:
    _, client = build()
    done = client.post("/alerts/healthy/silence", data={"duration": "1h", "next": target})
    assert done.status_code == 303 and done.headers["location"] == "/alerts/healthy"
    assert local_path("/alerts/x?y=1#z", "/") == "/alerts/x?y=1#z"
    assert local_path("/a b", "/") == "/"


def test_cross_site_posts_are_refused(build: Build) -> None:
    deployment, client = build()
    page = client.post(
        "/alerts/low_metric/silence",
        data={"duration": "1h"},
        headers={"Sec-Fetch-Site": "cross-site"},
    )
    assert page.status_code == 403 and deployment.silences() == []


def test_forms_need_the_token_when_one_is_set(build: Build) -> None:
    deployment, client = build(token="t0k3n", public_read=True)
    html = client.get("/").text  # public: readable without the token...
    assert 'type="password" name="token"' in row(html, "low_metric")  # ...but forms ask for it
    assert "need the API token" in client.get("/alerts/low_metric").text  # history is not public
    for token in ("", "wrong"):
        page = client.post("/alerts/low_metric/silence", data={"duration": "1h", "token": token})
        assert page.status_code == 401 and 'action="/login"' in page.text
    assert deployment.silences() == []
    done = client.post("/alerts/low_metric/silence", data={"duration": "1h", "token": "t0k3n"})
    assert done.status_code == 303 and len(deployment.silences()) == 1
    bearer = {"Authorization": "Bearer t0k3n"}
    assert 'class="run"' in client.get("/alerts/low_metric", headers=bearer).text


def test_private_page_needs_a_login(build: Build) -> None:
    deployment, client = build(token="t0k3n")
    page = client.get("/")
    assert (
        page.status_code == 401 and 'action="/login"' in page.text and "low_metric" not in page.text
    )
    assert client.get("/alerts/low_metric").status_code == 401
    assert client.post("/login", data={"token": "nope"}).status_code == 401
    done = client.post("/login", data={"token": "t0k3n", "next": "/alerts/healthy"})
    assert done.status_code == 303 and done.headers["location"] == "/alerts/healthy"
    cookie = done.headers["set-cookie"].lower()
    assert "sentinel_token=t0k3n" in cookie and "httponly" in cookie and "samesite=strict" in cookie
    html = client.get("/").text  # the cookie now reads the page and authorises its forms
    assert "low_metric" in html and 'name="token"' not in html and "Log out" in html
    assert client.post("/alerts/low_metric/silence", data={"duration": "1d"}).status_code == 303
    assert len(deployment.silences()) == 1
    client.post("/logout")
    assert client.get("/").status_code == 401


def test_chart_edges() -> None:
    def run(value: float | None, minute: int, threshold: float | None = None) -> ExecutionRecord:
        at = FakeClock().now.replace(minute=minute)
        return ExecutionRecord(
            "a", at, 1.0, ExecutionStatus.SUCCESS, actual_value=value, threshold=threshold
        )

    assert chart([run(None, 0)]) is None
    one = chart([run(3.0, 0, threshold=3.0)])
    assert one is not None and one.count == 1 and one.low < 3.0 < one.high
    flat = chart([run(2.0, m) for m in (3, 2, 1)])
    assert flat is not None and flat.threshold_y is None and flat.count == 3
    many = chart([run(float(i), i % 60) for i in range(150)])
    assert many is not None and many.count == 100


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """uvicorn on 127.0.0.1, on a port the OS picks (no race for a "free" one)."""
    import uvicorn

    config = uvicorn.Config(
        app, host="127.0.0.1", port=0, log_level="warning", lifespan="off", ws="none"
    )
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 15
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    try:
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(15)


def test_in_a_real_browser(tmp_path: Path) -> None:
    chromium = shutil.which("chromium")
    if chromium is None:
        if CI:
            pytest.fail("chromium is not installed, and CI promises it")
        pytest.skip("chromium is not installed")
    from playwright.sync_api import sync_playwright

    deployment, clock = make_deployment(tmp_path, f"sqlite:///{tmp_path / 'state.db'}")
    app = create_app(deployment, ApiContext(deployment=deployment, clock=clock))
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        with serving(app) as base, sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=chromium, args=CHROMIUM_ARGS)
            try:
                page = browser.new_page(viewport={"width": 1440, "height": 900})
                page.goto(base + "/")
                assert page.locator("table.alerts tbody tr").count() == 4
                low = page.locator("#alert-low_metric")
                assert "ALERT" in low.inner_text() and "Silence" in low.inner_text()
                low.locator("select[name=duration]").select_option("4h")
                low.locator("input[name=reason]").fill("deploying a fix")
                low.locator("button.silence").click()
                page.wait_for_url(base + "/#alert-low_metric")
                assert "silenced until\n2026-03-01 16:40:00\u00a0UTC" in low.inner_text()
                assert low.locator("button.unsilence").is_visible()
                assert [s.reason for s in deployment.silences()] == ["deploying a fix"]
                page.screenshot(path=str(ARTIFACTS / "status-page.png"), full_page=True)

                page.locator("#alert-low_metric a").click()
                page.wait_for_url(base + "/alerts/low_metric")
                svg = page.locator("figure.chart svg")
                box = svg.bounding_box()
                assert svg.is_visible() and box is not None and box["width"] > 300
                assert page.locator("tr.run").count() == len(VALUES)
                page.screenshot(path=str(ARTIFACTS / "alert-page.png"), full_page=True)

                app.state.sentinel = ApiContext(deployment=deployment, token="t0k3n", clock=clock)
                private = browser.new_context()
                try:  # a private page: log in once, then the cookie reads and silences
                    login = private.new_page()
                    answer = login.goto(base + "/alerts/healthy")
                    assert answer is not None and answer.status == 401
                    login.locator("input[name=token]").fill("t0k3n")
                    login.locator("form.login button").click()
                    login.wait_for_url(base + "/alerts/healthy")
                    login.locator("form.action button.silence").click()
                    login.wait_for_url(base + "/alerts/healthy")
                    assert "silenced until" in login.locator("section.actions").inner_text()
                    [cookie] = private.cookies()
                    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
                finally:
                    private.close()
                app.state.sentinel = ApiContext(deployment=deployment, clock=clock)

                plain = browser.new_context(java_script_enabled=False)
                try:
                    still = plain.new_page()
                    still.goto(base + "/")
                    assert still.locator("table.alerts tbody tr").count() == 4
                    assert "PENDING 3/10" in still.locator("#alert-slow_burn").inner_text()
                finally:
                    plain.close()
            finally:
                browser.close()
    finally:
        deployment.close()
