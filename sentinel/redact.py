"""Keeping secrets out of logs, history, errors and notifications.

Every message that leaves the process or reaches a table passes through :func:`redact`. Secrets are
known in two ways: passwords embedded in URLs are recognised by shape, and values that the config
marks as secret (SMTP password, webhook URLs and secrets, header values) are registered with
:func:`register_secret` when the config is loaded.
"""

from __future__ import annotations

import re
import threading
from urllib.parse import urlsplit, urlunsplit

MASK = "***"

# scheme://user:password@host  ->  scheme://user:***@host  (any scheme, any driver suffix)
_URL_PASSWORD = re.compile(r"(?P<prefix>[a-zA-Z][a-zA-Z0-9+.\-]*://[^:/@\s]*:)(?P<pw>[^@\s/]+)@")

_lock = threading.Lock()
_secrets: set[str] = set()
_pattern: re.Pattern[str] | None = None
_stale = False  # secrets were added since the pattern was compiled

# Anything shorter is too likely to be an ordinary word and would make messages unreadable.
_MIN_SECRET_LENGTH = 4


def register_secret(value: str | None) -> None:
    """Remember a value that must never be shown (it is replaced by ``***`` wherever it appears).

    Registering is O(1): the combined pattern is compiled once, at the next :func:`redact`, so a
    config with thousands of webhook URLs loads in linear time."""
    global _stale  # noqa: PLW0603 - one process-wide registry is the point
    if not value or len(value) < _MIN_SECRET_LENGTH:
        return
    with _lock:
        if value not in _secrets:
            _secrets.add(value)
            _stale = True


def _secret_pattern() -> re.Pattern[str] | None:
    global _pattern, _stale  # noqa: PLW0603
    if _stale:
        with _lock:
            if _stale:
                ordered = sorted(_secrets, key=len, reverse=True)
                _pattern = re.compile("|".join(re.escape(s) for s in ordered))
                _stale = False
    return _pattern


def redact(text: object) -> str:
    """Return ``text`` as a string with URL passwords and registered secrets masked."""
    message = str(text)
    message = _URL_PASSWORD.sub(lambda m: f"{m.group('prefix')}{MASK}@", message)
    pattern = _secret_pattern()
    if pattern is not None:
        message = pattern.sub(MASK, message)
    return message


def one_line(exc: BaseException) -> str:
    """A driver or client error as one masked line: its first line, without SQL or tracebacks."""
    original = getattr(exc, "orig", None) or exc
    lines = str(original).strip().splitlines()
    return redact(lines[0] if lines else type(original).__name__)


def safe_url(url: str) -> str:
    """Show where a URL points without anything that could be a credential.

    Database URLs keep user, host and database but lose the password; HTTP URLs keep only scheme,
    host and port, because webhook paths and query strings (Slack's in particular) are tokens.
    """
    try:
        parts = urlsplit(url)
    except ValueError:
        return MASK
    if parts.scheme in ("http", "https"):
        host = parts.hostname or ""
        netloc = f"{host}:{parts.port}" if parts.port else host
        suffix = "/…" if parts.path not in ("", "/") or parts.query else ""
        return urlunsplit((parts.scheme, netloc, "", "", "")) + suffix
    return redact(url)
