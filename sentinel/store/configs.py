"""``sqlsentinel_configs``: each distinct version of a config file, as written (no secrets)."""

from __future__ import annotations

import hashlib
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Engine

from sentinel.redact import redact
from sentinel.store.engine import write_transaction
from sentinel.store.tables import configs


def remember_config(engine: Engine, path: str, raw_text: str, now: datetime) -> bool:
    """Store this version of the file unless it is already stored; True when it was new.

    The text is stored as written (``${VAR}`` unexpanded), with any secret written literally into
    the file (a password in a URL, a registered webhook token) masked.
    """
    raw_text = redact(raw_text)
    digest = hashlib.sha256(raw_text.encode("utf-8")).hexdigest()
    with write_transaction(engine) as conn:
        known = conn.execute(sa.select(configs.c.id).where(configs.c.sha256 == digest)).first()
        if known:
            return False
        conn.execute(
            configs.insert().values(path=path, sha256=digest, content=raw_text, loaded_at=now)
        )
    return True
