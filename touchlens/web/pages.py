"""Server-rendered pages (Jinja2, autoescaped): every page calls the library through `WebState`, never
re-computes."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from touchlens.web.security import PageViewer, state

router = APIRouter(include_in_schema=False)


def render(request: Request, template: str, **context: Any) -> Response:
    from touchlens.web.app import templates

    user = getattr(request.state, "user", None)
    base = {"user": user, "csrf": getattr(request.state, "csrf", ""), "map_name": state(request).ws.map_or_empty().name}
    return templates.TemplateResponse(request, template, {**base, **context})


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, user: PageViewer) -> Response:
    m = state(request).ws.map_or_empty()
    return render(request, "overview.html", m=m, active="overview")
