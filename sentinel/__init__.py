"""SQL Sentinel: alerts are SQL.

The package root stays light (the CLI imports it on every start); import the parts you use from
their modules: ``sentinel.config``, ``sentinel.executor``, ``sentinel.notifications``, ...
"""

from sentinel.errors import (
    ConfigurationError,
    ExecutionError,
    NotificationError,
    SQLSentinelError,
    ValidationError,
)

__version__ = "0.1.0"

__all__ = [
    "ConfigurationError",
    "ExecutionError",
    "NotificationError",
    "SQLSentinelError",
    "ValidationError",
    "__version__",
]
