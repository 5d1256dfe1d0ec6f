"""Durations as people write them in YAML and on the command line: ``90s``, ``15m``, ``4h``, ``2d``.

One parser shared by the config, the CLI and the API, so ``--for 4h`` and ``min_interval: 4h`` can
never disagree; and one way to turn a duration or a time with an offset into a stored end time,
whose bad values raise ``ValueError`` (a bad argument, said as such), never ``OverflowError``.
"""

from __future__ import annotations

import math
import re
from datetime import UTC, datetime, timedelta

_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([smhdw]?)\s*$", re.IGNORECASE)
_SPACE = r"[ \t\n\r\f\v]"  # the whitespace JSON Schema's and Python's regexes agree on

#: The longest duration anywhere (a silence, an interval, a timeout, a mute window): ten years.
#: Anything longer is a typo, and a time that far ahead may not even be a date (year 9999 ends).
MAX_DURATION = timedelta(days=3650)


def parse_duration(value: str | int | float | timedelta) -> timedelta:
    """Parse ``90s``/``15m``/``4h``/``2d``/``1w`` or a bare number of seconds (never negative)."""
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"not a duration: {value!r}")
    elif isinstance(value, int | float):
        try:
            seconds = float(value)
        except OverflowError:  # an int too large for a float: too long (or negative) anyway
            seconds = math.inf if value > 0 else -math.inf
    else:
        match = _PATTERN.match(str(value))
        if not match:
            raise ValueError(
                f"not a duration: {_shown(value)} (a number with s, m, h, d or w, e.g. 90s, 4h)"
            )
        seconds = float(match.group(1)) * _UNITS[(match.group(2) or "s").lower()]
    if seconds < 0:
        raise ValueError(f"a duration cannot be negative: {_shown(value)}")
    if not math.isfinite(seconds) or seconds > MAX_DURATION.total_seconds():
        raise ValueError(f"a duration is at most 10 years (3650d), not {_shown(value)}")
    return timedelta(seconds=seconds)


def _integers_up_to(limit: int) -> str:
    """A regular expression for the integers 0 to ``limit`` (no leading zeros)."""
    digits = str(limit)
    options = [f"[0-9]{{1,{len(digits) - 1}}}"] if len(digits) > 1 else []
    for i, digit in enumerate(digits):  # the same prefix, a smaller digit here, any digits after
        low, high = (1 if i == 0 and len(digits) > 1 else 0), int(digit) - 1
        if high >= low:
            rest = len(digits) - i - 1
            smaller = str(low) if high == low else f"[{low}-{high}]"
            after = "" if not rest else "[0-9]" if rest == 1 else f"[0-9]{{{rest}}}"
            options.append(digits[:i] + smaller + after)
    options.append(digits)
    return "(?:" + "|".join(options) + ")"


def duration_pattern() -> str:
    """The written durations of at most ``MAX_DURATION``, as one regular expression that JSON
    Schema (ECMA 262) and Python read alike: ASCII digits and whitespace, any unit's case."""
    numbers = []
    for unit, size in _UNITS.items():
        most = int(MAX_DURATION.total_seconds()) // size  # e.g. 3650 days, 521 weeks
        number = rf"0*(?:{_integers_up_to(most - 1)}(?:\.[0-9]+)?|{most}(?:\.0+)?)"
        suffix = f"[{unit}{unit.upper()}]" + ("?" if unit == "s" else "")
        numbers.append(f"{number}{_SPACE}*{suffix}")
    return rf"^{_SPACE}*(?:{'|'.join(numbers)}){_SPACE}*$"


def _shown(value: object) -> str:
    """A value for an error message: its repr, cut short (a 400-digit number is one line too)."""
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


def end_after(start: datetime, duration: str | int | float | timedelta) -> datetime:
    """``start`` plus a duration: a ``ValueError`` (never an ``OverflowError``) if the end is not a
    date Python can hold."""
    length = parse_duration(duration)
    try:
        return start + length
    except OverflowError:
        end = f"{start:%Y-%m-%d} plus {_shown(duration)}"
        raise ValueError(f"{end} is past the year 9999") from None


def utc_naive(moment: datetime) -> datetime:
    """A time as naive UTC, the way the state stores it (no offset means UTC already): a
    ``ValueError`` (never an ``OverflowError``) if in UTC it falls outside the years 1 to 9999."""
    if moment.tzinfo is None:
        return moment
    try:
        return moment.astimezone(UTC).replace(tzinfo=None)
    except OverflowError:
        raise ValueError(f"{moment.isoformat()} is outside the years 1 to 9999 in UTC") from None


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
