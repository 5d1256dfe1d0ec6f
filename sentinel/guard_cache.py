"""The SQL guard's verdicts kept on disk, so sqlglot parses a query once in its life.

``sqlsentinel run`` from cron starts a new process every minute; parsing every alert query again
each time cost more than running them. A verdict (accepted, or the reason a query is refused) is
stored under a key that hashes the guard's version, the dialect and the exact query text, so:

* a changed query, or the same query for another database, is checked again;
* a changed guard (its source, or the sqlglot release it parses with) never trusts an old verdict:
  its version is part of every key, and rows of other versions are dropped when new ones are
  written;
* concurrent processes may read and write at once: the file is a SQLite database, whose locking
  keeps it whole; a writer that cannot get the lock quickly skips writing (the verdict is only
  worth a parse);
* a file that is not a database, or is damaged, is ignored and replaced; the cache can never
  make a check fail, only skip a parse.

It lives in the user's cache directory (``$XDG_CACHE_HOME`` or ``~/.cache``, then
``sqlsentinel/guard-verdicts.sqlite3``); ``SENTINEL_GUARD_CACHE`` names another file, or turns
the cache off when set to an empty string or ``off``. Whoever can write that file could make the
guard accept a write; they could as well edit the code. The read-only transaction with its
timeout (:mod:`sentinel.query_limits`) stays the second fence either way.
"""

from __future__ import annotations

import contextlib
import functools
import hashlib
import logging
import os
import sqlite3
from collections.abc import Iterable
from pathlib import Path

logger = logging.getLogger(__name__)

#: How long a writer waits for another process's write before skipping its own.
_BUSY_SECONDS = 0.5
#: Keys per statement: well under SQLite's limit of bound parameters.
_CHUNK = 900
_SCHEMA = "CREATE TABLE IF NOT EXISTS verdicts (key TEXT PRIMARY KEY, version TEXT, refusal TEXT)"


def default_path() -> Path | None:
    """The cache file in force: ``SENTINEL_GUARD_CACHE``, else the user's cache directory."""
    configured = os.environ.get("SENTINEL_GUARD_CACHE")
    if configured is not None:
        if configured.strip().lower() in {"", "off", "0", "none"}:
            return None
        return Path(configured)
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return Path(base) / "sqlsentinel" / "guard-verdicts.sqlite3"


@functools.cache
def guard_version() -> str:
    """The guard's source (``sentinel/sqlguard.py``) and the sqlglot release it parses with,
    hashed: a verdict stored by any other guard is never trusted. Read from files, so a start
    with every verdict cached never imports sqlglot."""
    import importlib.util

    digest = hashlib.sha256(Path(__file__).with_name("sqlguard.py").read_bytes())
    spec = importlib.util.find_spec("sqlglot")
    origin = Path(spec.origin) if spec is not None and spec.origin else None
    version_file = origin.with_name("_version.py") if origin is not None else None
    if version_file is not None and version_file.is_file():
        digest.update(version_file.read_bytes())
    else:
        from importlib.metadata import version

        digest.update(version("sqlglot").encode())
    return digest.hexdigest()[:32]


def verdict_key(version: str, dialect: str | None, sql: str) -> str:
    """One key for (guard version, dialect, exact text): any change to one is another key."""
    digest = hashlib.sha256()
    for part in (version, dialect or "", sql):
        encoded = part.encode("utf-8", "surrogatepass")
        digest.update(len(encoded).to_bytes(8, "big"))  # lengths: no two triples hash alike
        digest.update(encoded)
    return digest.hexdigest()


class VerdictCache:
    """Verdicts by key in one SQLite file: ``None`` means accepted, a string is the refusal."""

    def __init__(self, path: Path | None, version: str):
        self.path = path
        self.version = version

    def get_many(self, keys: Iterable[str]) -> dict[str, str | None]:
        """The stored verdicts of those keys that have one; nothing at all if the file is bad."""
        wanted = list(keys)
        if self.path is None or not wanted or not self.path.exists():
            return {}
        found: dict[str, str | None] = {}
        try:
            with contextlib.closing(self._connect()) as conn:
                for start in range(0, len(wanted), _CHUNK):
                    chunk = wanted[start : start + _CHUNK]
                    marks = ",".join("?" * len(chunk))
                    rows = conn.execute(
                        f"SELECT key, refusal FROM verdicts WHERE version = ? AND key IN ({marks})",
                        [self.version, *chunk],
                    )
                    found.update(rows)
        except sqlite3.DatabaseError as exc:
            self._ignore(exc)
            return {}
        return found

    def put_many(self, verdicts: dict[str, str | None]) -> None:
        """Store new verdicts, dropping every other version's; best effort, never raises."""
        if self.path is None or not verdicts:
            return
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            with contextlib.closing(self._connect()) as conn, conn:
                conn.execute(_SCHEMA)
                conn.execute("DELETE FROM verdicts WHERE version <> ?", (self.version,))
                conn.executemany(
                    "INSERT OR REPLACE INTO verdicts (key, version, refusal) VALUES (?, ?, ?)",
                    [(key, self.version, refusal) for key, refusal in verdicts.items()],
                )
        except OSError as exc:
            logger.debug("guard verdict cache %s not written: %s", self.path, exc)
        except sqlite3.DatabaseError as exc:
            self._ignore(exc)

    def _connect(self) -> sqlite3.Connection:
        assert self.path is not None
        return sqlite3.connect(self.path, timeout=_BUSY_SECONDS, isolation_level="DEFERRED")

    def _ignore(self, exc: sqlite3.DatabaseError) -> None:
        """A busy file is left to its writer; a damaged one is removed, to be written anew."""
        if isinstance(exc, sqlite3.OperationalError) and (
            "locked" in str(exc) or "no such table" in str(exc)
        ):
            logger.debug("guard verdict cache %s busy or new: %s", self.path, exc)
            return
        logger.debug("guard verdict cache %s unreadable, replaced: %s", self.path, exc)
        if self.path is not None:
            with contextlib.suppress(OSError):
                self.path.unlink()
