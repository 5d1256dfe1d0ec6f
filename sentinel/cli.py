"""The ``sqlsentinel`` command: parse arguments, call the library, print. No logic of its own.

Start-up time matters (people run ``--help`` and cron runs ``run`` every minute), so this module
imports only click at import time; each command imports what it uses.
"""

from __future__ import annotations

import os
import sys
from typing import TYPE_CHECKING, Any

import click

from sentinel import __version__, defaults
from sentinel.errors import SQLSentinelError, ValidationError

if TYPE_CHECKING:
    from sentinel.deployment import Deployment

EXIT_OK, EXIT_ALERT, EXIT_USAGE = 0, 1, 2


class SentinelGroup(click.Group):
    """Turns every Sentinel error into one line on stderr and the error's exit code."""

    def invoke(self, ctx: click.Context) -> Any:
        from sentinel.redact import redact

        try:
            return super().invoke(ctx)
        except ValidationError as exc:
            for issue in exc.issues:
                click.echo(f"error: {redact(issue)}", err=True)
            ctx.exit(exc.exit_code)
        except SQLSentinelError as exc:
            click.echo(f"error: {redact(exc)}", err=True)
            ctx.exit(exc.exit_code)
        except (click.exceptions.Exit, click.ClickException, click.Abort):
            raise
        except KeyboardInterrupt:
            click.echo("interrupted", err=True)
            ctx.exit(130)
        except Exception as exc:
            if os.environ.get("SENTINEL_DEBUG"):
                raise
            first = (str(exc).strip().splitlines() or [""])[0]
            click.echo(f"error: unexpected {type(exc).__name__}: {redact(first)}", err=True)
            ctx.exit(EXIT_ALERT)


state_db_option = click.option(
    "--state-db",
    "state_db",
    envvar="STATE_DB_URL",
    metavar="URL",
    help="State database URL (default: $STATE_DB_URL, then the config's database.url).",
)
json_option = click.option("--json", "as_json", is_flag=True, help="Print machine-readable JSON.")
config_argument = click.argument("config", type=click.Path(dir_okay=False))


@click.group(cls=SentinelGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="sqlsentinel")
@click.option("-v", "--verbose", count=True, help="Log more (-v info, -vv debug).")
def cli(verbose: int) -> None:
    """SQL Sentinel: alerts are SQL queries that return status 'ALERT' or 'OK'."""
    from sentinel.logs import configure_logging

    configure_logging(("WARNING", "INFO", "DEBUG")[min(verbose, 2)])


def _deployment(
    config: str, state_db: str | None = None, warn: bool = False, threads: int | None = None
) -> Deployment:
    """Load the config; ``warn`` says aloud which channels cannot send (validate and run);
    ``threads`` sizes the pools of a process that serves several at once (the API)."""
    from sentinel.deployment import Deployment

    deployment = Deployment.from_file(config, state_db, threads=threads)
    if warn:
        for warning in deployment.channel_warnings():
            click.echo(str(warning), err=True)
    return deployment


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
def validate(config: str) -> None:
    """Check a config file: every problem is reported at once."""
    from sentinel.redact import safe_url

    deployment = _deployment(config, warn=True)
    cfg = deployment.config
    enabled = sum(1 for a in cfg.alerts if a.enabled)
    click.echo(
        f"{config}: {len(cfg.alerts)} alerts valid ({enabled} enabled), "
        f"database {safe_url(cfg.database.url)}"
    )


@cli.command()
@config_argument
@click.option("--alert", "alert_name", metavar="NAME", help="Run only this alert.")
@click.option("--dry-run", is_flag=True, help="Run the queries; write and send nothing.")
@state_db_option
@json_option
def run(
    config: str, alert_name: str | None, dry_run: bool, state_db: str | None, as_json: bool
) -> None:
    """Run alerts now, in this process. Exits 1 if any alert fired or errored."""
    from sentinel import report

    deployment = _deployment(config, state_db, warn=True)
    try:
        results = deployment.run(alert_name, dry_run=dry_run)
    finally:
        deployment.close()
    if as_json:
        click.echo(report.to_json([r.model_dump(mode="json") for r in results]))
    else:
        click.echo(report.run_results(results))
        click.echo(report.run_summary(results))
    fired = any(r.status in ("failure", "error") for r in results if not r.duplicate)
    sys.exit(EXIT_ALERT if fired else EXIT_OK)


@cli.command()
@config_argument
@click.option("--alert", "alert_name", metavar="NAME", help="Only this alert.")
@click.option(
    "--limit", default=defaults.HISTORY_LIMIT, show_default=True, type=click.IntRange(1, 100_000)
)
@state_db_option
@json_option
def history(
    config: str, alert_name: str | None, limit: int, state_db: str | None, as_json: bool
) -> None:
    """Show recent executions, their notifications, and statistics."""
    from dataclasses import asdict

    from sentinel import report

    deployment = _deployment(config, state_db)
    try:
        records, stats = deployment.history(alert_name, limit)
    finally:
        deployment.close()
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
def status(config: str, state_db: str | None, as_json: bool) -> None:
    """Show each alert's current state, last run and next run."""
    from dataclasses import asdict

    from sentinel import report
    from sentinel.health import check_dependencies

    deployment = _deployment(config, state_db)
    try:
        health = check_dependencies(deployment)
        for check in health.checks:
            # Said on stderr, so --json output stays one document; an unreachable state database
            # ends the command with its own one-line error below.
            if not check.ok and check.name != "state_db":
                since = f" since {check.down_since:%H:%M:%S}Z" if check.down_since else ""
                click.echo(f"warning: {check.name} unreachable{since}: {check.error}", err=True)
        rows = deployment.status()
    finally:
        deployment.close()
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


def main() -> None:
    cli(prog_name="sqlsentinel")


# The command groups that live in modules of their own register themselves on `cli`.
from sentinel import cli_api, cli_fleet, cli_silences  # noqa: E402, F401
