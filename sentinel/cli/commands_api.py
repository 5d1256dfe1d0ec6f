"""``sqlsentinel api``: the REST API and status page, served by uvicorn."""

from __future__ import annotations

import ipaddress
import os
from typing import TYPE_CHECKING

import click

from sentinel.cli.group import cli, config_argument, pass_deployment, state_db_option
from sentinel.errors import UsageError

if TYPE_CHECKING:
    from sentinel.deployment import Deployment

#: Requests that may use the databases at once (each holds at most one connection per database).
API_DATABASE_THREADS = 5


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


@cli.command()
@config_argument
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to bind.")
@click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
@state_db_option
def api(config: str, host: str, port: int, state_db: str | None) -> None:
    """Serve the REST API (/api/v1, /docs) and the status page (/).

    Mutating endpoints and history need SENTINEL_API_TOKEN as a bearer token; without a token
    the server only binds loopback addresses.
    """
    if not os.environ.get("SENTINEL_API_TOKEN") and not is_loopback(host):
        raise UsageError(
            f"refusing to serve on {host} without SENTINEL_API_TOKEN (set one, or bind 127.0.0.1)"
        )
    try:  # a missing extra is said before the alerts file is read; _serve uses these imports
        import uvicorn  # noqa: F401

        from sentinel.api import create_app  # noqa: F401
    except ImportError as exc:
        raise UsageError(
            f"the API needs its extra: pip install 'sql-sentinel[api]' ({exc.name} is missing)"
        ) from None
    _serve(config=config, state_db=state_db, host=host, port=port)


# Requests run in a thread pool; this many of them query at once, the rest wait for a connection
# (the API's share of the connection budget in the README).
@pass_deployment(warn=True, threads=API_DATABASE_THREADS)
def _serve(deployment: Deployment, *, host: str, port: int) -> None:
    import uvicorn

    from sentinel.api import create_app

    uvicorn.run(create_app(deployment), host=host, port=port, log_level="info", access_log=False)
