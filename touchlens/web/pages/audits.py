"""The walkthrough pages for the team: the audits, one audit's record against the map, starting one (editors),
and the photos auditors sent (anyone signed in)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Form, Request
from fastapi.responses import FileResponse, HTMLResponse, Response

from touchlens.errors import UnknownItem
from touchlens.web.pages.common import _feedback
from touchlens.web.security import PageEditor, PageViewer, state
from touchlens.web.templating import render

router = APIRouter(include_in_schema=False)


@router.get("/audits", response_class=HTMLResponse)
def audits_page(request: Request, user: PageViewer) -> Response:
    ws = state(request).ws
    return render(request, "audits.html", active="audits", audits=ws.audits.list(), journeys=ws.map_or_empty().journeys)


@router.post("/audits", response_class=HTMLResponse)
def start_audit(
    request: Request, user: PageEditor, journey: Annotated[str, Form()] = "", auditor: Annotated[str, Form()] = ""
) -> Response:
    audits = state(request).ws.audits
    audit_id, link = audits.start(journey, auditor, actor=user.name)
    return render(request, "audit.html", active="audits", audit=audits.show(audit_id), link=link)


@router.get("/audits/compare", response_class=HTMLResponse)
def compare_audits(request: Request, user: PageViewer, journey: str = "") -> Response:
    """A journey's walkthroughs side by side, over time, and against the themes of the comments."""
    ws = state(request).ws
    themes = {r.key: r.themes or [] for r in _feedback(request, themes=True).rows}
    try:
        found = ws.audits.compare(journey, themes)
    except UnknownItem as exc:
        return render(request, "error.html", 404, title="Not found", message=str(exc))
    return render(request, "audit_compare.html", active="audits", c=found)


@router.get("/audits/{audit_id}", response_class=HTMLResponse)
def audit_page(request: Request, user: PageViewer, audit_id: int) -> Response:
    audits = state(request).ws.audits
    try:
        audit = audits.show(audit_id)
    except UnknownItem as exc:
        return render(request, "error.html", 404, title="Not found", message=str(exc))
    link = audits.link(audit_id) if user.can("editor", "write") else None
    return render(request, "audit.html", active="audits", audit=audit, link=link)


@router.get("/audits/{audit_id}/photo/{touchpoint}")
def audit_photo(request: Request, user: PageViewer, audit_id: int, touchpoint: str) -> Response:
    path = state(request).ws.audits.photo(audit_id, touchpoint)
    if path is None:
        return render(request, "error.html", 404, title="Not found", message="no photo for this step")
    kind = "image/png" if path.suffix == ".png" else "image/jpeg"
    return FileResponse(path, media_type=kind, headers={"Cache-Control": "private, no-store"})
