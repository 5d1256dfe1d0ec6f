"""The status page: server-rendered HTML over the same views as the JSON API.

On-call opens it from whatever browser is at hand, so it needs no JavaScript and no build step:
Jinja2 templates (autoescaped: alert names, values and errors come from configs and databases),
plain HTML forms to silence and unsilence, and the history chart drawn here as inline SVG. With a
token configured, the forms ask for it, or a ``/login`` form stores it in an HttpOnly,
SameSite=Strict cookie; POSTs a browser marks as cross-site are refused, so another site cannot
silence alerts through a visitor's browser even when no token is configured (loopback binds).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Annotated, Any

import jinja2
from fastapi import APIRouter, Depends, Form, Request
from fastapi.responses import FileResponse, RedirectResponse, Response
from fastapi.templating import Jinja2Templates
from markupsafe import Markup

from sentinel.api import views
from sentinel.api.chart import CHART_POINTS, chart
from sentinel.api.context import ApiContext, bearer, context, context_of
from sentinel.api.listing import Line
from sentinel.config import AlertConfig
from sentinel.durations import end_after, parse_duration
from sentinel.enums import AlertStatus
from sentinel.errors import UsageError
from sentinel.store import ExecutionHistory

HERE = Path(__file__).parent
COOKIE = "sentinel_token"
DURATIONS = {"1h": "1 hour", "4h": "4 hours", "1d": "1 day"}
HISTORY_ROWS = 50
#: Every page is script-free: nothing may run, be framed, or post elsewhere.
HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'self'; img-src 'self'; "
    "form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
    "X-Frame-Options": "DENY",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "same-origin",
    "Cache-Control": "no-store",
}

router = APIRouter(include_in_schema=False)  # HTML, not part of the documented JSON API
Ctx = Annotated[ApiContext, Depends(context)]
FormStr = Annotated[str, Form()]
NextPath = Annotated[str, Form(alias="next")]


def utc(value: datetime | None) -> str:
    """Stored timestamps are naive UTC; say so on every one."""
    if value is None:
        return "—"
    if value.tzinfo is not None:
        value = value.astimezone(UTC).replace(tzinfo=None)
    return value.strftime("%Y-%m-%d %H:%M:%S\u00a0UTC")  # narrow cells break after the date


def after(value: datetime | None, moment: datetime) -> bool:
    """``value`` is later than ``moment``, whether either carries an offset (API models) or not."""
    if value is None:
        return False
    return value.replace(tzinfo=value.tzinfo or UTC) > moment.replace(tzinfo=moment.tzinfo or UTC)


def number(value: float | str | None) -> str:
    if value is None:
        return "—"
    if isinstance(value, float):
        return f"{value:.10g}"
    return str(value)


_env = jinja2.Environment(
    loader=jinja2.FileSystemLoader(HERE / "templates"),
    autoescape=True,
    trim_blocks=True,
    lstrip_blocks=True,
    undefined=jinja2.StrictUndefined,
    # The templates are the package's own files, fixed for the life of the process: checking
    # each one's modification time on every page load was a system call per template per load.
    auto_reload=False,
)
_env.filters.update(utc=utc, num=number)
_env.tests["after"] = after
templates = Jinja2Templates(env=_env)
_ROW = _env.get_template("_alert_row.html")


# -- auth ---------------------------------------------------------------------------------------
def _authed(ctx: ApiContext, request: Request, form_token: str = "") -> bool:
    """A token in the form, the login cookie or a bearer header (when one is configured)."""
    if ctx.token is None:
        return True
    presented = (form_token, request.cookies.get(COOKIE), bearer(request))
    return any(ctx.token_ok(value) for value in presented if value)


def _can_read(ctx: ApiContext, request: Request) -> bool:
    return ctx.public_read or _authed(ctx, request)


def _cross_site(request: Request) -> bool:
    """Browsers label every request's origin; only the page's own forms are same-origin."""
    site = request.headers.get("sec-fetch-site")
    return site is not None and site not in ("same-origin", "none")


def local_path(candidate: str, default: str) -> str:
    """``next`` may only lead back into this site: a path, never ``//host`` or a URL."""
    ok = (
        candidate.startswith("/")
        and not candidate.startswith("//")
        and "\\" not in candidate
        and all(ch.isprintable() and not ch.isspace() for ch in candidate)
    )
    return candidate if ok else default


# -- rendering ----------------------------------------------------------------------------------
def _root(request: Request) -> str:
    """Where the app is mounted (behind a proxy prefix), so links and redirects stay inside."""
    return str(request.scope.get("root_path", ""))


def _values(request: Request, values: dict[str, Any]) -> dict[str, Any]:
    """What every page's template is given besides its own values."""
    ctx = context_of(request)
    values.setdefault("now", ctx.clock())
    values.update(
        root=_root(request),
        durations=DURATIONS,
        needs_token=not _authed(ctx, request),
        logged_in=ctx.token is not None and ctx.token_ok(request.cookies.get(COOKIE)),
    )
    return values


def _page(request: Request, name: str, http_status: int = 200, **values: Any) -> Response:
    return templates.TemplateResponse(
        request, name, _values(request, values), status_code=http_status, headers=HEADERS
    )


#: Where the index's rows go: the page is rendered around it, then the encoded rows put in. No
#: text from a config or a database can end up as this markup: the environment escapes it.
_ROWS_SLOT = Markup("<!-- rows -->")


def _index_page(request: Request, rows: bytes, **values: Any) -> Response:
    """The index, with its rows already encoded: they are most of the page (a megabyte for
    1,000 alerts) and encoding them to UTF-8 on every load cost a millisecond; the rest of the
    page is rendered as every page is."""
    values = _values(request, {"rows": _ROWS_SLOT if rows else "", **values})
    head, _, tail = _env.get_template("index.html").render(values).partition(_ROWS_SLOT)
    body = b"".join((head.encode(), rows, tail.encode()))
    return Response(body, media_type="text/html", headers=HEADERS)


def _message(request: Request, status: int, title: str, text: str, login: bool = False) -> Response:
    path = request.url.path if request.method == "GET" else _root(request) + "/"
    return _page(request, "message.html", status, title=title, text=text, login=login, next=path)


def _login(request: Request, text: str = "This page needs the API token.") -> Response:
    return _message(request, 401, "Token required", text, login=True)


def _unknown(request: Request, name: str) -> Response:
    return _message(request, 404, "Unknown alert", f"There is no alert named '{name}'.")


def _lookup(ctx: ApiContext, name: str) -> AlertConfig | None:
    try:
        return ctx.deployment.config.alert(name)
    except UsageError:
        return None


# -- routes -------------------------------------------------------------------------------------
@router.get("/static/style.css")
def stylesheet() -> FileResponse:
    return FileResponse(
        HERE / "static" / "style.css",
        media_type="text/css",
        headers={"Cache-Control": "max-age=300"},
    )


@router.get("/")
def index(request: Request, ctx: Ctx) -> Response:
    if not _can_read(ctx, request):
        return _login(request)
    now = ctx.clock()
    listing = ctx.alert_list.listing(now)
    counts: dict[str, int] = {AlertStatus.ALERT: 0, AlertStatus.PENDING: 0, AlertStatus.OK: 0}
    counts["never run"] = 0
    for line in listing.lines:
        key = line.summary.state or "never run"
        counts[key] = counts.get(key, 0) + 1
    root, needs_token = _root(request), not _authed(ctx, request)
    # The rows, joined once per list: a list is reused only while its states and active silences
    # are what they were at this ``now``, so whether each alert shows as silenced is unchanged.
    rows = listing.rendered.get((root, needs_token))
    if rows is None:
        rows = "\n".join(
            _row(line, after(line.summary.silenced_until, now), root, needs_token)
            for line in listing.lines
        ).encode()
        listing.rendered[(root, needs_token)] = rows
    return _index_page(request, rows, counts=counts, now=now)


def _row(line: Line, silenced: bool, root: str, needs_token: bool) -> str:
    """An alert's row of the index, rendered once per alert state (and silence, mount point and
    token form): rendering 1,000 rows on every load was most of the page's time."""
    key = (silenced, root, needs_token)
    html = line.rendered.get(key)
    if html is None:
        html = _ROW.render(
            a=line.summary, silenced=silenced, root=root, needs_token=needs_token,
            durations=DURATIONS,
        )  # fmt: skip
        line.rendered[key] = html
    return html  # rendered by the autoescaping environment: already escaped


@router.get("/alerts/{name}")
def alert_page(name: str, request: Request, ctx: Ctx) -> Response:
    if not _can_read(ctx, request):
        return _login(request)
    alert = _lookup(ctx, name)
    if alert is None:
        return _unknown(request, name)
    now = ctx.clock()
    full = _authed(ctx, request)  # history (errors, context) needs the token, as in the API
    history = ExecutionHistory(ctx.deployment.state_engine)
    records = history.get_recent_executions(alert.name, 2 * CHART_POINTS) if full else []
    return _page(
        request,
        "alert.html",
        now=now,
        alert=views.detail(ctx.deployment, alert, now),
        status=views.status(ctx.deployment, alert, now),
        silences=ctx.deployment.silences_covering(alert.name),
        history=[views.execution(r) for r in records[:HISTORY_ROWS]],
        chart=chart(records),
        full=full,
    )


def _guard(request: Request, ctx: Ctx, token: str) -> Response | None:
    """The checks every form POST passes first: same-origin, then the token."""
    if _cross_site(request):
        return _message(request, 403, "Refused", "Cross-site form submissions are refused.")
    if not _authed(ctx, request, token):
        return _login(request, "A valid API token is required for this action.")
    return None


#: What a form does to its alert, given where to go back to (``next``, else the alert's page):
#: a page to answer with, or None to go back there with a 303.
Action = Callable[[AlertConfig, str], Response | None]


def _alert_form(
    request: Request, ctx: ApiContext, name: str, token: str, next_path: str, action: Action
) -> Response:
    """A form POST on one alert: guarded, for a known alert, then back where the form was."""
    refused = _guard(request, ctx, token)
    if refused is not None:
        return refused
    alert = _lookup(ctx, name)
    if alert is None:
        return _unknown(request, name)
    back = local_path(next_path, f"{_root(request)}/alerts/{alert.name}")
    return action(alert, back) or RedirectResponse(back, status_code=303)


@router.post("/alerts/{name}/silence")
def silence(
    name: str,
    request: Request,
    ctx: Ctx,
    duration: FormStr = "1h",
    reason: FormStr = "",
    token: FormStr = "",
    next_path: NextPath = "",
) -> Response:
    def act(alert: AlertConfig, _back: str) -> Response | None:
        try:
            until: datetime | None = end_after(ctx.clock(), parse_duration(duration))
        except ValueError:  # not a duration, or longer than ten years
            until = None
        if until is None or until <= ctx.clock() or len(reason) > 2000 or "\x00" in reason:
            text = (
                "Choose a duration such as 1h, 4h or 1d (at most 10 years), and a reason of at "
                "most 2000 characters."
            )
            return _message(request, 400, "Not silenced", text)
        ctx.deployment.silence(
            alert.name, until, reason=reason.strip() or None, created_by="status page"
        )
        return None

    return _alert_form(request, ctx, name, token, next_path, act)


@router.post("/alerts/{name}/unsilence")
def unsilence(
    name: str, request: Request, ctx: Ctx, token: FormStr = "", next_path: NextPath = ""
) -> Response:
    def act(alert: AlertConfig, back: str) -> Response | None:
        done = ctx.deployment.unsilence(alert.name)
        if not done.still_silenced_by:
            return None
        # Label silences cover every alert they match: say so, rather than come back still
        # silenced.
        ended = f"{done.ended} silence{'s' if done.ended != 1 else ''}"
        text = (
            f"Ended {ended} of {alert.name}, but it is still silenced by label silences, which "
            "cover every alert they match. End one by its id with 'sqlsentinel unsilence CONFIG "
            "--id ID'."
        )
        return _page(
            request,
            "message.html",
            title="Still silenced",
            text=text,
            login=False,
            next=back,
            silences=done.still_silenced_by,
        )

    return _alert_form(request, ctx, name, token, next_path, act)


@router.post("/login")
def login(request: Request, ctx: Ctx, token: FormStr = "", next_path: NextPath = "/") -> Response:
    if _cross_site(request):
        return _message(request, 403, "Refused", "Cross-site form submissions are refused.")
    if ctx.token is not None and not ctx.token_ok(token):
        return _login(request, "That token is not right.")
    response = RedirectResponse(local_path(next_path, _root(request) + "/"), status_code=303)
    if ctx.token is not None:
        response.set_cookie(
            COOKIE,
            token,
            httponly=True,
            samesite="strict",
            secure=request.url.scheme == "https",
            path="/",
        )
    return response


@router.post("/logout")
def logout(request: Request) -> Response:
    response = RedirectResponse(_root(request) + "/", status_code=303)
    response.delete_cookie(COOKIE, path="/", httponly=True, samesite="strict")
    return response
