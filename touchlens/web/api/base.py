"""What every API route shares: the route class that refuses oversized bodies and answers library errors
as JSON (`TranslatingRoute`, `error_response`, `STATUS`), the error answers the OpenAPI document lists
(`ERRORS`, `NOT_FOUND`), and the request helpers the groups use.
"""

from __future__ import annotations

from collections.abc import Callable, Coroutine, Sequence
from typing import Any

from fastapi import Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from fastapi.routing import APIRoute
from pydantic import BaseModel, Field

from touchlens import editing
from touchlens.api import Workspace
from touchlens.errors import BadOption, MapError, TouchlensError, UnknownItem, WorkspaceError
from touchlens.limits import Busy, TooSlow
from touchlens.store.events import EventsStoreError
from touchlens.web.security import state

UPLOAD_LIMIT = 200 * 1024 * 1024
# Multipart framing and form fields around a file at the limit; no other request body comes near this.
BODY_LIMIT = UPLOAD_LIMIT + 1024 * 1024
# The first kind an error is decides its status; any other touchlens error is a bad input: 422.
STATUS: tuple[tuple[type[TouchlensError], int], ...] = (
    (editing.NotFound, 404),
    (UnknownItem, 422),
    (BadOption, 422),
    (WorkspaceError, 409),
    (EventsStoreError, 503),
    (Busy, 429),
    (TooSlow, 503),
)


def error_response(exc: TouchlensError) -> JSONResponse:
    """The HTTP answer to a library error: the status that fits it and its message (and a map's problems)."""
    if isinstance(exc, MapError):
        problems = [{"path": p.path, "message": p.message, "file": p.file, "line": p.line} for p in exc.problems]
        return JSONResponse({"detail": str(exc), "problems": problems}, status_code=422)
    status = next((code for kind, code in STATUS if isinstance(exc, kind)), 422)
    headers = {"Retry-After": str(exc.retry_after)} if isinstance(exc, Busy) else None
    body = {"detail": str(exc), **({"field": exc.field} if exc.field else {})}
    return JSONResponse(body, status_code=status, headers=headers)


class TranslatingRoute(APIRoute):
    """A route that refuses oversized bodies up front and answers touchlens errors with JSON."""

    def get_route_handler(self) -> Callable[[Request], Coroutine[Any, Any, Response]]:
        handler = super().get_route_handler()

        async def translated(request: Request) -> Response:
            length = request.headers.get("content-length", "")
            if length.isdigit() and int(length) > BODY_LIMIT:
                return JSONResponse({"detail": f"uploads are limited to {UPLOAD_LIMIT // 2**20} MB"}, 413)
            try:
                return await handler(request)
            except TouchlensError as exc:
                return error_response(exc)
            except RequestValidationError as exc:
                raise RequestValidationError(_without_body_inputs(exc.errors()), body=None) from None

        return translated


def _without_body_inputs(errors: Sequence[Any]) -> list[Any]:
    """Validation errors without the body's values: FastAPI would echo what was sent, a password included."""
    return [
        {k: v for k, v in e.items() if k != "input"} if isinstance(e, dict) and e.get("loc", ("",))[0] == "body" else e
        for e in errors
    ]


class MapProblem(BaseModel):
    path: str = Field(description="The field, as `touchpoints[3].stage`.")
    message: str
    file: str | None = None
    line: int | None = None


class ErrorAnswer(BaseModel):
    """Why a request failed."""

    detail: str | list[dict[str, Any]] = Field(
        description="A sentence; for a parameter or body of the wrong shape, FastAPI's list of what is wrong."
    )
    problems: list[MapProblem] | None = Field(None, description="For an invalid map edit: every problem.")


def _answer(description: str) -> dict[str, Any]:
    return {"model": ErrorAnswer, "description": description}


# Every route may answer these; the document says so, and the fuzz test checks nothing else comes back.
ERRORS: dict[int | str, dict[str, Any]] = {
    400: _answer("The body could not be parsed (not JSON, or a broken form)."),
    401: _answer("Not signed in, and no valid API token."),
    403: _answer("Without the role or scope this needs, or a session's change without its CSRF token."),
    409: _answer("The workspace has no map yet (or an admin tried to remove themselves)."),
    413: _answer(f"The request body is over {UPLOAD_LIMIT // 2**20} MB."),
    422: _answer("A parameter or body that is malformed or names something unknown; nothing was changed."),
    429: _answer(
        "You already run `[web] heavy_per_user` expensive analyses at once; send again after Retry-After seconds."
    ),
    503: _answer(
        "The events store could not be read or written, or the analysis ran past `[web] analysis_seconds` and "
        "was stopped; try again (narrower)."
    ),
}
NOT_FOUND: dict[int | str, dict[str, Any]] = {404: _answer("The key in the path names nothing.")}


def _ws(request: Request) -> Workspace:
    return state(request).ws


def _keys(text: str | None) -> tuple[str, ...]:
    return tuple(s.strip() for s in (text or "").split(",") if s.strip())


def _scorecard(request: Request, window: str, by: str) -> dict[str, Any]:
    return state(request).cached("scorecard", (window, by), lambda: _ws(request).scorecard(window, by).to_dict())


def _feedback(request: Request, by: str, period: str, themes: bool) -> dict[str, Any]:
    ws = _ws(request)
    return state(request).cached("feedback", (by, period, themes), lambda: ws.feedback(by, period, themes).to_dict())
