"""What ``dramatiq workers.app`` loads: the broker from the environment, and the actors on it."""

import logging

from sentinel.logs import RedactingFilter
from workers import actors

# `dramatiq workers.app` configures logging before importing this module: mask secrets there too.
for _handler in logging.getLogger().handlers:
    _handler.addFilter(RedactingFilter())

__all__ = ["actors"]
