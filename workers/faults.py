"""Which exceptions mean "the broker or Redis is away", as opposed to a bug or a bad message.

The scheduler, the actors and the retry policy all ask the same question; this is its one answer.
"""

from __future__ import annotations

import functools


@functools.cache
def broker_faults() -> tuple[type[BaseException], ...]:
    """Connection-level errors of Redis, RabbitMQ and the sockets under them."""
    import redis.exceptions
    from dramatiq.errors import BrokerConnectionError

    faults: list[type[BaseException]] = [
        redis.exceptions.ConnectionError,  # includes BusyLoadingError (a restarting Redis)
        redis.exceptions.TimeoutError,
        redis.exceptions.ReadOnlyError,  # a replica being promoted
        BrokerConnectionError,
        OSError,  # ConnectionError, TimeoutError and friends from the sockets themselves
    ]
    try:
        import pika.exceptions
    except ImportError:
        pass
    else:
        faults.append(pika.exceptions.AMQPError)
    return tuple(faults)
