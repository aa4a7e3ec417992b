"""The web app: one FastAPI application over one workspace, with pages, the REST API and sign-in."""

from __future__ import annotations

import gc
import logging
import time
import traceback
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import plotly
from fastapi import FastAPI, Request
from fastapi.responses import FileResponse, JSONResponse, RedirectResponse, Response
from fastapi.routing import APIRoute
from fastapi.staticfiles import StaticFiles
from starlette.datastructures import MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

import touchlens
from touchlens.errors import TouchlensError
from touchlens.web import api, auth, collect, pages, privacy, registry_routes, surveys, walk
from touchlens.web.alerting import run_proactive, watch_alerts
from touchlens.web.pages.common import warm_start
from touchlens.web.security import SignInRequired
from touchlens.web.state import REQUEST_STATE, WebState
from touchlens.web.templating import render

HERE = Path(__file__).parent
JSON_PREFIXES = ("/api/", "/v1/")
TITLES = {404: "Not found", 409: "Not ready", 422: "Cannot show this", 429: "Busy", 503: "Not available now"}
# Plotly.js from the installed `plotly` package, so charts work with no network.
PLOTLY_JS = Path(plotly.__file__).parent / "package_data" / "plotly.min.js"
log = logging.getLogger("touchlens.web")
# Python's full collections walk every long-lived object of the server (the libraries, the app, cached
# answers): 100-270 ms each, every thread stopped, several a second while live events flowed, which made most of
# the live ingest's slowest commits. What exists at start is frozen out of them, and a larger young generation
# and rarer full collections keep the rest cheap (benchmarks/load.py).
COLLECTOR_THRESHOLDS = (50_000, 20, 100)


def settle_collector() -> None:
    """For a long-running server, once its app is made: collect, freeze what is left, and collect less often."""
    gc.collect()
    gc.freeze()
    gc.set_threshold(*COLLECTOR_THRESHOLDS)


def create_app(root: str | Path) -> FastAPI:
    """The app for the workspace at `root`."""
    ws = touchlens.open(Path(root))
    ws.share_connection()
    ws.clear_uploads()  # what a killed server left half-ingested: no request is using it now
    app = FastAPI(
        title="touchlens",
        description="Know, measure and improve every customer touchpoint.",
        docs_url="/api/docs",
        openapi_url="/api/openapi.json",
        redoc_url=None,
        lifespan=_lifespan,
    )
    web = WebState(ws)
    app.state.web = web
    app.mount("/static", StaticFiles(directory=HERE / "static"), name="static")
    app.include_router(auth.router)
    app.include_router(api.router)
    app.include_router(registry_routes.api_router)
    app.include_router(collect.router)
    app.include_router(privacy.router)
    app.include_router(surveys.router)
    app.include_router(walk.router)
    app.include_router(pages.router)
    app.include_router(registry_routes.page_router)

    @app.get("/vendor/plotly.min.js", include_in_schema=False)
    def plotly_js() -> FileResponse:
        return FileResponse(PLOTLY_JS, media_type="text/javascript", headers={"Cache-Control": "max-age=86400"})

    @app.exception_handler(SignInRequired)
    def sign_in(request: Request, exc: SignInRequired) -> Response:
        return RedirectResponse(f"/login?next={request.url.path}", status_code=303)

    app.add_exception_handler(collect.LiveRefused, collect.refused)

    @app.exception_handler(TouchlensError)
    def library_error(request: Request, exc: TouchlensError) -> Response:
        """A library error a route does not handle itself (a refused or stopped analysis): the API's status, as
        JSON to a client of the API and as a page, with the same status and message, to a person."""
        answer = api.error_response(exc)
        if request.url.path.startswith(JSON_PREFIXES):
            return answer
        title = TITLES.get(answer.status_code, "Cannot show this")
        wait = {"Retry-After": answer.headers["retry-after"]} if "retry-after" in answer.headers else None
        return render(request, "error.html", answer.status_code, wait, title=title, message=str(exc))

    for kind in (RecursionError, OverflowError, ValueError):
        app.add_exception_handler(kind, malformed)
    app.add_middleware(SecurityHeaders)
    app.add_middleware(RequestContext)

    return app


def malformed(request: Request, exc: Exception) -> Response:
    """Input too deep or too large to parse (10,000 nested brackets, a 5,000-digit number) is the client's
    fault: 400, no traceback to them, one line and the traceback in the log. Any other ValueError is a bug,
    re-raised so that the server answers 500 and logs it as one."""
    if isinstance(exc, ValueError | RecursionError) and not _from_parsing(exc):
        raise exc
    log.warning("malformed input to %s %s: %s", request.method, request.url.path, type(exc).__name__, exc_info=exc)
    return JSONResponse(
        {"detail": "the request could not be parsed: it is nested too deeply or holds a number too large"}, 400
    )


def _from_parsing(exc: Exception) -> bool:
    """Whether an error comes from parsing input: raised while decoding JSON (not encoding it: that would be
    our bug), or Python's bound on the digits of an integer read from text."""
    frames = traceback.extract_tb(exc.__traceback__)
    inner = frames[-1].filename.replace("\\", "/") if frames else ""
    return inner.endswith(("/json/decoder.py", "/json/__init__.py")) or "integer string conversion" in str(exc)


def _policy(path: str) -> str:
    """Everything is served from here: scripts and styles from this origin only, no framing. The OpenAPI page
    is FastAPI's Swagger UI, which loads from its CDN (the JSON at /api/openapi.json needs nothing)."""
    if path.startswith(("/s/", "/walk/")):  # the pages for customers and auditors: nothing inline, never framed
        return "default-src 'self'; img-src 'self' data:; style-src 'self'; script-src 'self'; frame-ancestors 'none'"
    cdn = " https://cdn.jsdelivr.net" if path == "/api/docs" else ""
    return (
        f"default-src 'self'{cdn}; img-src 'self' data:{cdn} https://fastapi.tiangolo.com; "
        f"style-src 'self' 'unsafe-inline'{cdn}; script-src 'self'{cdn}"
        + (" 'unsafe-inline'" if cdn else "")
        + "; frame-ancestors 'none'"
    )


class SecurityHeaders:
    """Security headers on every response, as plain ASGI: Starlette's BaseHTTPMiddleware costs a task group per
    request, which the live endpoint felt at hundreds of requests a second."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        policy = _policy(scope["path"])

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                headers.setdefault("Content-Security-Policy", policy)
                headers.setdefault("X-Content-Type-Options", "nosniff")
                headers.setdefault("Referrer-Policy", "same-origin")
            await send(message)

        await self.app(scope, receive, with_headers)


class RequestContext:
    """Makes each request's `request.state` reachable from the code serving it (`WebState.cached` reads the
    user there to count their expensive analyses), as plain ASGI like `SecurityHeaders`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        state = scope.setdefault("state", {})
        token = REQUEST_STATE.set(state)

        async def with_age(message: Message) -> None:
            # An answer given from data older than the store's (WebState.cached): HTTP's own word for it.
            if message["type"] == "http.response.start" and "stale_since" in state:
                age = max(0, int(time.time() - state["stale_since"]))
                message.setdefault("headers", []).append((b"age", str(age).encode()))
            await send(message)

        try:
            await self.app(scope, receive, with_age)
        finally:
            REQUEST_STATE.reset(token)


@asynccontextmanager
async def _lifespan(app: FastAPI) -> AsyncIterator[None]:
    watcher = app.state.web.watch()  # answers recomputed in the background as the data changes
    alerting = watch_alerts(app.state.web)  # alert rules checked as data arrives
    proactive = run_proactive(app.state.web)  # the map's proactive rules run
    warm_start(app.state.web)  # and the first pages' answers computed before anyone asks
    yield
    watcher.set()
    alerting.set()
    proactive.set()
    for stop in getattr(app.state, "stop_with_app", []):
        stop()
    # On a clean shutdown the writer commits what is queued; after a crash, unacknowledged batches are resent.
    writer = app.state.web.live
    if writer is not None:
        writer.stop()


def routes(app: FastAPI) -> set[tuple[str, str]]:
    """(method, path) of every route the app serves, inside included routers too (FastAPI 0.16x keeps them
    nested): what the role-matrix test and the page benchmark walk."""
    return _walk(list(app.routes))


def _walk(found_routes: list[Any], prefix: str = "") -> set[tuple[str, str]]:
    found: set[tuple[str, str]] = set()
    for route in found_routes:
        inner = getattr(route, "original_router", None)
        if inner is not None:
            found |= _walk(list(inner.routes), prefix + route.include_context.prefix)
        elif isinstance(route, APIRoute):
            found |= {(method, prefix + route.path) for method in route.methods or ()}
    return found
