"""Handing memory back to the system after a large, short-lived allocation.

CPython returns its small-object arenas as they empty, but larger blocks (dicts, lists) come from
the C library's ``malloc``, which keeps what is freed for reuse. After a scheduler loads 100,000
alerts and frees what it does not keep, its RSS would stay near the peak: about 280 MB where
190 MB is in use. glibc's ``malloc_trim`` gives the free pages back. Where there is no glibc
(musl, macOS) there is nothing to call, and nothing happens.
"""

from __future__ import annotations

import ctypes
import functools
from collections.abc import Callable


@functools.cache
def _malloc_trim() -> Callable[[int], int] | None:
    try:
        trim: Callable[[int], int] = ctypes.CDLL("libc.so.6").malloc_trim
    except (OSError, AttributeError):
        return None
    return trim


def release_free_memory() -> None:
    """Return the C heap's free pages to the system (a few milliseconds on a large heap)."""
    trim = _malloc_trim()
    if trim is not None:
        trim(0)
