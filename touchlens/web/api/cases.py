"""Follow-up cases over the API: list, read (with the customer's journey), assign, close, and the per-touchpoint
measures, as `touchlens cases …` prints them."""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, date, datetime, time
from typing import Any

from fastapi import APIRouter, HTTPException, Request
from pydantic import BaseModel, Field

from touchlens.errors import UnknownItem
from touchlens.web.api.base import NOT_FOUND, TranslatingRoute, _ws
from touchlens.web.security import Editor, Viewer

router = APIRouter(route_class=TranslatingRoute)


class Assignment(BaseModel):
    assignee: str = Field(min_length=1, max_length=200, description="Who takes the case.")
    due: date | None = Field(default=None, description="A new due date (YYYY-MM-DD): due by its end, in UTC.")


class Closing(BaseModel):
    note: str = Field(min_length=1, max_length=5000, description="What was done.")


@router.get("/cases")
def list_cases(user: Viewer, request: Request, status: str = "open", touchpoint: str | None = None) -> list[Any]:
    """Cases, newest first (as `cases list --json`): status open (open or in progress), in_progress, closed, all."""
    return [c.to_dict() for c in _ws(request).cases.list(status, touchpoint)]


@router.get("/cases/stats")
def case_stats(user: Viewer, request: Request) -> list[Any]:
    """Per touchpoint: cases, time to first action and to close, customers who came back (as `cases stats`)."""
    return [f.to_dict() for f in _ws(request).cases.stats()]


@router.get("/cases/{case_id}", responses=NOT_FOUND)
def get_case(user: Viewer, request: Request, case_id: int) -> dict[str, Any]:
    """One case with the customer's journey before they answered and their latest answers."""
    return _found(lambda: _ws(request).cases.show(case_id).to_dict())


@router.post("/cases/{case_id}/assign", responses=NOT_FOUND)
def assign_case(user: Editor, request: Request, case_id: int, body: Assignment) -> dict[str, Any]:
    """Give the case to someone; it is in progress from then (its first action, if it had none)."""
    due = None if body.due is None else datetime.combine(body.due, time(23, 59), UTC)
    return _found(lambda: _ws(request).cases.assign(case_id, body.assignee, due).to_dict())


@router.post("/cases/{case_id}/close", responses=NOT_FOUND)
def close_case(user: Editor, request: Request, case_id: int, body: Closing) -> dict[str, Any]:
    """Close the case with a note saying what was done."""
    return _found(lambda: _ws(request).cases.close(case_id, body.note).to_dict())


def _found(work: Callable[[], dict[str, Any]]) -> dict[str, Any]:
    """An unknown case number in the path is 404, like an unknown key elsewhere."""
    try:
        return work()
    except UnknownItem as exc:
        raise HTTPException(404, str(exc)) from exc
