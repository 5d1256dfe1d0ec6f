"""The ``sqlsentinel`` command: parse arguments, call the library, print. No logic of its own.

``group`` holds what the commands share; each ``commands_*`` module registers one family of
commands on its group. This module imports them for that side effect (none of them imports it
back), so ``sentinel.cli:main``, the console script, sees every command.
"""

from sentinel.cli import (  # noqa: F401  (imported to register their commands)
    commands_api,
    commands_fleet,
    commands_runs,
    commands_schedule,
    commands_silences,
)
from sentinel.cli.group import cli, main

__all__ = ["cli", "main"]
