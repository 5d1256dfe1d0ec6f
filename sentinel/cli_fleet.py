"""``sqlsentinel scheduler`` and ``sqlsentinel enqueue``: the commands that run on a schedule or
through the broker."""

from __future__ import annotations

import sys

import click

from sentinel.cli import (
    EXIT_ALERT,
    EXIT_OK,
    _deployment,
    cli,
    config_argument,
    json_option,
    state_db_option,
)
from sentinel.errors import SQLSentinelError, UsageError


@cli.command()
@config_argument
@state_db_option
def scheduler(config: str, state_db: str | None) -> None:
    """The clock process: runs every alert on its schedule until stopped.

    With REDIS_URL/BROKER_URL set, due runs are enqueued for Dramatiq workers (several replicas may
    run; one is active). Without a broker they run in this process.
    """
    import signal
    import threading

    from sentinel.fleet import load_fleet

    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    fleet = load_fleet()
    if fleet is not None:
        fleet.run_scheduler(config, stop, state_db)
        return
    from sentinel.scheduling.inprocess import run_embedded

    deployment = _deployment(config, state_db, warn=True)
    click.echo(f"scheduler: {len(deployment.config.alerts)} alerts, running in this process")
    try:
        run_embedded(deployment, stop)
    finally:
        deployment.close()


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
    from sentinel import report
    from sentinel.fleet import load_fleet

    fleet = load_fleet()
    if fleet is None:
        raise UsageError("enqueue needs a broker: set REDIS_URL or BROKER_URL (or use 'run')")
    deployment = _deployment(config, state_db)
    names = [a.name for a in deployment.select_alerts(alert_name)]
    ids = fleet.enqueue(config, names, "CLI")
    if not wait:
        for name, message_id in zip(names, ids, strict=True):
            click.echo(f"{message_id}  {name}")
        return
    try:
        records = deployment.wait_for_messages(ids, timeout)
    finally:
        deployment.close()
    if as_json:
        from dataclasses import asdict

        click.echo(report.to_json([asdict(r) for r in records]))
    else:
        click.echo(report.history_rows(records))
    if len(records) < len(ids):
        raise SQLSentinelError(f"{len(ids) - len(records)} runs did not finish within {timeout:g}s")
    fired = any(r.status in ("failure", "error") for r in records)
    sys.exit(EXIT_ALERT if fired else EXIT_OK)
