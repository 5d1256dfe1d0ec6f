"""``sqlsentinel_configs``: each distinct version of a config file, as written (no secrets)."""

from __future__ import annotations

import hashlib
from datetime import datetime

from sqlalchemy.engine import Engine

from sentinel.redact import redact
from sentinel.store.engine import insert_ignore, retry_deadlocks, write_transaction
from sentinel.store.tables import configs


@retry_deadlocks
def remember_config(engine: Engine, path: str, raw_text: str, now: datetime) -> bool:
    """Store this version of the file unless it is already stored; True when it was new.

    The text is stored as written (``${VAR}`` unexpanded), with any secret written literally into
    the file (a password in a URL, a registered webhook token) masked. Replicas that start at the
    same instant all call this with the same file: the sha256 key makes exactly one row, and no
    replica fails for having lost the race.
    """
    raw_text = redact(raw_text)
    digest = hashlib.sha256(raw_text.encode("utf-8")).hexdigest()
    values = {"path": path, "sha256": digest, "content": raw_text, "loaded_at": now}
    with write_transaction(engine) as conn:
        return insert_ignore(conn, configs, values)
