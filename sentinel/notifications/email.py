"""Email over SMTP: one ``multipart/alternative`` message, plain text first, HTML second.

TLS is STARTTLS on the submission port and the certificate is verified against the system's trust
store (``SSL_CERT_FILE`` points elsewhere); a server that does not offer STARTTLS is an error, not
a silent downgrade to plain text, because the login would cross the network in the clear.

SMTP says itself what is worth retrying: a 4xx reply (greylisting, a full queue) is temporary, a
5xx is not, and neither is a refused login. A message with a notification id gets a stable
Message-ID, so if a retry duplicates a message the server did accept, mail clients fold the copies.
"""

from __future__ import annotations

import smtplib
import socket
import ssl
from email.message import EmailMessage
from email.utils import formatdate, make_msgid
from typing import TYPE_CHECKING, ClassVar

from sentinel import defaults
from sentinel.enums import Channel
from sentinel.errors import NotificationError
from sentinel.notifications.base import NotificationService
from sentinel.notifications.render import render_html, render_subject, render_text
from sentinel.notifications.retry import RetryPolicy
from sentinel.redact import redact, register_secret

if TYPE_CHECKING:
    from sentinel.config import AlertConfig, NotificationConfig
    from sentinel.models import AlertEvent


def default_from_address() -> str:
    """``sql-sentinel@<this host>``: a sender that says where the mail came from."""
    host = socket.gethostname().strip().rstrip(".")
    if not host or any(c.isspace() or c in "@<>" for c in host):
        host = "localhost"
    return f"sql-sentinel@{host}"


def _reply_text(exc: smtplib.SMTPResponseException) -> str:
    detail = exc.smtp_error
    text = detail.decode("utf-8", "replace") if isinstance(detail, bytes) else str(detail)
    return f"{exc.smtp_code} {' '.join(text.split())}".strip()


class EmailNotificationService(NotificationService):
    """Sends alert emails through one SMTP server (the ``SMTP_*`` settings)."""

    channel: ClassVar[Channel] = Channel.EMAIL

    def __init__(
        self,
        smtp_host: str,
        smtp_port: int = 587,
        smtp_username: str | None = None,
        smtp_password: str | None = None,
        use_tls: bool = True,
        from_address: str | None = None,
        timeout: float = defaults.NOTIFY_TIMEOUT_SECONDS,
        retry_policy: RetryPolicy | None = None,
    ) -> None:
        super().__init__(retry_policy)
        self.smtp_host = smtp_host
        self.smtp_port = smtp_port
        self.smtp_username = smtp_username
        self._smtp_password = smtp_password
        self.use_tls = use_tls
        self.from_address = from_address or default_from_address()
        self.timeout = timeout
        register_secret(smtp_password)

    def __repr__(self) -> str:
        return f"EmailNotificationService({self.smtp_host}:{self.smtp_port}, tls={self.use_tls})"

    def build_message(
        self, event: AlertEvent, config: NotificationConfig, alert: AlertConfig | None = None
    ) -> EmailMessage:
        """The message as it will be sent (also what a dry run can show)."""
        message = EmailMessage()
        message["Subject"] = render_subject(event, config, alert)
        message["From"] = self.from_address
        message["To"] = ", ".join(config.recipients or [])
        message["Date"] = formatdate(localtime=False, usegmt=True)
        domain = self.from_address.rpartition("@")[2] or "localhost"
        if event.notification_id is not None:
            message["Message-ID"] = (
                f"<sql-sentinel.{event.alert_name}.{event.notification_id}@{domain}>"
            )
            message["X-Sentinel-Notification-Id"] = str(event.notification_id)
        else:
            message["Message-ID"] = make_msgid("sql-sentinel", domain=domain)
        message["X-Sentinel-Alert"] = event.alert_name
        message["X-Sentinel-Event"] = event.event
        message.set_content(render_text(event, config, alert))
        message.add_alternative(render_html(event, config, alert), subtype="html")
        return message

    def _send_once(
        self, event: AlertEvent, config: NotificationConfig, alert: AlertConfig | None
    ) -> None:
        message = self.build_message(event, config, alert)
        recipients = list(config.recipients or [])
        where = f"SMTP {self.smtp_host}:{self.smtp_port}"
        try:
            refused = self._transmit(message, recipients, where)
        except NotificationError:
            raise
        except smtplib.SMTPAuthenticationError as exc:
            user = self.smtp_username
            raise self._error(f"{where}: login as {user!r} refused: {_reply_text(exc)}") from None
        except smtplib.SMTPRecipientsRefused as exc:
            replies = exc.recipients.items()
            temporary = all(400 <= code < 500 for code, _ in exc.recipients.values())
            listed = "; ".join(f"{rcpt}: {code}" for rcpt, (code, _) in replies)
            raise self._error(f"{where}: recipients refused: {listed}", temporary) from None
        except smtplib.SMTPResponseException as exc:
            temporary = 400 <= exc.smtp_code < 500
            raise self._error(f"{where}: {_reply_text(exc)}", temporary) from None
        except smtplib.SMTPServerDisconnected as exc:
            raise self._error(f"{where}: server disconnected: {exc}", True) from None
        except smtplib.SMTPException as exc:  # no AUTH offered, SMTPUTF8 unsupported, ...
            raise self._error(f"{where}: {exc}") from None
        except ssl.SSLCertVerificationError as exc:
            raise self._error(f"{where}: TLS certificate rejected: {exc.verify_message}") from None
        except TimeoutError:
            raise self._error(f"{where}: timed out after {self.timeout:g}s", True) from None
        except OSError as exc:  # refused, reset, unreachable, DNS, a broken TLS handshake
            reason = exc.strerror or str(exc) or type(exc).__name__
            raise self._error(f"{where}: {reason}", True) from None
        if refused:
            listed = "; ".join(f"{rcpt}: {code}" for rcpt, (code, _) in refused.items())
            # The others got it, so retrying would duplicate their copy; report, don't retry.
            raise self._error(f"{where}: delivered, but these recipients were refused: {listed}")

    def _transmit(
        self, message: EmailMessage, recipients: list[str], where: str
    ) -> dict[str, tuple[int, bytes]]:
        with smtplib.SMTP(self.smtp_host, self.smtp_port, timeout=self.timeout) as smtp:
            smtp.ehlo()
            if self.use_tls:
                if not smtp.has_extn("starttls"):
                    raise self._error(
                        f"{where}: the server does not offer STARTTLS "
                        "(set SMTP_USE_TLS=false to send without encryption)"
                    )
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if self.smtp_username:
                smtp.login(self.smtp_username, self._smtp_password or "")
            return smtp.send_message(message, self.from_address, recipients)

    @staticmethod
    def _error(message: str, retryable: bool = False) -> NotificationError:
        return NotificationError(redact(message), retryable=retryable)
