"""``sqlsentinel enqueue``: manual runs sent through the broker to the workers."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from sentinel.cli.group import (
    EXIT_ALERT,
    EXIT_OK,
    cli,
    config_argument,
    json_option,
    pass_deployment,
    state_db_option,
)
from sentinel.enums import NEEDS_ATTENTION
from sentinel.errors import SQLSentinelError, UsageError

if TYPE_CHECKING:
    from sentinel.deployment import Deployment
    from sentinel.fleet import Fleet


@cli.command()
@config_argument
@click.option("--alert", "alert_name", metavar="NAME", help="Only this alert.")
@click.option("--wait", "wait", is_flag=True, help="Wait for the outcomes and print them.")
@click.option("--timeout", default=300.0, show_default=True, help="Seconds --wait waits.")
@state_db_option
@json_option
def enqueue(
    config: str,
    alert_name: str | None,
    wait: bool,
    timeout: float,
    state_db: str | None,
    as_json: bool,
) -> None:
    """Send manual runs through the broker to the workers; prints the message ids."""
    from sentinel.fleet import load_fleet

    fleet = load_fleet()
    if fleet is None:
        raise UsageError("enqueue needs a broker: set REDIS_URL or BROKER_URL (or use 'run')")
    _enqueue(
        config=config,
        state_db=state_db,
        fleet=fleet,
        config_path=config,  # what the workers load: the file as given
        alert_name=alert_name,
        wait=wait,
        timeout=timeout,
        as_json=as_json,
    )


@pass_deployment
def _enqueue(
    deployment: Deployment,
    *,
    fleet: Fleet,
    config_path: str,
    alert_name: str | None,
    wait: bool,
    timeout: float,
    as_json: bool,
) -> None:
    from sentinel import report

    names = [a.name for a in deployment.select_alerts(alert_name)]
    ids = fleet.enqueue(config_path, names, "CLI")
    if not wait:
        for name, message_id in zip(names, ids, strict=True):
            click.echo(f"{message_id}  {name}")
        return
    records = deployment.wait_for_messages(ids, timeout)
    if as_json:
        from dataclasses import asdict

        click.echo(report.to_json([asdict(r) for r in records]))
    else:
        click.echo(report.history_rows(records))
    if len(records) < len(ids):
        raise SQLSentinelError(f"{len(ids) - len(records)} runs did not finish within {timeout:g}s")
    fired = any(r.status in NEEDS_ATTENTION for r in records)
    sys.exit(EXIT_ALERT if fired else EXIT_OK)
