"""Logging set-up for the processes: one line per event, secrets masked at the handler."""

from __future__ import annotations

import contextlib
import logging
import os
import threading
import time
from typing import Any

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


class BatchingHandler(logging.Handler):
    """One write per batch of lines instead of one per line, for a worker's one line per run.

    A Dramatiq worker process logs into a pipe that the main process reads and copies to its
    stderr line by line: one ``send``, one ``recv`` and one ``write`` for each run's line, several
    per cent of a busy fleet's CPU. Here the lines of ``target`` (formatted and filtered as it
    would) are gathered and handed to its stream together at most ``interval`` seconds later,
    still one line per event and in order; a warning or an error goes out at once, with
    everything before it, and :meth:`stop_batching` (at worker shutdown) drains and passes
    every later line straight through.
    """

    def __init__(self, target: logging.StreamHandler[Any], interval: float = 0.05) -> None:
        super().__init__(target.level)
        self.target = target
        self.interval = interval
        self._lines: list[str] = []
        self._since = 0.0  # when the oldest line waiting was logged
        self._batching = True
        self._wake = threading.Event()
        self._start()
        os.register_at_fork(after_in_child=self._start)  # a thread does not survive a fork

    def _start(self) -> None:
        threading.Thread(target=self._flusher, name="log-batcher", daemon=True).start()

    def format(self, record: logging.LogRecord) -> str:
        return self.target.format(record)

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record) + self.target.terminator
        except Exception:
            self.handleError(record)
            return
        now = time.monotonic()
        with self.lock:  # type: ignore[union-attr]
            if not self._lines:
                self._since = now
            self._lines.append(line)
            urgent = record.levelno >= logging.WARNING or not self._batching
            # Never later than ten intervals, even if the flusher thread is held up or gone.
            urgent = urgent or now - self._since > 10 * self.interval
        if urgent:
            self.flush()
        else:
            self._wake.set()

    def flush(self) -> None:
        with self.lock:  # type: ignore[union-attr]
            text, self._lines = "".join(self._lines), []
        if text:
            # A pipe closed at exit leaves nothing to tell and nobody to tell it to.
            with self.target.lock, contextlib.suppress(OSError, ValueError):  # type: ignore[union-attr]
                self.target.stream.write(text)
                self.target.flush()

    def stop_batching(self) -> None:
        self._batching = False
        self.flush()

    def close(self) -> None:
        self.stop_batching()
        super().close()

    def _flusher(self) -> None:
        while True:
            self._wake.wait()
            time.sleep(self.interval)  # let the lines of the next runs join this write
            self._wake.clear()
            self.flush()


def batch_stream_handlers(root: logging.Logger | None = None) -> list[BatchingHandler]:
    """Put each stream handler of ``root`` (default: the root logger) behind a
    :class:`BatchingHandler`, with its filters; returns the batching handlers."""
    root = root or logging.getLogger()
    batching = []
    for index, handler in enumerate(list(root.handlers)):
        if type(handler) is not logging.StreamHandler:
            continue
        wrapper = BatchingHandler(handler)
        for found in handler.filters:
            wrapper.addFilter(found)
        root.handlers[index] = wrapper
        batching.append(wrapper)
    return batching
