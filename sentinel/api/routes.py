"""The JSON API: ``/health``, ``/ready``, ``/api/v1/...`` (the spec's section 5)."""

from __future__ import annotations

from collections.abc import Callable, Coroutine
from dataclasses import asdict
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from sentinel.api import schemas, views
from sentinel.api.context import ApiContext, context, require_read, require_token
from sentinel.config import AlertConfig
from sentinel.errors import SQLSentinelError


class _JsonBodyRoute(APIRoute):
    """FastAPI answers 400 to a body it cannot even decode (bytes that are not UTF-8); this API
    answers every bad request body with a 422, as it does a body that is not valid JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handle = super().get_route_handler()

        async def route(request: Request) -> Response:
            try:
                return await handle(request)
            except HTTPException as exc:
                if exc.status_code != 400 or exc.__cause__ is None:  # only the body's decoding
                    raise
                raise _invalid("", "the body is not JSON text (UTF-8)") from None

        return route


router = APIRouter(route_class=_JsonBodyRoute)
Ctx = Annotated[ApiContext, Depends(context)]
ERRORS: dict[int | str, dict[str, Any]] = {
    401: {"model": schemas.ErrorBody, "description": "missing or wrong bearer token"},
    404: {"model": schemas.ErrorBody, "description": "unknown alert"},
    422: {"model": schemas.ErrorBody, "description": "invalid request"},
}


def _alert(ctx: ApiContext, name: str) -> AlertConfig:
    return ctx.deployment.config.alert(name)  # UsageError -> 404 with the known names


def _invalid(field: str, message: str) -> RequestValidationError:
    """A 422 naming one field of the body (``""``: the body), as its validation would answer."""
    loc = ("body", field) if field else ("body",)
    return RequestValidationError([{"type": "value_error", "loc": loc, "msg": message}])


def queue_depths() -> dict[str, int]:
    from sentinel.fleet import load_fleet

    fleet = load_fleet()
    return fleet.queue_depths() if fleet is not None else {}


@router.get("/health", response_model=schemas.Health, tags=["operations"])
def health() -> schemas.Health:
    """Liveness: the process is up (checks nothing else)."""
    return schemas.Health(status="ok")


@router.get(
    "/ready",
    response_model=schemas.Ready,
    responses={503: {"model": schemas.Ready, "description": "a dependency is unreachable"}},
    tags=["operations"],
)
def ready(ctx: Ctx) -> JSONResponse:
    """Readiness: the state database and (when configured) the broker answer; the data
    database is reported too, without making the process unready (its alerts record the error)."""
    from sentinel.health import check_dependencies
    from sentinel.outages import outages

    health = check_dependencies(ctx.deployment, outages)
    checks = {
        c.name: schemas.Check(
            ok=c.ok, target=c.target, error=c.error, required=c.required, down_since=c.down_since
        )
        for c in health.checks
    }
    body = schemas.Ready(ready=health.ready, checks=checks)
    return JSONResponse(body.model_dump(mode="json"), status_code=200 if body.ready else 503)


@router.get(
    "/api/v1/alerts",
    response_model=list[schemas.AlertSummary],
    responses={401: ERRORS[401]},
    dependencies=[Depends(require_read)],
    tags=["alerts"],
)
def list_alerts(ctx: Ctx) -> Response:
    # The JSON is pydantic-core's, kept per alert by the list and rebuilt only where the state
    # changed (sentinel.api.listing); FastAPI would validate and serialise 1,000 models again.
    return Response(ctx.alert_list.json(ctx.clock()), media_type="application/json")


@router.get(
    "/api/v1/alerts/{name}",
    response_model=schemas.AlertDetail,
    responses={401: ERRORS[401], 404: ERRORS[404]},
    dependencies=[Depends(require_read)],
    tags=["alerts"],
)
def get_alert(name: str, ctx: Ctx) -> schemas.AlertDetail:
    return views.detail(ctx.deployment, _alert(ctx, name), ctx.clock())


@router.get(
    "/api/v1/alerts/{name}/status",
    response_model=schemas.AlertStatusBody,
    responses={401: ERRORS[401], 404: ERRORS[404]},
    dependencies=[Depends(require_read)],
    tags=["alerts"],
)
def alert_status(name: str, ctx: Ctx) -> schemas.AlertStatusBody:
    return views.status(ctx.deployment, _alert(ctx, name), ctx.clock())


@router.get(
    "/api/v1/alerts/{name}/history",
    response_model=schemas.HistoryPage,
    responses=ERRORS,
    dependencies=[Depends(require_token)],
    tags=["alerts"],
)
def alert_history(
    name: str,
    ctx: Ctx,
    limit: Annotated[int, Query(ge=1, le=1000)] = 50,
    before: Annotated[
        int | None, Query(ge=1, le=2**63 - 1, description="an execution id: older ones")
    ] = None,
) -> schemas.HistoryPage:
    """Executions, newest first, ``limit`` at a time; ``next_before`` pages further back."""
    from sentinel.store import ExecutionHistory

    alert = _alert(ctx, name)
    records = ExecutionHistory(ctx.deployment.state_engine).get_recent_executions(
        alert.name, limit + 1, before
    )
    more = len(records) > limit
    records = records[:limit]
    return schemas.HistoryPage(
        items=[views.execution(r) for r in records],
        next_before=records[-1].id if more and records else None,
    )


@router.post(
    "/api/v1/alerts/{name}/execute",
    status_code=202,
    response_model=schemas.ExecuteAccepted,
    responses={**ERRORS, 503: {"model": schemas.ErrorBody, "description": "broker unreachable"}},
    dependencies=[Depends(require_token)],
    tags=["actions"],
)
def execute(name: str, ctx: Ctx) -> schemas.ExecuteAccepted:
    """Run now: through the broker when one is configured (``triggered_by`` = API), else here."""
    from sentinel.fleet import load_fleet

    alert = _alert(ctx, name)
    fleet = load_fleet()
    if fleet is not None:
        [message_id] = fleet.enqueue(ctx.deployment.config.path or "", [alert.name], "API")
        return schemas.ExecuteAccepted(status="queued", message_id=message_id)
    result = ctx.deployment.executor().execute_alert(
        alert, ctx.deployment.adapter, triggered_by="API"
    )
    return schemas.ExecuteAccepted(
        status="finished", execution_id=result.execution_id, result=result.status
    )


@router.post(
    "/api/v1/alerts/{name}/silence",
    status_code=201,
    response_model=schemas.SilenceBody,
    responses=ERRORS,
    dependencies=[Depends(require_token)],
    tags=["actions"],
)
def silence(name: str, body: schemas.SilenceRequest, ctx: Ctx) -> schemas.SilenceBody:
    from sentinel.durations import end_after, utc_naive
    from sentinel.store.silences import get_silence

    alert = _alert(ctx, name)
    if body.duration is not None:
        try:
            until = end_after(ctx.clock(), body.duration)
        except ValueError as exc:  # the body's validator has bounded it; the clock may not be
            raise _invalid("duration", str(exc)) from None
    else:
        assert body.until is not None
        until = utc_naive(body.until)  # already UTC: it cannot fall outside the dates
    silence_id = ctx.deployment.silence(
        alert.name, until, reason=body.reason, created_by=body.created_by or "api"
    )
    stored = get_silence(ctx.deployment.state_engine, silence_id)  # just that row, not the history
    if stored is None:
        raise SQLSentinelError("the silence was not stored")
    return schemas.SilenceBody(**asdict(stored))


@router.delete(
    "/api/v1/alerts/{name}/silence",
    response_model=schemas.Unsilenced,
    response_model_exclude_unset=True,
    responses=ERRORS,
    dependencies=[Depends(require_token)],
    tags=["actions"],
)
def unsilence(name: str, ctx: Ctx) -> schemas.Unsilenced:
    """End the alert's own silences; ``still_silenced_by`` lists label silences that remain."""
    alert = _alert(ctx, name)
    done = ctx.deployment.unsilence(alert.name)
    if not done.still_silenced_by:
        return schemas.Unsilenced(ended=done.ended)
    left = [schemas.SilenceBody(**asdict(s)) for s in done.still_silenced_by]
    return schemas.Unsilenced(ended=done.ended, still_silenced_by=left)


@router.get(
    "/api/v1/stats",
    response_model=schemas.Stats,
    responses={401: ERRORS[401]},
    dependencies=[Depends(require_read)],
    tags=["operations"],
)
def stats(ctx: Ctx, request: Request) -> schemas.Stats:
    try:
        depths = queue_depths()
    except Exception:  # the broker being away must not hide the rest
        depths = {}
    now = ctx.clock()
    return views.stats(ctx.deployment, ctx.alert_list.summaries(now), now, depths)
