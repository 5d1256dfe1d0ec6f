"""Which scheduler shard an alert belongs to: ``crc32(name) mod N``.

The shard is a function of the alert's name alone, so every replica, every restart and every
ordering of the file agree on it, and a run found in the state database (whose alert may have
left the file) still has an owner.
"""

from __future__ import annotations

import zlib


def shard_of(alert_name: str, shards: int) -> int:
    """The shard, in ``range(shards)``, that schedules and recovers ``alert_name``."""
    if shards <= 1:
        return 0
    return zlib.crc32(alert_name.encode()) % shards
