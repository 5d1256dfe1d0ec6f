"""Silences: rows with who, why, from and until, matching an alert by name or by labels.

Ending a silence sets its ``ends_at`` to now instead of deleting it, so expired silences remain an
audit trail that ``sqlsentinel silences --all`` shows.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from sentinel.store.engine import inserted_id, read_transaction, write_transaction
from sentinel.store.tables import silences


@dataclass(frozen=True)
class Silence:
    id: int
    alert_name: str | None
    matchers: dict[str, str] = field(default_factory=dict)
    created_by: str | None = None
    reason: str | None = None
    starts_at: datetime | None = None
    ends_at: datetime | None = None
    created_at: datetime | None = None

    def active(self, now: datetime) -> bool:
        return (self.starts_at is None or self.starts_at <= now) and (
            self.ends_at is not None and now < self.ends_at
        )

    def matches(self, alert_name: str, labels: Mapping[str, str]) -> bool:
        if self.alert_name is not None and self.alert_name != alert_name:
            return False
        return all(labels.get(k) == v for k, v in self.matchers.items())


def _silence(row: Any, prefix: str = "") -> Silence:
    values = row._mapping
    return Silence(
        id=int(values[prefix + "id"]),
        alert_name=values[prefix + "alert_name"],
        matchers=dict(values[prefix + "matchers"] or {}),
        created_by=values[prefix + "created_by"],
        reason=values[prefix + "reason"],
        starts_at=values[prefix + "starts_at"],
        ends_at=values[prefix + "ends_at"],
        created_at=values[prefix + "created_at"],
    )


#: Prefix of the silence columns joined to another table's row (see :func:`joined_silence`).
JOINED_PREFIX = "silence_"


def joinable_silence_columns() -> list[sa.Label[Any]]:
    """The silence columns, labelled so that they can sit beside another table's in one row."""
    return [column.label(JOINED_PREFIX + column.name) for column in silences.c]


def active_for_alert(now: sa.ColumnElement[Any], alert_name: sa.ColumnElement[Any]) -> Any:
    """The join condition of the silences that may apply to one alert now: active, and either
    for this alert by name or by label matchers (the matchers are compared in Python)."""
    return sa.and_(
        silences.c.ends_at > now,
        silences.c.starts_at <= now,
        sa.or_(silences.c.alert_name == alert_name, silences.c.alert_name.is_(None)),
    )


def joined_silence(row: Any) -> Silence | None:
    """The silence in a row of an outer join with :func:`joinable_silence_columns` (or None)."""
    if row._mapping[JOINED_PREFIX + "id"] is None:
        return None
    return _silence(row, JOINED_PREFIX)


def add_silence(
    engine: Engine,
    *,
    until: datetime,
    now: datetime,
    alert_name: str | None = None,
    matchers: Mapping[str, str] | None = None,
    created_by: str | None = None,
    reason: str | None = None,
    starts_at: datetime | None = None,
) -> int:
    if alert_name is None and not matchers:
        raise ValueError("a silence needs an alert name or at least one label matcher")
    with write_transaction(engine) as conn:
        result = conn.execute(
            silences.insert().values(
                alert_name=alert_name,
                matchers=dict(matchers or {}),
                created_by=created_by,
                reason=reason,
                starts_at=starts_at or now,
                ends_at=until,
                created_at=now,
            )
        )
        return inserted_id(result)


def end_silences(
    engine: Engine, now: datetime, *, alert_name: str | None = None, silence_id: int | None = None
) -> int:
    """End the active silences of one alert (by name) or one silence (by id); returns how many."""
    where = [silences.c.ends_at > now]
    if silence_id is not None:
        where.append(silences.c.id == silence_id)
    elif alert_name is not None:
        where.append(silences.c.alert_name == alert_name)
    else:
        raise ValueError("end_silences needs an alert name or a silence id")
    with write_transaction(engine) as conn:
        result = conn.execute(silences.update().where(*where).values(ends_at=now))
        return int(result.rowcount)


def get_silence(engine: Engine, silence_id: int) -> Silence | None:
    """One silence by its id, ended or not (``None`` if there is none)."""
    with read_transaction(engine) as conn:
        row = conn.execute(sa.select(silences).where(silences.c.id == silence_id)).first()
    return _silence(row) if row is not None else None


#: Built once: every run and every alert list reads the active silences, and building and
#: caching-key'ing a fresh statement each time cost more than running it on an empty table.
_ACTIVE = sa.select(silences).where(
    silences.c.ends_at > sa.bindparam("b_now", type_=silences.c.ends_at.type),
    silences.c.starts_at <= sa.bindparam("b_now", type_=silences.c.starts_at.type),
)


def active_silences(conn: Connection, now: datetime) -> list[Silence]:
    return [_silence(row) for row in conn.execute(_ACTIVE, {"b_now": now})]


def list_silences(engine: Engine, now: datetime, include_expired: bool = False) -> list[Silence]:
    query = sa.select(silences).order_by(silences.c.id.desc())
    if not include_expired:
        query = query.where(silences.c.ends_at > now)
    with read_transaction(engine) as conn:
        return [_silence(row) for row in conn.execute(query)]


def silenced_until(
    found: Sequence[Silence], alert_name: str, labels: Mapping[str, str], now: datetime
) -> datetime | None:
    """When the last silence that applies to this alert ends (``None``: not silenced now)."""
    ends = [
        s.ends_at for s in found if s.ends_at and s.active(now) and s.matches(alert_name, labels)
    ]
    return max(ends) if ends else None
