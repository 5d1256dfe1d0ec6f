"""``sqlsentinel scheduler``: the clock process, which runs every alert on its schedule.

It lives apart from the broker's commands because it also runs without a broker: then the due
runs are executed in this process.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import click

from sentinel.cli.group import cli, config_argument, pass_deployment, state_db_option

if TYPE_CHECKING:
    import threading

    from sentinel.deployment import Deployment


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
    if fleet is not None:  # the fleet's clock reads the alerts file itself
        fleet.run_scheduler(config, stop, state_db)
        return
    _run_embedded(config=config, state_db=state_db, stop=stop)


@pass_deployment(warn=True)
def _run_embedded(deployment: Deployment, *, stop: threading.Event) -> None:
    from sentinel.scheduling.inprocess import run_embedded

    click.echo(f"scheduler: {len(deployment.config.alerts)} alerts, running in this process")
    run_embedded(deployment, stop)
