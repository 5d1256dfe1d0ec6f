"""``sqlsentinel init``, ``validate``, ``run``, ``history`` and ``status``: running alerts in this
process and reading what the state database says about them."""

from __future__ import annotations

import sys
from typing import TYPE_CHECKING

import click

from sentinel import defaults
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

if TYPE_CHECKING:
    from sentinel.deployment import Deployment


@cli.command()
@click.option("--state-db", "state_db", envvar="STATE_DB_URL", metavar="URL", required=True)
def init(state_db: str) -> None:
    """Create or upgrade the state tables."""
    from sentinel.redact import safe_url
    from sentinel.store import create_state_engine
    from sentinel.store.schema import upgrade

    engine = create_state_engine(state_db)
    try:
        revision = upgrade(engine)
    finally:
        engine.dispose()
    click.echo(f"state database ready at {safe_url(state_db)} (schema revision {revision})")


@cli.command()
@config_argument
@pass_deployment(warn=True)
def validate(deployment: Deployment) -> None:
    """Check a config file: every problem is reported at once."""
    from sentinel.redact import safe_url

    cfg = deployment.config
    enabled = sum(1 for a in cfg.alerts if a.enabled)
    click.echo(
        f"{cfg.path}: {len(cfg.alerts)} alerts valid ({enabled} enabled), "
        f"database {safe_url(cfg.database.url)}"
    )


@cli.command()
@config_argument
@click.option("--alert", "alert_name", metavar="NAME", help="Run only this alert.")
@click.option("--dry-run", is_flag=True, help="Run the queries; write and send nothing.")
@state_db_option
@json_option
@pass_deployment(warn=True)
def run(deployment: Deployment, alert_name: str | None, dry_run: bool, as_json: bool) -> None:
    """Run alerts now, in this process. Exits 1 if any alert fired or errored."""
    from sentinel import report

    results = deployment.run(alert_name, dry_run=dry_run)
    if as_json:
        click.echo(report.to_json([r.model_dump(mode="json") for r in results]))
    else:
        click.echo(report.run_results(results))
        click.echo(report.run_summary(results))
    fired = any(r.status in NEEDS_ATTENTION for r in results if not r.duplicate)
    sys.exit(EXIT_ALERT if fired else EXIT_OK)


@cli.command()
@config_argument
@click.option("--alert", "alert_name", metavar="NAME", help="Only this alert.")
@click.option(
    "--limit", default=defaults.HISTORY_LIMIT, show_default=True, type=click.IntRange(1, 100_000)
)
@state_db_option
@json_option
@pass_deployment
def history(deployment: Deployment, alert_name: str | None, limit: int, as_json: bool) -> None:
    """Show recent executions, their notifications, and statistics."""
    from dataclasses import asdict

    from sentinel import report

    records, stats = deployment.history(alert_name, limit)
    if as_json:
        click.echo(
            report.to_json({"executions": [asdict(r) for r in records], "statistics": stats})
        )
        return
    click.echo(report.history_rows(records) if records else "no executions recorded yet")
    click.echo("")
    click.echo(report.statistics(stats))


@cli.command()
@config_argument
@state_db_option
@json_option
@pass_deployment
def status(deployment: Deployment, as_json: bool) -> None:
    """Show each alert's current state, last run and next run."""
    from dataclasses import asdict

    from sentinel import report
    from sentinel.health import check_dependencies

    health = check_dependencies(deployment)
    for check in health.checks:
        # Said on stderr, so --json output stays one document; an unreachable state database
        # ends the command with its own one-line error below.
        if not check.ok and check.name != "state_db":
            since = f" since {check.down_since:%H:%M:%S}Z" if check.down_since else ""
            click.echo(f"warning: {check.name} unreachable{since}: {check.error}", err=True)
    rows = deployment.status()
    if as_json:
        click.echo(
            report.to_json(
                [
                    {
                        "alert": r.alert.name,
                        "enabled": r.alert.enabled,
                        "severity": r.alert.severity,
                        "labels": r.alert.labels,
                        "owner": r.alert.owner,
                        "muted": r.muted,
                        "state": asdict(r.state),
                        "next_run": r.next_run,
                        "last_run": asdict(r.last_run) if r.last_run else None,
                    }
                    for r in rows
                ]
            )
        )
        return
    click.echo(report.status_rows(rows, deployment.clock()))
    click.echo(report.dependencies(health))
