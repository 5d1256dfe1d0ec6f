"""Shared fixtures: real databases (tests/databases.py) and SMTP/HTTP servers (tests/servers.py)."""

from tests.api_app import *  # noqa: F403
from tests.databases import *  # noqa: F403
from tests.fleet import *  # noqa: F403
from tests.servers import *  # noqa: F403
