"""Pools sized by the worker's threads: the connection budget of a ``dramatiq workers.app`` process.

A worker process runs ``--threads`` actors at once, and each holds at most one connection to each
database at a time. Pools larger than that only hold idle connections that other processes of the
fleet then cannot have (this is how a fleet exhausted PostgreSQL's ``max_connections`` by itself);
smaller ones make threads wait. So the pools are sized when the worker boots, from the worker's
own thread count, before the first message builds them.
"""

from __future__ import annotations

import dramatiq
from dramatiq.middleware import Middleware

from workers.live_deployment import live_deployment


class ConnectionBudget(Middleware):
    def after_worker_boot(self, broker: dramatiq.Broker, worker: dramatiq.Worker) -> None:
        live_deployment().threads = int(worker.worker_threads)
