"""Durations as people write them in YAML and on the command line: ``90s``, ``15m``, ``4h``, ``2d``.

One parser shared by the config, the CLI and the API, so ``--for 4h`` and ``min_interval: 4h`` can
never disagree.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Parse ``90s``/``15m``/``4h``/``2d``/``1w`` or a bare number of seconds (never negative)."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    elif isinstance(value, int | float):
        seconds = float(value)
    else:
        match = _PATTERN.match(str(value))
        if not match:
            raise ValueError(
                f"not a duration: {value!r} (a number with s, m, h, d or w, e.g. 90s, 4h)"
            )
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {value!r}")
    return timedelta(seconds=seconds)


def format_duration(delta: timedelta | float) -> str:
    """Render a duration compactly (``1h30m``) for tables and notifications."""
    total = int(delta.total_seconds() if isinstance(delta, timedelta) else delta)
    if total <= 0:
        return "0s"
    parts = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            parts.append(f"{count}{unit}")
    return "".join(parts)
