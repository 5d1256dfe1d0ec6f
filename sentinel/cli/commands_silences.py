"""``sqlsentinel silence``, ``unsilence`` and ``silences``: silences by name or by label matchers,
kept as an audit trail (who, why, from, until)."""

from __future__ import annotations

import getpass
from datetime import datetime
from typing import TYPE_CHECKING

import click

from sentinel.cli.group import cli, config_argument, json_option, pass_deployment, state_db_option
from sentinel.errors import UsageError

if TYPE_CHECKING:
    from sentinel.deployment import Deployment


def _parse_time(text: str) -> datetime:
    from sentinel.durations import utc_naive

    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise UsageError(f"--until: not an ISO 8601 time: '{text}'") from None
    try:
        return utc_naive(moment)
    except ValueError as exc:
        raise UsageError(f"--until: {exc}") from None


def _parse_matchers(pairs: tuple[str, ...]) -> dict[str, str]:
    matchers = {}
    for pair in pairs:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise UsageError(f"--match: expected LABEL=VALUE, got '{pair}'")
        matchers[key.strip()] = value.strip()
    return matchers


def _end_time(duration: str | None, until: str | None) -> datetime:
    from sentinel.durations import end_after
    from sentinel.models import utcnow

    if (duration is None) == (until is None):
        raise UsageError("give exactly one of --for DURATION or --until TIME")
    if duration is not None:
        try:
            return end_after(utcnow(), duration)
        except ValueError as exc:
            raise UsageError(f"--for: {exc}") from None
    return _parse_time(str(until))


def _who() -> str:
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return "unknown"


@cli.command()
@config_argument
@click.argument("name", required=False)
@click.option("--match", "match", multiple=True, metavar="LABEL=VALUE", help="Silence by labels.")
@click.option("--for", "duration", metavar="DURATION", help="How long, e.g. 30m, 4h, 2d.")
@click.option("--until", "until", metavar="TIME", help="ISO 8601 end time (no offset means UTC).")
@click.option("--reason", metavar="TEXT", help="Why (kept in the audit trail).")
@click.option("--by", "created_by", metavar="WHO", help="Who silences (default: your user name).")
@state_db_option
def silence(
    config: str,
    name: str | None,
    match: tuple[str, ...],
    duration: str | None,
    until: str | None,
    reason: str | None,
    created_by: str | None,
    state_db: str | None,
) -> None:
    """Silence an alert by NAME, or all alerts matching --match labels, for a while."""
    matchers = _parse_matchers(match)
    if name is None and not matchers:
        raise UsageError("name an alert or give --match LABEL=VALUE")
    end = _end_time(duration, until)
    _add_silence(
        config=config,
        state_db=state_db,
        name=name,
        matchers=matchers,
        end=end,
        reason=reason,
        created_by=created_by or _who(),
    )


@pass_deployment
def _add_silence(
    deployment: Deployment,
    *,
    name: str | None,
    matchers: dict[str, str],
    end: datetime,
    reason: str | None,
    created_by: str,
) -> None:
    silence_id = deployment.silence(
        name, end, matchers=matchers, reason=reason, created_by=created_by
    )
    what = name or " ".join(f"{k}={v}" for k, v in matchers.items())
    click.echo(f"silence {silence_id}: {what} until {end:%Y-%m-%d %H:%M:%S} UTC")


@cli.command()
@config_argument
@click.argument("name", required=False)
@click.option("--id", "silence_id", type=int, help="End one silence by its id (see 'silences').")
@state_db_option
def unsilence(config: str, name: str | None, silence_id: int | None, state_db: str | None) -> None:
    """End an alert's silences (or one silence by --id); they stay in the audit trail.

    Silences by --match labels cover every alert they match, so ending an alert's silences by
    NAME leaves them: each one that still covers the alert is listed with its id.
    """
    if (name is None) == (silence_id is None):
        raise UsageError("give an alert NAME or --id N")
    _end_silences(config=config, state_db=state_db, name=name, silence_id=silence_id)


@pass_deployment
def _end_silences(deployment: Deployment, *, name: str | None, silence_id: int | None) -> None:
    done = deployment.unsilence(name, silence_id)
    config = deployment.config.path  # the file as the command was given it
    click.echo(f"ended {done.ended} silence{'s' if done.ended != 1 else ''}")
    for left in done.still_silenced_by:  # label silences: they cover other alerts too
        matches = " ".join(f"{k}={v}" for k, v in left.matchers.items())
        why = f", by {left.created_by or 'unknown'}" + (f": {left.reason}" if left.reason else "")
        click.echo(
            f"{name} is still silenced by silence {left.id} ({matches}, until "
            f"{left.ends_at:%Y-%m-%d %H:%M:%S} UTC{why}); it matches labels, so it covers every "
            f"alert with them: end it with 'sqlsentinel unsilence {config} --id {left.id}'"
        )


@cli.command()
@config_argument
@click.option("--all", "include_expired", is_flag=True, help="Include ended silences.")
@state_db_option
@json_option
@pass_deployment
def silences(deployment: Deployment, include_expired: bool, as_json: bool) -> None:
    """List silences: what they match, who set them, why, from and until."""
    from dataclasses import asdict

    from sentinel import report

    found = deployment.silences(include_expired)
    now = deployment.clock()
    if as_json:
        click.echo(report.to_json([asdict(s) for s in found]))
        return
    rows = [
        [
            s.id,
            s.alert_name or " ".join(f"{k}={v}" for k, v in s.matchers.items()),
            s.created_by,
            s.starts_at,
            s.ends_at,
            "active" if s.active(now) else "ended",
            s.reason,
        ]
        for s in found
    ]
    headers = ["id", "matches", "by", "from (utc)", "until (utc)", "state", "reason"]
    click.echo(report.table(headers, rows) if rows else "no silences")
