"""What every ``sqlsentinel`` command shares: the group, its options, ``pass_deployment``.

The command modules import this one and never the reverse, so the package has no import cycle;
``sentinel.cli`` imports them to register their commands.

Start-up time matters (people run ``--help`` and cron runs ``run`` every minute), so the package
imports only click at import time; each command imports what it uses when it runs.
"""

from __future__ import annotations

import functools
import os
from collections.abc import Callable
from typing import TYPE_CHECKING, Any, Concatenate, ParamSpec, TypeVar, overload

import click

from sentinel import __version__
from sentinel.errors import SQLSentinelError, ValidationError

if TYPE_CHECKING:
    from sentinel.deployment import Deployment

EXIT_OK, EXIT_ALERT, EXIT_USAGE = 0, 1, 2

P = ParamSpec("P")
R = TypeVar("R")


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


def main() -> None:
    cli(prog_name="sqlsentinel")


@overload
def pass_deployment(func: Callable[Concatenate[Deployment, P], R], /) -> Callable[..., R]: ...
@overload
def pass_deployment(
    *, warn: bool = False, threads: int | None = None
) -> Callable[[Callable[Concatenate[Deployment, P], R]], Callable[..., R]]: ...
def pass_deployment(
    func: Callable[Concatenate[Deployment, P], R] | None = None,
    /,
    *,
    warn: bool = False,
    threads: int | None = None,
) -> Any:
    """Hand a command the ``Deployment`` of its ``config`` (and ``state_db``) keyword arguments,
    and close it once the command is done, however it ends.

    The decorated function takes the deployment first, then every other keyword argument. Its
    errors are not caught here: ``SentinelGroup`` maps them for every command alike, including
    those that need no deployment. ``warn`` says aloud which channels cannot send (validate, run,
    the in-process clock and the API); ``threads`` sizes the pools of a process that serves several
    requests at once (the API).

    A command that must refuse bad arguments before the alerts file is read (so a usage error is
    reported as one, whatever the file holds) checks them and then calls a decorated helper with
    ``config=`` and ``state_db=``.
    """

    def decorate(command: Callable[Concatenate[Deployment, P], R]) -> Callable[..., R]:
        # The keywords come from click (or the command that checked them) and cannot be typed
        # through the wrapper; only the deployment in front is checked.
        run: Callable[..., R] = command

        @functools.wraps(command)
        def wrapper(*args: Any, config: str, state_db: str | None = None, **kwargs: Any) -> R:
            from sentinel.deployment import Deployment

            deployment = Deployment.from_file(config, state_db, threads=threads)
            try:
                if warn:
                    for warning in deployment.channel_warnings():
                        click.echo(str(warning), err=True)
                return run(deployment, *args, **kwargs)
            finally:
                deployment.close()

        return wrapper

    return decorate if func is None else decorate(func)
