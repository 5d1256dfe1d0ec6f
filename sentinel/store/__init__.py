"""The state database: tables, migrations, state, history and the notification outbox.

This package is the only code that talks to the state tables.
"""

from sentinel.store.engine import create_state_engine
from sentinel.store.history import ExecutionHistory
from sentinel.store.schema import SchemaManager, ensure_schema
from sentinel.store.state import StateManager

__all__ = [
    "ExecutionHistory",
    "SchemaManager",
    "StateManager",
    "create_state_engine",
    "ensure_schema",
]
