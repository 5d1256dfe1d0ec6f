"""Details rows, severity, owner, runbook and resolved/error wording in every channel.

Delivered through the real SMTP and HTTP servers of tests/servers.py, built by the same
``NotificationFactory`` the service uses, and read back the way a receiver would see them.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from decimal import Decimal
from typing import Any

import pytest

from sentinel.notifications import NotificationFactory, RetryPolicy
from sentinel.notifications.render import render_text, text_table
from sentinel.serialization import to_jsonable
from tests.servers import SMTP_PASSWORD, SMTP_USERNAME, HTTPTestServer, SMTPTestServer
from tests.test_notifications import body_parts, email_config, http_config, make_event

FAST = RetryPolicy(initial_wait=0.01, max_wait=0.05)
RUNBOOK = "https://runbooks.example.com/revenue?team=data&step=1"
ROWS: list[dict[str, Any]] = [
    {"id": 1, "name": "<b>x</b>", "amount": Decimal("12.50"), "at": datetime(2024, 5, 1, 8, 0)},
    {"id": 22, "name": "Zürich\nnorth", "amount": None, "at": None},
]
# As an aligned table: numbers right-aligned, NULL blank, a newline inside a value flattened.
TABLE = [
    "id  name          amount  at",
    "--  ------------  ------  -------------------",
    " 1  <b>x</b>       12.50  2024-05-01 08:00:00",
    "22  Zürich north",
]
SLACK_SECTION_LIMIT = 3000


def details_event(**changes: Any) -> Any:
    values: dict[str, Any] = {
        "details": ROWS,
        "severity": "critical",
        "owner": "data-team",
        "runbook_url": RUNBOOK,
    }
    return make_event(**{**values, **changes})


def resolved(**changes: Any) -> Any:
    # Firing since 06:45:01, resolved by the run at 09:00:03 (make_event's executed_at).
    values = {"event": "resolved", "status": "OK", "firing_since": datetime(2024, 5, 1, 6, 45, 1)}
    return details_event(**{**values, **changes})


def errored(**changes: Any) -> Any:
    values: dict[str, Any] = {
        "event": "error",
        "status": "ERROR",
        "actual_value": None,
        "threshold": None,
        "details": [],
        "error": "connection refused by db.internal:5432",
    }
    return details_event(**{**values, **changes})


def factory(smtp: SMTPTestServer | None = None) -> NotificationFactory:
    return NotificationFactory(
        smtp_host=smtp.host if smtp else None,
        smtp_port=smtp.port if smtp else None,
        smtp_username=SMTP_USERNAME,
        smtp_password=SMTP_PASSWORD,
        smtp_use_tls=False,
        from_address="sentinel@example.com",
        retry_policy=FAST,
    )


def send_email(smtp: SMTPTestServer, event: Any, **config: Any) -> tuple[str, str, str]:
    """Deliver ``event`` by email and return what arrived: subject, text part, HTML part."""
    factory(smtp).create_service("email").deliver(event, email_config(**config))
    [mail] = smtp.messages
    text, html = body_parts(mail.message)
    # A long subject is folded onto its own line; Python's parser keeps the fold's leading space.
    return str(mail.message["Subject"]).strip(), text, html


def send_http(http: HTTPTestServer, channel: str, event: Any) -> Any:
    factory().create_service(channel).deliver(event, http_config(channel, http.url))
    [request] = http.requests
    return request.json()


def section_texts(body: Any) -> list[str]:
    return [b["text"]["text"] for b in body["blocks"] if b["type"] == "section" and "text" in b]


def context_texts(body: Any) -> list[str]:
    return [e["text"] for b in body["blocks"] if b["type"] == "context" for e in b["elements"]]


# ------------------------------------------------------------------------------------------- email


def test_email_html_shows_the_rows_as_an_escaped_table(smtp_server: SMTPTestServer) -> None:
    _, _, html = send_email(smtp_server, details_event())
    details = html[html.index("Details (2 rows)") :]
    assert "<table" in details
    assert [f">{name}</th>" in details for name in ROWS[0]] == [True] * 4
    assert ">&lt;b&gt;x&lt;/b&gt;</td>" in details and "<b>x</b>" not in html
    assert ">12.50</td>" in details and ">2024-05-01 08:00:00</td>" in details
    assert ">Zürich north</td>" in details
    assert ">critical</td>" in html and ">data-team</td>" in html
    assert f'<a href="{RUNBOOK.replace("&", "&amp;")}">' in html


def test_email_text_shows_the_rows_as_an_aligned_table(smtp_server: SMTPTestServer) -> None:
    subject, text, _ = send_email(smtp_server, details_event())
    assert subject == "[ALERT] daily_revenue: Revenue below target"
    lines = text.splitlines()
    start = lines.index("Details (2 rows):")
    assert lines[start + 1 : start + 5] == [f"  {line}" for line in TABLE]
    assert "Severity:      critical" in lines and "Owner:         data-team" in lines
    assert f"Runbook:       {RUNBOOK}" in lines


def test_email_without_details_or_on_call_fields_shows_neither(smtp_server: SMTPTestServer) -> None:
    _, text, html = send_email(smtp_server, make_event())
    assert "Details" not in text and "Details" not in html
    assert "Severity" not in text and "Runbook" not in html


def test_a_runbook_that_is_not_a_web_address_is_not_a_link(smtp_server: SMTPTestServer) -> None:
    _, _, html = send_email(smtp_server, details_event(runbook_url="javascript:alert(1)"))
    assert "href" not in html and ">javascript:alert(1)</td>" in html


def test_email_resolved_says_so_and_how_long_it_was_firing(smtp_server: SMTPTestServer) -> None:
    subject, text, html = send_email(smtp_server, resolved())
    assert subject == "[RESOLVED] daily_revenue is back to OK after 2h15m: Revenue below target"
    assert text.startswith("RESOLVED: daily_revenue is back to OK after firing for 2h15m.")
    assert "Firing since:  2024-05-01 06:45:01 UTC (2h15m)" in text
    assert "daily_revenue is back to OK after firing for 2h15m</h2>" in html


def test_email_error_says_what_failed(smtp_server: SMTPTestServer) -> None:
    subject, text, html = send_email(smtp_server, errored())
    failure = "connection refused by db.internal:5432"
    assert subject == f"[ERROR] daily_revenue could not be checked: {failure}"
    assert text.splitlines()[0] == f"ERROR: daily_revenue could not be checked: {failure}"
    assert text.count(failure) == 1 and "Details" not in text
    assert "daily_revenue could not be checked</h2>" in html
    assert f"<strong>What failed:</strong> {failure}</p>" in html


# ------------------------------------------------------------------------------------------- Slack


def test_slack_shows_the_rows_in_a_code_block(http_server: HTTPTestServer) -> None:
    body = send_http(http_server, "slack", details_event())
    [table] = [text for text in section_texts(body) if text.startswith("```")]
    escaped = [line.replace("<", "&lt;").replace(">", "&gt;") for line in TABLE]
    assert table == "\n".join(["```", *escaped, "```"])
    assert body["blocks"][0]["text"]["text"] == "Firing: daily_revenue"
    assert (
        f"*Severity:* critical · *Owner:* data-team · <{RUNBOOK.replace('&', '&amp;')}|Runbook>"
        in context_texts(body)
    )


def test_slack_clips_500_long_rows_to_the_section_limit(http_server: HTTPTestServer) -> None:
    rows = [{"id": n, "note": f"row {n} " + "long text " * 30} for n in range(1, 501)]
    rows[0]["note"] = "closes ``` the fence"
    body = send_http(http_server, "slack", details_event(details=rows))
    [table] = [text for text in section_texts(body) if text.startswith("```")]
    assert len(table) <= SLACK_SECTION_LIMIT
    assert all(len(text) <= SLACK_SECTION_LIMIT for text in section_texts(body))
    code, note = table.rsplit("\n", 1)
    assert code.count("```") == 2 and code.endswith("\n```")
    shown = code.splitlines()[3:-1]  # after the fence, header and rule
    assert shown[0].startswith("  1  closes") and shown[-1].startswith(f"{len(shown):>3}  row ")
    assert note == f"_… {500 - len(shown)} more rows_"
    assert len(shown) > 20  # clipped by the limit, not much sooner


@pytest.mark.parametrize(
    ("event", "header", "text"),
    [
        (
            resolved(),
            "Resolved: daily_revenue (firing for 2h15m)",
            "Alert *daily_revenue* is resolved after firing for 2h15m: Revenue below target",
        ),
        (
            errored(),
            "Error: daily_revenue could not be checked",
            "Alert *daily_revenue* could not be checked: Revenue below target "
            "(connection refused by db.internal:5432)",
        ),
    ],
    ids=["resolved", "error"],
)
def test_slack_resolved_and_error_have_their_own_header(
    http_server: HTTPTestServer, event: Any, header: str, text: str
) -> None:
    body = send_http(http_server, "slack", event)
    assert body["blocks"][0]["text"]["text"] == header
    assert body["text"] == text


# ----------------------------------------------------------------------------------------- webhook


def test_webhook_payload_carries_the_rows_json_safe(http_server: HTTPTestServer) -> None:
    payload = send_http(http_server, "webhook", resolved())
    assert payload["version"] == 1 and payload["event"] == "resolved"
    assert payload["details"] == [
        {"id": 1, "name": "<b>x</b>", "amount": 12.5, "at": "2024-05-01T08:00:00"},
        {"id": 22, "name": "Zürich\nnorth", "amount": None, "at": None},
    ]
    assert payload["details"] == to_jsonable(ROWS)
    assert [list(row) for row in payload["details"]] == [["id", "name", "amount", "at"]] * 2
    assert (payload["severity"], payload["owner"]) == ("critical", "data-team")
    assert payload["runbook_url"] == RUNBOOK
    assert payload["firing_since"] == "2024-05-01T06:45:01+00:00"
    assert payload["executed_at"] == "2024-05-01T09:00:03+00:00"


def test_webhook_payload_without_details_is_an_empty_array(http_server: HTTPTestServer) -> None:
    payload = send_http(http_server, "webhook", make_event())
    assert payload["details"] == [] and payload["firing_since"] is None
    assert payload["severity"] is None and payload["runbook_url"] is None


# --------------------------------------------------------------------------------------- templates


def test_custom_templates_see_the_rows_and_on_call_fields() -> None:
    template = (
        "{{ details_columns|join(',') }}|{% for row in details %}{{ row.id }};{% endfor %}|"
        "{{ severity }}|{{ owner }}|{{ runbook_url }}|{{ firing_for }}|{{ labels.team }}"
    )
    rendered = render_text(resolved(), email_config(template=template))
    assert rendered == f"id,name,amount,at|1;22;|critical|data-team|{RUNBOOK}|2h15m|data"
    table = render_text(details_event(), email_config(template="{{ details|text_table }}"))
    assert table.splitlines() == TABLE


@pytest.mark.parametrize(
    ("since", "expected"),
    [
        (datetime(2024, 5, 1, 8, 59, 33), "30s"),
        (datetime(2024, 5, 1, 8, 14, 3), "46m"),
        (datetime(2024, 4, 29, 6, 45, 1), "2d2h15m"),
        (datetime(2024, 5, 1, 11, 0, 3, tzinfo=timezone(timedelta(hours=2))), "0s"),
        (datetime(2024, 5, 1, 7, 0, 3, tzinfo=UTC), "2h"),
        (None, ""),
    ],
)
def test_firing_for_is_a_short_human_duration(since: datetime | None, expected: str) -> None:
    event = resolved(firing_since=since)
    assert render_text(event, email_config(template="[{{ firing_for }}]")) == f"[{expected}]"


def test_text_table_clips_long_values_and_shows_bytes_as_hex() -> None:
    header, _, row = text_table([{"blob": b"\x00\xff", "text": "y" * 100}]).splitlines()
    assert header.split() == ["blob", "text"] and row.startswith("00ff  ")
    assert row.endswith("y…") and len(row.split()[1]) == 60
    assert text_table([]) == ""
