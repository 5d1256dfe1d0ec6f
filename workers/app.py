"""What ``dramatiq workers.app`` loads: the broker from the environment, and the actors on it."""

import logging

from sentinel.logs import RedactingFilter, batch_stream_handlers
from workers import actors
from workers.middleware.log_batching import FlushLogs

# `dramatiq workers.app` configures logging before importing this module: mask secrets there too,
# and send the lines (one per run) to Dramatiq's log pipe in batches, not one write each.
for _handler in logging.getLogger().handlers:
    _handler.addFilter(RedactingFilter())
actors.broker.add_middleware(FlushLogs(batch_stream_handlers()))

__all__ = ["actors"]
