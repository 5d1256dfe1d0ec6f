"""The Dramatiq side of SQL Sentinel: broker set-up, actors, and the scheduler's clock loop.

``dramatiq workers`` imports this package: it sets the broker from ``REDIS_URL``/``BROKER_URL``
and declares the actors, which read the alerts from ``SENTINEL_CONFIG``.
"""

import logging

import dramatiq

from sentinel.logs import RedactingFilter
from workers.broker import create_broker

# `dramatiq workers` configures logging before importing this package: mask secrets there too.
for _handler in logging.getLogger().handlers:
    _handler.addFilter(RedactingFilter())

dramatiq.set_broker(create_broker())

from workers import actors  # noqa: E402 - actors bind to the broker set just above

__all__ = ["actors"]
