"""The REST API and the status page (FastAPI), served by ``sqlsentinel api`` and the Procfile's
``web`` process."""

from __future__ import annotations

from fastapi import FastAPI

from sentinel import __version__
from sentinel.api import errors, metrics, page, routes
from sentinel.api.context import ApiContext
from sentinel.deployment import Deployment


def create_app(deployment: Deployment, context: ApiContext | None = None) -> FastAPI:
    """An app over one configured deployment; auth settings from the environment by default."""
    app = FastAPI(
        title="SQL Sentinel",
        version=__version__,
        description="Alerts are SQL: status, history, silences and manual runs.",
    )
    app.state.sentinel = context or ApiContext.from_env(deployment)
    errors.install(app)
    app.include_router(routes.router)
    app.include_router(metrics.router)
    app.include_router(page.router)
    return app


__all__ = ["ApiContext", "create_app"]
