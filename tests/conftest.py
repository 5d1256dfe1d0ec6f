"""Shared fixtures, one module per kind of real component (each module says which it starts).

Listed so that a module comes after the ones it imports: pytest rewrites a plugin's asserts only
if it registers the module before anything imports it.
"""

from __future__ import annotations

import os
import shutil
import tempfile

import pytest

pytest_plugins = ["tests.servers", "tests.databases", "tests.fleet", "tests.api_app"]

_CACHE_HOME = "SENTINEL_TEST_CACHE_HOME"


def pytest_configure(config: pytest.Config) -> None:
    """The suite's own cache directory (guard verdicts, parsed configs), inherited by every
    process a test starts: a run never reads what an earlier run, or the developer's own
    ``sqlsentinel``, left in ``~/.cache``."""
    directory = tempfile.mkdtemp(prefix="sentinel-test-cache-")
    os.environ[_CACHE_HOME] = os.environ["XDG_CACHE_HOME"] = directory


def pytest_unconfigure(config: pytest.Config) -> None:
    directory = os.environ.pop(_CACHE_HOME, None)
    if directory:
        shutil.rmtree(directory, ignore_errors=True)
