"""Notification delivery against real SMTP and HTTP servers on loopback (tests/servers.py)."""

from __future__ import annotations

import hashlib
import hmac
import json
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from decimal import Decimal
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import pytest

from sentinel.config import AlertConfig, NotificationConfig
from sentinel.errors import NotificationError
from sentinel.models import AlertEvent, QueryResult
from sentinel.notifications import (
    EmailNotificationService,
    NotificationFactory,
    NotificationService,
    RetryPolicy,
    SlackNotificationService,
    WebhookNotificationService,
)
from sentinel.notifications.http import parse_retry_after
from sentinel.notifications.render import check_template, render_text, webhook_payload
from sentinel.redact import redact
from sentinel.serialization import to_jsonable
from tests.servers import (
    SMTP_PASSWORD,
    SMTP_USERNAME,
    HTTPTestServer,
    SMTPTestServer,
    TLSMailServer,
)

FAST = RetryPolicy(initial_wait=0.01, max_wait=0.05)
WEBHOOK_SECRET = "whsec-0123456789-do-not-leak"
TOKEN_PATH = "/services/T0001/B0002/tok3nSecretValue"
RECIPIENTS = ["oncall@example.com", "data@example.com"]
CONTRACT_FIELDS = {
    "version", "event", "alert_name", "description", "status", "actual_value", "threshold",
    "context", "executed_at", "scheduled_for", "execution_id", "notification_id", "triggered_by",
    "labels", "error", "message", "details", "severity", "owner", "runbook_url", "firing_since",
}  # fmt: skip


def make_event(**changes: Any) -> AlertEvent:
    values: dict[str, Any] = {
        "event": "firing",
        "alert_name": "daily_revenue",
        "status": "ALERT",
        "description": "Revenue below target",
        "actual_value": Decimal("9500.50"),
        "threshold": 10000,
        "context": {"region": "EU", "day": date(2024, 5, 1), "raw": b"\x00\xff"},
        "executed_at": datetime(2024, 5, 1, 9, 0, 3),
        "scheduled_for": datetime(2024, 5, 1, 9, 0),
        "execution_id": 17,
        "notification_id": 99,
        "triggered_by": "CRON",
        "labels": {"team": "data"},
    }
    return AlertEvent(**{**values, **changes})


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def email_service(server: SMTPTestServer, **changes: Any) -> EmailNotificationService:
    settings: dict[str, Any] = {
        "smtp_host": server.host,
        "smtp_port": server.port,
        "smtp_username": SMTP_USERNAME,
        "smtp_password": SMTP_PASSWORD,
        "use_tls": False,
        "from_address": "sentinel@example.com",
        "retry_policy": FAST,
    }
    return EmailNotificationService(**{**settings, **changes})


def email_config(**changes: Any) -> NotificationConfig:
    return NotificationConfig(channel="email", recipients=RECIPIENTS, **changes)


def http_config(channel: str, url: str, **changes: Any) -> NotificationConfig:
    return NotificationConfig(channel=channel, webhook_url=url, **changes)


def body_parts(message: EmailMessage) -> tuple[str, str]:
    plain, html = message.get_body(("plain",)), message.get_body(("html",))
    assert isinstance(plain, EmailMessage) and isinstance(html, EmailMessage)
    return plain.get_content(), html.get_content()


@dataclass
class Channel:
    """One channel wired to its real server, described the same way for all three."""

    name: str
    service: NotificationService
    config: NotificationConfig
    attempts: Callable[[], int]
    delivered: Callable[[], int]
    fail_temporarily: Callable[[int], None]
    fail_permanently: Callable[[], None]


@pytest.fixture(params=["email", "slack", "webhook"])
def channel(request: pytest.FixtureRequest) -> Channel:
    if request.param == "email":
        smtp: SMTPTestServer = request.getfixturevalue("smtp_server")
        return Channel(
            "email",
            email_service(smtp),
            email_config(),
            lambda: smtp.data_attempts,
            lambda: len(smtp.messages),
            lambda n: smtp.reply(*["451 4.3.0 Try again later"] * n),
            lambda: smtp.reply("554 5.6.0 Message rejected"),
        )
    http: HTTPTestServer = request.getfixturevalue("http_server")
    service_class = (
        SlackNotificationService if request.param == "slack" else WebhookNotificationService
    )
    return Channel(
        request.param,
        service_class(retry_policy=FAST),
        http_config(request.param, http.url_for(TOKEN_PATH), secret=WEBHOOK_SECRET),
        lambda: len(http.requests),
        lambda: http.delivered,
        lambda n: http.respond(*[500] * n),
        lambda: http.respond(404, body=b"no_service"),
    )


# ----------------------------------------------------------------------- behaviour of every channel


def test_delivers_exactly_once(channel: Channel) -> None:
    channel.service.deliver(make_event(), channel.config)
    assert (channel.attempts(), channel.delivered()) == (1, 1)


def test_temporary_failures_are_retried_until_delivered_once(channel: Channel) -> None:
    channel.fail_temporarily(3)
    channel.service.deliver(make_event(), channel.config)
    assert (channel.attempts(), channel.delivered()) == (4, 1)


def test_gives_up_after_the_last_attempt_and_says_so(channel: Channel) -> None:
    channel.fail_temporarily(4)
    with pytest.raises(NotificationError) as caught:
        channel.service.deliver(make_event(), channel.config)
    assert caught.value.retryable
    assert str(caught.value).startswith("after 4 attempts: ")
    assert ("451" if channel.name == "email" else "HTTP 500") in str(caught.value)
    assert (channel.attempts(), channel.delivered()) == (4, 0)


def test_permanent_failure_is_not_retried(channel: Channel) -> None:
    channel.fail_permanently()
    with pytest.raises(NotificationError) as caught:
        channel.service.deliver(make_event(), channel.config)
    assert not caught.value.retryable
    assert (channel.attempts(), channel.delivered()) == (1, 0)
    assert ("554" if channel.name == "email" else "HTTP 404") in str(caught.value)
    assert_no_secrets(caught.value)


def test_send_builds_a_firing_event_from_a_query_result(channel: Channel) -> None:
    alert = AlertConfig(
        name="stock", description="Stock low", query="SELECT 1", schedule="0 * * * *"
    )
    result = QueryResult(status="alert", actual_value=3, threshold=5, context={"sku": "A-1"})
    channel.service.send(alert, result, channel.config)
    assert channel.delivered() == 1


@pytest.mark.parametrize("name", ["email", "slack", "webhook"])
def test_unreachable_endpoint_is_retryable_and_shows_no_token(name: str) -> None:
    port, policy = free_port(), RetryPolicy(attempts=2, initial_wait=0.01, max_wait=0.02)
    service: NotificationService
    if name == "email":
        service = EmailNotificationService(
            "127.0.0.1", port, SMTP_USERNAME, SMTP_PASSWORD, use_tls=False, retry_policy=policy
        )
        config = email_config()
    else:
        url = f"http://127.0.0.1:{port}{TOKEN_PATH}?key=abc123"
        service = SlackNotificationService(retry_policy=policy)
        if name == "webhook":
            service = WebhookNotificationService(retry_policy=policy)
        config = http_config(name, url, secret=WEBHOOK_SECRET)
    with pytest.raises(NotificationError) as caught:
        service.deliver(make_event(), config)
    assert caught.value.retryable
    assert "after 2 attempts" in str(caught.value) and f"127.0.0.1:{port}" in str(caught.value)
    assert_no_secrets(caught.value)


def assert_no_secrets(error: BaseException) -> None:
    seen: BaseException | None = error
    while seen is not None:  # the chained causes end up in tracebacks, so they count too
        for secret in (SMTP_PASSWORD, WEBHOOK_SECRET, TOKEN_PATH, "tok3nSecretValue", "abc123"):
            assert secret not in str(seen) and secret not in repr(seen)
        seen = seen.__cause__ or seen.__context__


# ------------------------------------------------------------------------------------------- email


def test_email_has_subject_text_and_html_and_logs_in(smtp_server: SMTPTestServer) -> None:
    email_service(smtp_server).deliver(
        make_event(description="Revenue <below> target"), email_config()
    )
    [mail] = smtp_server.messages
    assert mail.login == SMTP_USERNAME
    assert (mail.mail_from, mail.rcpt_tos) == ("sentinel@example.com", RECIPIENTS)
    assert mail.message["Subject"] == "[ALERT] daily_revenue: Revenue <below> target"
    assert mail.message["To"] == ", ".join(RECIPIENTS)
    assert mail.message["Message-ID"] == "<sql-sentinel.daily_revenue.99@example.com>"
    text, html = body_parts(mail.message)
    assert "Revenue <below> target" in text and "9500.50" in text and "region: EU" in text
    assert "Revenue &lt;below&gt; target" in html and "<below>" not in html


def test_email_custom_subject_and_template(smtp_server: SMTPTestServer) -> None:
    config = email_config(
        subject="{{ alert_name }} in {{ region }}: {{ actual_value }} < {{ threshold }}",
        template="Region {{ context.region }} at {{ actual_value }}{{ not_a_column }}.",
    )
    email_service(smtp_server).deliver(make_event(), config)
    [mail] = smtp_server.messages
    assert mail.message["Subject"] == "daily_revenue in EU: 9500.50 < 10000"
    text, html = body_parts(mail.message)
    assert text.strip() == "Region EU at 9500.50."
    assert "Region EU at 9500.50." in html


def test_email_over_starttls(
    smtp_starttls_server: TLSMailServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SSL_CERT_FILE", str(smtp_starttls_server.certificate))
    email_service(smtp_starttls_server.server, use_tls=True).deliver(make_event(), email_config())
    [mail] = smtp_starttls_server.server.messages
    assert mail.tls and mail.login == SMTP_USERNAME


def test_email_refuses_an_untrusted_certificate(smtp_starttls_server: TLSMailServer) -> None:
    service = email_service(smtp_starttls_server.server, use_tls=True)
    with pytest.raises(NotificationError, match="certificate") as caught:
        service.deliver(make_event(), email_config())
    assert not caught.value.retryable


def test_email_without_starttls_on_offer_fails_clearly(smtp_server: SMTPTestServer) -> None:
    with pytest.raises(NotificationError, match="does not offer STARTTLS") as caught:
        email_service(smtp_server, use_tls=True).deliver(make_event(), email_config())
    assert not caught.value.retryable and smtp_server.data_attempts == 0


def test_email_rejected_login_is_permanent_and_hides_the_password(
    smtp_server: SMTPTestServer,
) -> None:
    wrong = "wrong-pa55word-not-shown"
    with pytest.raises(NotificationError, match="login as 'sentinel' refused") as caught:
        email_service(smtp_server, smtp_password=wrong).deliver(make_event(), email_config())
    assert not caught.value.retryable and wrong not in str(caught.value)
    assert smtp_server.messages == []


# -------------------------------------------------------------------------------------------- HTTP


def test_slack_posts_text_and_blocks(http_server: HTTPTestServer) -> None:
    config = http_config("slack", http_server.url_for(TOKEN_PATH))
    SlackNotificationService(retry_policy=FAST).deliver(make_event(), config)
    [request] = http_server.requests
    body = request.json()
    assert request.path == TOKEN_PATH and request.headers["content-type"].startswith(
        "application/json"
    )
    assert body["text"] == "Alert *daily_revenue* is firing: Revenue below target"
    assert body["blocks"][0] == {
        "type": "header",
        "text": {"type": "plain_text", "text": "Firing: daily_revenue"},
    }
    fields = [f["text"] for block in body["blocks"] for f in block.get("fields", [])]
    assert "*Actual value*\n9500.50" in fields and "*region*\nEU" in fields


def test_webhook_payload_signature_and_headers(http_server: HTTPTestServer) -> None:
    config = http_config(
        "webhook",
        http_server.url_for("/hook?token=abc123"),
        secret=WEBHOOK_SECRET,
        headers={"Authorization": "Bearer xyz-token", "X-Sentinel-Signature": "forged"},
        template="{{ alert_name }} is at {{ actual_value }}",
    )
    WebhookNotificationService(retry_policy=FAST).deliver(make_event(), config)
    [request] = http_server.requests
    payload = request.json()
    assert set(payload) == CONTRACT_FIELDS
    assert payload["version"] == 1 and payload["event"] == "firing" and payload["status"] == "ALERT"
    assert payload["actual_value"] == 9500.5 and payload["threshold"] == 10000
    assert payload["context"] == {"region": "EU", "day": "2024-05-01", "raw": "00ff"}
    assert payload["executed_at"] == "2024-05-01T09:00:03+00:00"
    assert payload["scheduled_for"] == "2024-05-01T09:00:00+00:00"
    assert (payload["execution_id"], payload["notification_id"]) == (17, 99)
    assert payload["labels"] == {"team": "data"} and payload["triggered_by"] == "CRON"
    assert payload["message"] == "daily_revenue is at 9500.50" and payload["error"] is None
    expected = hmac.new(WEBHOOK_SECRET.encode(), request.body, hashlib.sha256).hexdigest()
    assert hmac.compare_digest(request.headers["x-sentinel-signature"], f"sha256={expected}")
    assert request.headers["authorization"] == "Bearer xyz-token"
    assert (
        request.headers["idempotency-key"] == request.headers["x-sentinel-notification-id"] == "99"
    )
    assert request.headers["content-type"] == "application/json"
    assert request.headers["user-agent"].startswith("sql-sentinel/")


def test_webhook_without_secret_or_id_sends_no_signature(http_server: HTTPTestServer) -> None:
    service = WebhookNotificationService(retry_policy=FAST)
    service.deliver(make_event(notification_id=None), http_config("webhook", http_server.url))
    [request] = http_server.requests
    assert (
        "x-sentinel-signature" not in request.headers and "idempotency-key" not in request.headers
    )
    assert request.json()["message"] is None


@pytest.mark.parametrize("name", ["slack", "webhook"])
def test_retry_after_is_honoured(http_server: HTTPTestServer, name: str) -> None:
    http_server.respond(429, retry_after="1")
    service: NotificationService = SlackNotificationService(retry_policy=FAST)
    if name == "webhook":
        service = WebhookNotificationService(retry_policy=FAST)
    service.deliver(make_event(), http_config(name, http_server.url))
    first, second = http_server.requests
    assert (first.status, second.status) == (429, 200)
    assert second.received_at - first.received_at >= 0.9


def test_retry_after_is_capped(http_server: HTTPTestServer) -> None:
    http_server.respond(503, retry_after="3600")
    policy = RetryPolicy(initial_wait=0.01, max_wait=0.05, max_retry_after=0.2)
    started = time.monotonic()
    WebhookNotificationService(retry_policy=policy).deliver(
        make_event(), http_config("webhook", http_server.url)
    )
    assert time.monotonic() - started < 10 and http_server.delivered == 1


def test_parse_retry_after_takes_seconds_and_http_dates() -> None:
    now = datetime(2024, 5, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("120") == 120.0
    assert parse_retry_after(format_datetime(now + timedelta(seconds=30), usegmt=True), now) == 30.0
    assert parse_retry_after(format_datetime(now - timedelta(hours=1), usegmt=True), now) == 0.0
    assert parse_retry_after("soon") is None and parse_retry_after(None) is None


def test_a_slow_endpoint_times_out_and_is_retried(http_server: HTTPTestServer) -> None:
    http_server.respond(200, delay=1.0)
    service = WebhookNotificationService(timeout=0.2, retry_policy=FAST)
    service.deliver(make_event(), http_config("webhook", http_server.url))
    assert len(http_server.requests) == 2


def test_redirects_are_not_followed(http_server: HTTPTestServer) -> None:
    http_server.respond(301)
    with pytest.raises(NotificationError, match="HTTP 301") as caught:
        WebhookNotificationService(retry_policy=FAST).deliver(
            make_event(), http_config("webhook", http_server.url)
        )
    assert not caught.value.retryable and len(http_server.requests) == 1


# -------------------------------------------------------------------------------------- templates


@pytest.mark.parametrize(
    "source",
    [
        "{{ ''.__class__.__mro__ }}",
        "{{ ''.__class__.__mro__[1].__subclasses__() }}",
        "{{ cycler.__init__.__globals__ }}",
        "{{ context.__class__.__base__.__subclasses__() }}",
    ],
)
def test_sandbox_exposes_no_python_internals(source: str) -> None:
    rendered = render_text(make_event(), email_config(template=f"start {source} end"))
    # The unsafe attribute renders as nothing, or the sandbox refuses and the default is used.
    assert rendered == "start  end" or "is unsafe; the default was used" in rendered
    assert "<class" not in rendered and "__builtins__" not in rendered


def test_named_variables_win_over_context_columns() -> None:
    event = make_event(context={"alert_name": "spoofed", "status": "OK", "region": "EU"})
    config = email_config(
        template="{{ alert_name }} {{ status }} {{ region }} {{ context.status }}"
    )
    assert render_text(event, config) == "daily_revenue ALERT EU OK"


def test_a_template_failing_at_run_time_falls_back_to_the_default() -> None:
    text = render_text(make_event(), email_config(template="{{ 1 / 0 }}"))
    assert text.startswith("ALERT: daily_revenue is firing.")
    assert "could not be rendered: division by zero" in text


def test_check_template_reports_syntax_errors_on_one_line() -> None:
    assert check_template("Fine {{ alert_name }} {{ missing.anything }}") is None
    for broken in ("{{ alert_name", "{% if status %}no end", "{{ a b }}"):
        problem = check_template(broken)
        assert problem is not None and problem.startswith("line 1: ") and "\n" not in problem


def test_json_safe_values() -> None:
    moment = datetime(2024, 5, 1, 9, 30, tzinfo=UTC)
    values = {
        "decimal": Decimal("1.25"),
        "nan": Decimal("NaN"),
        "inf": float("inf"),
        "when": moment,
        "day": date(2024, 5, 1),
        "bytes": b"\x01\x02",
        "nested": [{"n": Decimal("2")}, (1, 2)],
        "other": Path("/tmp/x"),
    }
    safe = to_jsonable(values)
    assert safe == {
        "decimal": 1.25,
        "nan": "NaN",
        "inf": "inf",
        "when": "2024-05-01T09:30:00+00:00",
        "day": "2024-05-01",
        "bytes": "0102",
        "nested": [{"n": 2.0}, [1, 2]],
        "other": "/tmp/x",
    }
    json.dumps(webhook_payload(make_event(actual_value=Decimal("Infinity"))), allow_nan=False)


# ---------------------------------------------------------------------------------------- factory


def test_factory_reads_the_smtp_environment(
    smtp_server: SMTPTestServer, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("SMTP_HOST", smtp_server.host)
    monkeypatch.setenv("SMTP_PORT", str(smtp_server.port))
    monkeypatch.setenv("SMTP_USERNAME", SMTP_USERNAME)
    monkeypatch.setenv("SMTP_PASSWORD", SMTP_PASSWORD)
    monkeypatch.setenv("SMTP_USE_TLS", "no")
    monkeypatch.setenv("SMTP_FROM_ADDRESS", "alerts@example.com")
    factory = NotificationFactory(retry_policy=FAST)
    assert factory.missing_settings("email") is None
    service = factory.create_service("email")
    assert service is factory.create_service("email")
    service.deliver(make_event(), email_config())
    [mail] = smtp_server.messages
    assert mail.mail_from == "alerts@example.com" and mail.login == SMTP_USERNAME
    assert redact(f"password={SMTP_PASSWORD}") == "password=***"


def test_factory_explains_what_is_missing(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("SMTP_HOST", "SMTP_PORT", "SMTP_USE_TLS", "SMTP_FROM_ADDRESS"):
        monkeypatch.delenv(name, raising=False)
    factory = NotificationFactory()
    missing = "email channel: no SMTP host configured (set SMTP_HOST)"
    assert factory.missing_settings("email") == missing
    assert factory.missing_settings("slack") is None
    with pytest.raises(NotificationError) as caught:
        factory.create_service("email")
    assert str(caught.value) == missing and not caught.value.retryable
    assert isinstance(factory.create_service("webhook"), WebhookNotificationService)
    with pytest.raises(NotificationError, match="unknown notification channel 'pager'"):
        factory.create_service("pager")
    monkeypatch.setenv("SMTP_PORT", "smtp")
    assert "SMTP_PORT" in (NotificationFactory(smtp_host="mail").missing_settings("email") or "")


def test_default_sender_and_arguments_over_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SMTP_HOST", "env-host")
    monkeypatch.delenv("SMTP_FROM_ADDRESS", raising=False)
    service = NotificationFactory(smtp_host="arg-host", smtp_port=2525).create_service("email")
    assert isinstance(service, EmailNotificationService)
    assert (service.smtp_host, service.smtp_port, service.use_tls) == ("arg-host", 2525, True)
    assert service.from_address.startswith("sql-sentinel@")


def test_importing_the_package_loads_no_delivery_libraries() -> None:
    code = (
        "import sys, sentinel.notifications;"
        "print([m for m in ('httpx', 'smtplib', 'jinja2', 'tenacity') if m in sys.modules])"
    )
    root = Path(__file__).resolve().parents[1]
    output = subprocess.run(
        [sys.executable, "-c", code], cwd=root, capture_output=True, text=True, check=True
    )
    assert output.stdout.strip() == "[]"
