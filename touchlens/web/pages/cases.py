"""The follow-up pages: the case list with how each touchpoint's cases were handled, and one case with the
customer's journey, where an editor assigns or closes it (plain forms, with the session's CSRF token)."""

from __future__ import annotations

from datetime import UTC, date, datetime, time
from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, RedirectResponse, Response

from touchlens.errors import BadOption, UnknownItem
from touchlens.web.security import PageEditor, PageViewer, state
from touchlens.web.templating import render

router = APIRouter(include_in_schema=False)
STATUS_CHOICES = ("open", "in_progress", "closed", "all")


@router.get("/cases", response_class=HTMLResponse)
def cases_page(request: Request, user: PageViewer, status: str = "open") -> Response:
    cases = state(request).ws.cases
    shown = status if status in STATUS_CHOICES else "open"
    return render(
        request, "cases.html", active="cases", cases=cases.list(shown), stats=cases.stats(), status=shown,
        choices=STATUS_CHOICES, now=datetime.now(UTC), names=_names(request),
    )  # fmt: skip


@router.get("/cases/{case_id}", response_class=HTMLResponse)
def case_page(request: Request, user: PageViewer, case_id: int) -> Response:
    try:
        case = state(request).ws.cases.show(case_id)
    except UnknownItem as exc:
        return render(request, "error.html", 404, title="Not found", message=str(exc))
    return render(request, "case.html", active="cases", case=case, now=datetime.now(UTC), names=_names(request))


@router.post("/cases/{case_id}/assign")
def assign_case(
    request: Request,
    user: PageEditor,
    case_id: int,
    assignee: Annotated[str, Form()] = "",
    due: Annotated[str, Form()] = "",
) -> Response:
    state(request).ws.cases.assign(case_id, assignee, _due(due))
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


@router.post("/cases/{case_id}/close")
def close_case(request: Request, user: PageEditor, case_id: int, note: Annotated[str, Form()] = "") -> Response:
    state(request).ws.cases.close(case_id, note)
    return RedirectResponse(f"/cases/{case_id}", status_code=303)


def _names(request: Request) -> dict[str, str]:
    return {t.key: t.label for t in state(request).ws.map_or_empty().touchpoints}


def _due(text: str) -> datetime | None:
    if not text.strip():
        return None
    try:
        return datetime.combine(date.fromisoformat(text.strip()), time(23, 59), UTC)
    except ValueError as exc:
        raise BadOption(f"due: '{text}' is not a date (YYYY-MM-DD)") from exc
