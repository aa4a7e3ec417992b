"""The survey page a customer sees: `/s/{token}`, the signed link's question, answered once; no sign-in.

Plain HTML forms, so it works without JavaScript and in any mail client's browser. A link with `?score=N` (the
one-click rating in an e-mail or SMS) stores the score on arrival and offers the comment box after. Answers are
written by the server's one writer, so they never race live events. Nothing here is cached or indexed, and the
token never leaves the page in a Referer.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Annotated, Any, TypeVar

import duckdb
from fastapi import APIRouter, Form, Request
from fastapi.responses import JSONResponse, Response

from touchlens.errors import BadOption
from touchlens.ingest.survey_links import LinkError
from touchlens.surveys import Question
from touchlens.web.collect import live_writer
from touchlens.web.state import WebState
from touchlens.web.templating import templates

T = TypeVar("T")
router = APIRouter(include_in_schema=False)
STATUS = {"invalid": 400, "answered": 409, "expired": 410, "erased": 410, "closed": 410}
# Any site may embed the widget: the signed link is the permission and no cookie is sent, so any origin may read.
HEADERS = {
    "Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex",
    "Access-Control-Allow-Origin": "*", "Vary": "Accept",
}  # fmt: skip


@router.get("/s/{token}")
async def survey_page(request: Request, token: str, score: str | None = None) -> Response:
    """The question, or (with `score`) the one-click answer stored and the comment box offered."""
    ws = _state(request).ws
    try:
        q = await asyncio.to_thread(ws.surveys.question, token)
    except LinkError as exc:
        return _refused(request, exc)
    if score is None:
        return _page(request, "ask", q)
    try:
        await _write(request, lambda con: ws.surveys.answer_on(con, token, score))
    except LinkError as exc:
        return _refused(request, exc)
    except BadOption as exc:
        return _page(request, "ask", q, 422, problem=str(exc))
    return _page(request, "comment" if q.comment else "thanks", q)


@router.post("/s/{token}")
async def survey_answer(
    request: Request,
    token: str,
    score: Annotated[str, Form()] = "",
    comment: Annotated[str, Form()] = "",
) -> Response:
    """The form's answer: the score and the comment together."""
    ws = _state(request).ws
    try:
        q = await asyncio.to_thread(ws.surveys.question, token)
    except LinkError as exc:
        return _refused(request, exc)
    try:
        await _write(request, lambda con: ws.surveys.answer_on(con, token, score, comment))
    except LinkError as exc:
        return _refused(request, exc)
    except BadOption as exc:
        return _page(request, "ask", q, 422, problem=str(exc), comment=comment)
    return _page(request, "thanks", q)


@router.post("/s/{token}/comment")
async def survey_comment(request: Request, token: str, comment: Annotated[str, Form()] = "") -> Response:
    """The comment after a one-click rating (once; an answer that has one keeps it)."""
    ws = _state(request).ws
    try:
        added = await _write(request, lambda con: ws.surveys.comment_on(con, token, comment))
    except LinkError as exc:
        return _refused(request, exc)
    if added:
        return _render(request, "thanks", None, 200)
    problem = ws.surveys.why_no_comment(token, comment)
    return _render(request, "refused", None, 409, problem=problem, reason="comment")


async def _write(request: Request, work: Callable[[duckdb.DuckDBPyConnection], T]) -> T:
    return await asyncio.wrap_future(live_writer(_state(request)).call(work))


def _page(request: Request, step: str, q: Question, status: int = 200, **extra: str) -> Response:
    return _render(request, step, q, status, **extra)


def _refused(request: Request, exc: LinkError) -> Response:
    return _render(request, "refused", None, STATUS.get(exc.reason, 400), problem=str(exc), reason=exc.reason)


def _render(request: Request, step: str, q: Question | None, status: int, **extra: str) -> Response:
    company = _state(request).ws.map_or_empty().name
    if "application/json" in request.headers.get("accept", ""):  # the widget
        return JSONResponse(_as_json(step, q, company, extra), status_code=status, headers=HEADERS)
    context = {"step": step, "q": q, "company": company, **extra}
    return templates.TemplateResponse(request, "survey.html", context, status_code=status, headers=HEADERS)


def _as_json(step: str, q: Question | None, company: str, extra: dict[str, str]) -> dict[str, Any]:
    """What the widget shows: the step, the question when there is one, the problem when refused."""
    data: dict[str, Any] = {
        "step": step,
        "company": company,
        **{k: extra[k] for k in ("problem", "reason") if k in extra},
    }
    if q is not None:
        data["question"] = {
            "touchpoint": q.title, "text": q.text, "metric": q.link.metric, "scores": q.scores,
            "low": q.low, "high": q.high, "comment": q.comment,
        }  # fmt: skip
    return data


def _state(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web
