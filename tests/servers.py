"""Real servers on loopback for the notification tests: an SMTP server and an HTTP server.

Both record everything they receive and can be told to fail on purpose, so retries, back-off and
error classification are tested against real protocol exchanges, not mocks.
"""

from __future__ import annotations

import asyncio
import email.policy
import json
import shutil
import ssl
import subprocess
import threading
import time
from collections import deque
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from email.parser import BytesParser
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, cast

import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP, AuthResult, Envelope, LoginPassword, Session

__all__ = ["http_server", "smtp_server", "smtp_starttls_server"]

LOOPBACK = "127.0.0.1"
SMTP_USERNAME = "sentinel"
SMTP_PASSWORD = "smtp-pa55word-do-not-leak"


# --------------------------------------------------------------------------------------------- SMTP


@dataclass(frozen=True)
class ReceivedMail:
    """One message the SMTP server accepted."""

    mail_from: str
    rcpt_tos: list[str]
    message: EmailMessage
    login: str | None  # who authenticated on the session that sent it
    tls: bool  # whether the session had switched to TLS


class SMTPTestServer:
    """aiosmtpd on a free loopback port, requiring AUTH LOGIN/PLAIN with fixed credentials.

    ``reply("451 4.3.0 Try again later", ...)`` makes the next DATA commands fail with those
    replies, in order; after the script runs out every message is accepted.
    """

    def __init__(self, tls_context: ssl.SSLContext | None = None) -> None:
        self.host = LOOPBACK
        self.port = 0
        self.messages: list[ReceivedMail] = []
        self.data_attempts = 0
        self._script: deque[str] = deque()
        self._lock = threading.Lock()
        self._controller = _PortReportingController(
            self,
            hostname=LOOPBACK,
            port=0,
            authenticator=self._authenticate,
            auth_require_tls=tls_context is not None,
            tls_context=tls_context,
            require_starttls=tls_context is not None,
        )

    def start(self) -> None:
        self._controller.start()
        self.port = self._controller.port

    def stop(self) -> None:
        self._controller.stop()

    def reply(self, *replies: str) -> None:
        with self._lock:
            self._script.extend(replies)

    def _authenticate(
        self, server: SMTP, session: Session, envelope: Envelope, mechanism: str, auth_data: Any
    ) -> AuthResult:
        ok = (
            isinstance(auth_data, LoginPassword)
            and auth_data.login == SMTP_USERNAME.encode()
            and auth_data.password == SMTP_PASSWORD.encode()
        )
        # handled=False: let aiosmtpd send the 535 reply for a failed login.
        return AuthResult(success=ok, handled=False, auth_data=auth_data if ok else None)

    async def handle_DATA(self, server: SMTP, session: Session, envelope: Envelope) -> str:
        with self._lock:
            self.data_attempts += 1
            if self._script:
                return self._script.popleft()
        raw = envelope.original_content or envelope.content or b""
        message = BytesParser(policy=email.policy.default).parsebytes(cast(bytes, raw))
        login = session.auth_data.login if isinstance(session.auth_data, LoginPassword) else None
        mail = ReceivedMail(
            mail_from=envelope.mail_from or "",
            rcpt_tos=list(envelope.rcpt_tos),
            message=message,
            login=login.decode() if isinstance(login, bytes) else None,
            tls=session.ssl is not None,
        )
        with self._lock:
            self.messages.append(mail)
        return "250 Message accepted for delivery"


class _PortReportingController(Controller):
    """Binds port 0 and learns the real port before aiosmtpd's start-up probe connects to it."""

    def _trigger_server(self) -> None:
        listening = cast(asyncio.Server, self.server)
        self.port = listening.sockets[0].getsockname()[1]
        super()._trigger_server()  # type: ignore[no-untyped-call]


def _self_signed_certificate(directory: Path) -> tuple[Path, Path]:
    certificate, key = directory / "cert.pem", directory / "key.pem"
    subprocess.run(
        [
            "openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1",
            "-subj", "/CN=localhost", "-addext", f"subjectAltName=IP:{LOOPBACK}",
            "-keyout", str(key), "-out", str(certificate),
        ],
        check=True,
        capture_output=True,
    )  # fmt: skip
    return certificate, key


@pytest.fixture
def smtp_server() -> Iterator[SMTPTestServer]:
    """A plain-text SMTP server (AUTH allowed without TLS); send to it with ``use_tls=False``."""
    server = SMTPTestServer()
    server.start()
    yield server
    server.stop()


@dataclass
class TLSMailServer:
    server: SMTPTestServer
    certificate: Path  # trust this (``SSL_CERT_FILE``) to verify the server


@pytest.fixture
def smtp_starttls_server(tmp_path: Path) -> Iterator[TLSMailServer]:
    """An SMTP server that requires STARTTLS, with a self-signed certificate for 127.0.0.1."""
    if shutil.which("openssl") is None:
        pytest.skip("openssl is needed to make a test certificate")
    certificate, key = _self_signed_certificate(tmp_path)
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificate, key)
    server = SMTPTestServer(tls_context=context)
    server.start()
    yield TLSMailServer(server, certificate)
    server.stop()


# --------------------------------------------------------------------------------------------- HTTP


@dataclass(frozen=True)
class RecordedRequest:
    """One request the HTTP server received (header names lower-cased) and how it answered."""

    method: str
    path: str
    headers: dict[str, str]
    body: bytes
    received_at: float  # time.monotonic(), to measure the waits between attempts
    status: int

    def json(self) -> Any:
        return json.loads(self.body)


@dataclass(frozen=True)
class ScriptedResponse:
    status: int
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    delay: float = 0.0


class HTTPTestServer:
    """``ThreadingHTTPServer`` on a free loopback port that answers from a script.

    ``respond(500, 500, 200)`` queues responses for the next requests; once the script is used up
    every request gets 200 ``ok``.
    """

    def __init__(self) -> None:
        self.requests: list[RecordedRequest] = []
        self._script: deque[ScriptedResponse] = deque()
        self._down_until = 0.0
        self._down_status = 503
        self._lock = threading.Lock()
        self._httpd = _RecordingHTTPServer((LOOPBACK, 0), _Handler, self)
        self.port = self._httpd.server_address[1]
        self.url = f"http://{LOOPBACK}:{self.port}"
        # A short poll interval keeps shutdown() (once per test) from costing half a second.
        self._thread = threading.Thread(
            target=self._httpd.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )

    def url_for(self, path: str) -> str:
        return f"{self.url}{path}"

    def respond(
        self,
        *statuses: int,
        retry_after: str | None = None,
        delay: float = 0.0,
        body: bytes = b"",
    ) -> None:
        headers = {"Retry-After": retry_after} if retry_after is not None else {}
        with self._lock:
            self._script.extend(ScriptedResponse(s, headers, body, delay) for s in statuses)

    def start(self) -> None:
        self._thread.start()

    def stop(self) -> None:
        self._httpd.shutdown()
        self._httpd.server_close()
        self._thread.join()

    @property
    def delivered(self) -> int:
        """How many requests were answered with a 2xx."""
        return sum(1 for r in self.requests if 200 <= r.status < 300)

    def down_for(self, seconds: float, status: int = 503) -> None:
        """Answer every request with ``status`` for the next ``seconds``: an outage."""
        with self._lock:
            self._down_until = time.monotonic() + seconds
            self._down_status = status

    def _answer(self, handler: BaseHTTPRequestHandler, body: bytes) -> ScriptedResponse:
        with self._lock:
            if time.monotonic() < self._down_until:
                response = ScriptedResponse(self._down_status)
            elif self._script:
                response = self._script.popleft()
            else:
                response = ScriptedResponse(200, body=b"ok")
            self.requests.append(
                RecordedRequest(
                    method=handler.command,
                    path=handler.path,
                    headers={k.lower(): v for k, v in handler.headers.items()},
                    body=body,
                    received_at=time.monotonic(),
                    status=response.status,
                )
            )
        return response


class _RecordingHTTPServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(
        self, address: tuple[str, int], handler: type[BaseHTTPRequestHandler], owner: HTTPTestServer
    ) -> None:
        super().__init__(address, handler)
        self.owner = owner

    def handle_error(self, request: Any, client_address: Any) -> None:
        # A client that gave up (a timeout test) leaves a broken pipe behind; that is expected.
        pass


class _Handler(BaseHTTPRequestHandler):
    def do_POST(self) -> None:
        length = int(self.headers.get("Content-Length") or 0)
        body = self.rfile.read(length) if length else b""
        response = cast(_RecordingHTTPServer, self.server).owner._answer(self, body)
        if response.delay:
            time.sleep(response.delay)
        self.send_response(response.status)
        for name, value in response.headers.items():
            self.send_header(name, value)
        self.send_header("Content-Length", str(len(response.body)))
        self.end_headers()
        self.wfile.write(response.body)

    def log_message(self, format: str, *args: Any) -> None:
        pass  # keep test output clean


@pytest.fixture
def http_server() -> Iterator[HTTPTestServer]:
    server = HTTPTestServer()
    server.start()
    yield server
    server.stop()
