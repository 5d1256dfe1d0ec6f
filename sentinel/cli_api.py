"""``sqlsentinel api``: the REST API and status page, served by uvicorn."""

from __future__ import annotations

import ipaddress
import os

import click

from sentinel.cli import _deployment, cli, config_argument, state_db_option
from sentinel.errors import UsageError

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
    try:
        import uvicorn

        from sentinel.api import create_app
    except ImportError as exc:
        raise UsageError(
            f"the API needs its extra: pip install 'sql-sentinel[api]' ({exc.name} is missing)"
        ) from None

    # Requests run in a thread pool; this many of them query at once, the rest wait for a
    # connection (the API's share of the connection budget in the README).
    deployment = _deployment(config, state_db, warn=True, threads=API_DATABASE_THREADS)
    try:
        uvicorn.run(
            create_app(deployment), host=host, port=port, log_level="info", access_log=False
        )
    finally:
        deployment.close()
