"""Running ``sqlsentinel`` as a user does: a process of its own, its output captured.

The environment is this process's without SMTP and state-database settings (a test says which
it wants), plus what the test gives, a fleet harness's environment included.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path


def sqlsentinel(
    *args: str,
    env: Mapping[str, str] | None = None,
    cwd: Path | None = None,
    timeout: float = 60,
) -> subprocess.CompletedProcess[str]:
    full_env = {k: v for k, v in os.environ.items() if not k.startswith(("SMTP_", "STATE_DB"))}
    full_env.update(env or {})
    return subprocess.run(
        [sys.executable, "-m", "sentinel", *args],
        capture_output=True,
        text=True,
        env=full_env,
        cwd=cwd,
        timeout=timeout,
        check=False,
    )
