"""Every error answers in one JSON shape, without stack traces or secrets:

``{"error": {"status": 404, "code": "not_found", "message": "...", "fields": [...]}}``
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException
from starlette.routing import Match

from sentinel.api.context import UnauthorizedError
from sentinel.errors import SQLSentinelError, StateStoreError, UsageError, ValidationError
from sentinel.redact import redact

log = logging.getLogger("sentinel.api")


def error_body(
    status: int, code: str, message: str, fields: list[dict[str, Any]] | None = None
) -> dict[str, Any]:
    return {
        "error": {
            "status": status,
            "code": code,
            "message": redact(message),
            "fields": fields or [],
        }
    }


def _response(
    status: int,
    code: str,
    message: str,
    fields: list[dict[str, Any]] | None = None,
    headers: Mapping[str, str] | None = None,
) -> JSONResponse:
    headers = {**({"WWW-Authenticate": "Bearer"} if status == 401 else {}), **(headers or {})}
    return JSONResponse(
        error_body(status, code, message, fields), status_code=status, headers=headers
    )


#: The methods a 405's ``Allow`` may name; no route here takes OPTIONS or TRACE.
METHODS = ("GET", "HEAD", "POST", "PUT", "PATCH", "DELETE")


def _allowed(request: Request) -> str | None:
    """Every method the path takes. Starlette's ``Allow`` names only the first route that has
    the path, but one path may have a POST route and a DELETE route: ask the routes for each."""
    scope = {
        "type": "http",
        "path": request.scope["path"],
        "root_path": request.scope.get("root_path", ""),
        "headers": request.scope.get("headers", []),
    }
    allowed = [
        method
        for method in METHODS
        if any(
            route.matches({**scope, "method": method})[0] is Match.FULL
            for route in request.app.router.routes
        )
    ]
    return ", ".join(allowed) or None


def install(app: FastAPI) -> None:
    @app.exception_handler(RequestValidationError)
    async def invalid_request(_: Request, exc: RequestValidationError) -> JSONResponse:
        fields = [
            {
                "field": ".".join(str(p) for p in err.get("loc", ()) if p != "body"),
                "message": redact(err.get("msg", "")),
            }
            for err in exc.errors()
        ]
        return _response(422, "invalid_request", "the request is not valid", fields)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "http_error")
        headers = dict(exc.headers or {})  # a 405's Allow, a 401's WWW-Authenticate
        allowed = _allowed(request) if exc.status_code == 405 else None
        if allowed is not None:
            headers["Allow"] = allowed
        return _response(exc.status_code, code, str(exc.detail), headers=headers)

    @app.exception_handler(SQLSentinelError)
    async def sentinel_error(_: Request, exc: SQLSentinelError) -> JSONResponse:
        if isinstance(exc, UnauthorizedError):
            return _response(401, "unauthorized", str(exc))
        if isinstance(exc, UsageError):
            return _response(404, "not_found", str(exc))
        if isinstance(exc, ValidationError):
            return _response(422, "invalid_request", str(exc))
        if isinstance(exc, StateStoreError):
            return _response(503, "state_database_unavailable", str(exc))
        return _response(500, "sentinel_error", str(exc))

    @app.exception_handler(Exception)
    async def unexpected(_: Request, exc: Exception) -> JSONResponse:
        from sentinel.store.engine import describe_db_error, is_connection_fault

        if is_connection_fault(exc):  # a database going away mid-request is an outage, not a bug
            return _response(503, "state_database_unavailable", describe_db_error(exc))
        log.error("unexpected %s: %s", type(exc).__name__, redact(exc))
        return _response(500, "internal_error", "internal error (see the server log)")
