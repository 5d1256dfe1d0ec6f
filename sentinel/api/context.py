"""What every request handler needs: the configured deployment, the auth settings, the clock."""

from __future__ import annotations

import hmac
import os
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cached_property
from typing import TYPE_CHECKING

from fastapi import Request

from sentinel.deployment import Deployment
from sentinel.errors import SQLSentinelError
from sentinel.models import utcnow

if TYPE_CHECKING:
    from sentinel.api.listing import AlertList


class UnauthorizedError(SQLSentinelError):
    """A request that needs the API token did not carry the right one."""


@dataclass
class ApiContext:
    deployment: Deployment
    #: ``SENTINEL_API_TOKEN``: required for mutating endpoints and history (and for everything
    #: but health unless ``public_read``). ``None``: no auth, and only loopback binds are allowed.
    token: str | None = None
    #: ``SENTINEL_API_PUBLIC_STATUS``: read-only status endpoints and the page need no token.
    public_read: bool = False
    clock: Callable[[], datetime] = field(default=utcnow)

    @cached_property
    def alert_list(self) -> AlertList:
        """The deployment's alert list, kept across requests (its config is fixed)."""
        from sentinel.api.listing import AlertList

        return AlertList(self.deployment)

    @classmethod
    def from_env(cls, deployment: Deployment) -> ApiContext:
        token = os.environ.get("SENTINEL_API_TOKEN") or None
        public = os.environ.get("SENTINEL_API_PUBLIC_STATUS", "").lower() in ("1", "true", "yes")
        return cls(deployment=deployment, token=token, public_read=public, clock=deployment.clock)

    def token_ok(self, presented: str | None) -> bool:
        """Constant-time comparison, so the token cannot be guessed byte by byte."""
        if self.token is None:
            return True
        if not presented:
            return False
        return hmac.compare_digest(presented.encode(), self.token.encode())


# The dependencies are coroutines although they do no I/O: FastAPI runs a plain function
# dependency in its thread pool, and three thread hops per request were a large part of a cheap
# request's cost.
def context_of(request: Request) -> ApiContext:
    ctx: ApiContext = request.app.state.sentinel
    return ctx


async def context(request: Request) -> ApiContext:
    """Dependency: the app's context."""
    return context_of(request)


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    return value.strip() if scheme.lower() == "bearer" else None


def _check_token(request: Request) -> None:
    if not context_of(request).token_ok(bearer(request)):
        raise UnauthorizedError("a valid bearer token is required (Authorization: Bearer …)")


async def require_token(request: Request) -> None:
    """Dependency of mutating endpoints and history."""
    _check_token(request)


async def require_read(request: Request) -> None:
    """Dependency of read-only status endpoints: open when configured so, else like writes."""
    if context_of(request).public_read:
        return
    _check_token(request)
