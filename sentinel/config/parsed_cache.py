"""Parsed config documents kept on disk, so a large unchanged file is not parsed as YAML again.

PyYAML, even with libyaml, takes most of the load of a config with tens of thousands of alerts
(seconds per 100,000); a scheduler or worker restarted on the same file parses the same text
again. The document YAML made of a file (before ``${VAR}`` substitution, so the environment is
still read at every load) is stored as JSON under the SHA-256 of the exact text and the PyYAML
release:

* a changed file is another key, and is parsed;
* a document JSON does not give back as it was (a YAML timestamp, a number as a key) is not
  stored, and is parsed every time;
* each file is written under a temporary name and renamed into place, so a reader sees a whole
  file or none, whatever other processes do;
* a file that cannot be read back as a mapping is ignored (and removed); the cache can only skip
  a parse, never change what a load returns or fail it;
* a document holds what the file holds, secrets written into it included, so each is created
  readable by its owner only (``mkstemp``), like the file it was parsed from should be.

Only files of at least :data:`MIN_BYTES` are kept (a small file parses faster than it is
looked up), the most recently used within :data:`KEEP_FILES` and :data:`KEEP_BYTES`, in
``configs/`` beside the SQL guard's verdicts (:func:`sentinel.guard_cache.default_path`; off
when that cache is off).
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import os
import tempfile
from pathlib import Path
from typing import Any

#: Smaller files are parsed every time.
MIN_BYTES = 16 * 1024
#: How many parsed documents are kept, and their total size: the least recently used go first.
KEEP_FILES = 64
KEEP_BYTES = 256 * 1024 * 1024


def cache_directory() -> Path | None:
    """Where documents are kept, or None when the cache is off."""
    from sentinel.guard_cache import default_path

    verdicts = default_path()
    return None if verdicts is None else verdicts.parent / "configs"


def _key(text: str, yaml_version: str) -> str:
    digest = hashlib.sha256(yaml_version.encode())
    digest.update(b"\0")
    digest.update(text.encode("utf-8", "surrogatepass"))
    return digest.hexdigest()


def cached_document(text: str, yaml_version: str) -> dict[str, Any] | None:
    """The document stored for exactly this text, or None (not stored, or unreadable)."""
    directory = cache_directory()
    if directory is None or len(text) < MIN_BYTES:
        return None
    path = directory / f"{_key(text, yaml_version)}.json"
    try:
        data = json.loads(path.read_bytes())
    except FileNotFoundError:
        return None
    except (OSError, ValueError):
        with contextlib.suppress(OSError):
            path.unlink()
        return None
    if not isinstance(data, dict):
        return None
    with contextlib.suppress(OSError):
        os.utime(path)  # used: the last to be pruned
    return data


def store_document(text: str, yaml_version: str, data: dict[str, Any]) -> None:
    """Keep ``data`` for this text; best effort, never raises."""
    directory = cache_directory()
    if directory is None or len(text) < MIN_BYTES:
        return
    try:
        encoded = json.dumps(data, ensure_ascii=False, allow_nan=False).encode("utf-8")
    except (TypeError, ValueError):  # a datetime, a date, NaN: parse such a file every time
        return
    if json.loads(encoded) != data:  # keys that are not strings would come back as strings
        return
    temporary: str | None = None
    try:
        directory.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=directory, suffix=".tmp")
        with os.fdopen(handle, "wb") as out:
            out.write(encoded)
        os.replace(temporary, directory / f"{_key(text, yaml_version)}.json")
        _prune(directory)
    except OSError:
        if temporary is not None:
            with contextlib.suppress(OSError):
                os.unlink(temporary)


def _prune(directory: Path) -> None:
    found = []
    for path in directory.glob("*.json"):
        with contextlib.suppress(OSError):
            status = path.stat()
            found.append((status.st_mtime, status.st_size, path))
    total = 0
    for index, (_, size, path) in enumerate(sorted(found, key=lambda f: f[0], reverse=True)):
        total += size
        if index >= KEEP_FILES or total > KEEP_BYTES:
            with contextlib.suppress(OSError):
                path.unlink()
