"""The worker's log lines leave in batches while it runs, and every one of them before it ends.

:func:`sentinel.logs.batch_stream_handlers` gathers a worker process's INFO lines (one per run)
into one write to Dramatiq's log pipe every few tens of milliseconds. When the worker shuts down,
this drains what is gathered and lets every later line (the shutdown's own) through at once,
before Dramatiq closes the pipe.
"""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import Middleware

from sentinel.logs import BatchingHandler


class FlushLogs(Middleware):
    def __init__(self, handlers: list[BatchingHandler]) -> None:
        self.handlers = handlers

    def before_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        for handler in self.handlers:
            handler.flush()

    def after_worker_shutdown(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        for handler in self.handlers:
            handler.stop_batching()
