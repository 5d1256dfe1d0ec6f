"""Logging set-up for the processes: one line per event, secrets masked at the handler."""

from __future__ import annotations

import logging

from sentinel.redact import redact


class RedactingFilter(logging.Filter):
    """Masks secrets in every record, whatever module logged it (drivers and libraries too)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.msg = redact(record.getMessage())
        record.args = None
        if record.exc_info and record.exc_info[1] is not None:
            record.exc_text = redact(logging.Formatter().formatException(record.exc_info))
            record.exc_info = None
        return True


def configure_logging(level: int | str = logging.WARNING) -> None:
    handler = logging.StreamHandler()
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler.addFilter(RedactingFilter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level)
    # Alembic narrates every migration step at INFO; that is debug detail for an operator.
    if logging.getLevelName(level) != "DEBUG":
        logging.getLogger("alembic").setLevel(logging.WARNING)
