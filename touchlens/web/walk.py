"""The walkthrough an auditor follows: `/walk/{token}`, one touchpoint a page, no sign-in (the signed link opens
this audit's walk and nothing else). Plain forms, so it works without JavaScript; a photo or screenshot may go
with each step (PNG or JPEG, at most 5 MB)."""

from __future__ import annotations

import asyncio
from typing import Annotated, Any

from fastapi import APIRouter, File, Form, Request, UploadFile
from fastapi.responses import RedirectResponse, Response

from touchlens.audits import MAX_PHOTO, LinkRefused, Step
from touchlens.errors import BadOption, UnknownItem
from touchlens.web.state import WebState
from touchlens.web.templating import templates

router = APIRouter(include_in_schema=False)
HEADERS = {"Cache-Control": "no-store", "Referrer-Policy": "no-referrer", "X-Robots-Tag": "noindex"}
EMOTIONS = [(2, "very positive"), (1, "positive"), (0, "neutral"), (-1, "negative"), (-2, "very negative")]


@router.get("/walk/{token}")
def walk_start(request: Request, token: str) -> Response:
    """The first step not recorded yet (or the end, when all are)."""
    audits = _state(request).ws.audits
    try:
        audit = audits.opened(token)
    except LinkRefused as exc:
        return _page(request, "refused", None, 404, problem=str(exc))
    done = audits.show(audit["id"])["steps"]
    first = next((i for i, s in enumerate(done, 1) if s["recorded"] is None), None)
    return RedirectResponse(f"/walk/{token}/{first}" if first else f"/walk/{token}/done", status_code=303)


@router.get("/walk/{token}/done")
def walk_done(request: Request, token: str) -> Response:
    try:
        _state(request).ws.audits.opened(token)
    except LinkRefused as exc:
        return _page(request, "refused", None, 404, problem=str(exc))
    return _page(request, "done", None, 200)


@router.get("/walk/{token}/{number}")
def walk_step(request: Request, token: str, number: int) -> Response:
    try:
        step = _state(request).ws.audits.step(token, number)
    except UnknownItem as exc:
        return _page(request, "refused", None, 404, problem=str(exc))
    return _page(request, "step", step, 200)


@router.post("/walk/{token}/{number}")
async def walk_record(
    request: Request,
    token: str,
    number: int,
    met: Annotated[str, Form()] = "",
    annoyances: Annotated[str, Form()] = "",
    think: Annotated[str, Form()] = "",
    did: Annotated[str, Form()] = "",
    feel: Annotated[str, Form()] = "",
    emotion: Annotated[str, Form()] = "",
    photo: Annotated[UploadFile | None, File()] = None,
) -> Response:
    audits = _state(request).ws.audits
    data = await photo.read(MAX_PHOTO + 1) if photo is not None else b""
    answer = {"met": met, "annoyances": annoyances, "think": think, "did": did, "feel": feel, "emotion": emotion}
    try:
        following = await asyncio.to_thread(audits.record, token, number, answer, data or None)
    except BadOption as exc:
        step = audits.step(token, number)
        return _page(request, "step", step, 422, problem=str(exc))
    except UnknownItem as exc:
        return _page(request, "refused", None, 404, problem=str(exc))
    return RedirectResponse(f"/walk/{token}/{following or 'done'}", status_code=303)


def _page(request: Request, view: str, step: Step | None, status: int, **extra: Any) -> Response:
    context = {"view": view, "step": step, "emotions": EMOTIONS, "company": _state(request).ws.map_or_empty().name,
               **extra}  # fmt: skip
    return templates.TemplateResponse(request, "walk.html", context, status_code=status, headers=HEADERS)


def _state(request: Request) -> WebState:
    web: WebState = request.app.state.web
    return web
