"""The Dramatiq side of SQL Sentinel: broker set-up, actors, and the scheduler's clock loop.

``dramatiq workers.app`` starts a worker: :mod:`workers.app` sets the broker from
``REDIS_URL``/``BROKER_URL`` and declares the actors, which read the alerts from
``SENTINEL_CONFIG``. Importing this package, or the scheduler's and the keys' modules, sets no
broker, so those pieces can be tested against Dramatiq's ``StubBroker``.
"""
