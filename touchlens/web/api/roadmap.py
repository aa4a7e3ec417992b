"""The roadmap: list the cards, move or close one, suggest cards from the findings."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from touchlens import editing
from touchlens.insights.prioritise import card
from touchlens.web.api.base import NOT_FOUND, TranslatingRoute, _ws
from touchlens.web.security import Editor, Viewer

router = APIRouter(route_class=TranslatingRoute)


# -- roadmap ----------------------------------------------------------------------------------------------


@router.get("/roadmap")
def roadmap(user: Viewer, request: Request) -> list[dict[str, Any]]:
    """Every card, Now first, then Next and Later, best score first, done last (as `touchlens roadmap list --json`)."""
    return [card(o) for o in _ws(request).roadmap()]


@router.patch("/roadmap/{key}", responses=NOT_FOUND)
def patch_roadmap(user: Editor, request: Request, key: str, changes: editing.OpportunityChanges) -> dict[str, Any]:
    """Move an opportunity to now / next / later or set its status; it becomes a person's."""
    updated = editing.update_opportunity(_ws(request), key, changes, actor=user.name)
    data: dict[str, Any] = updated.model_dump(mode="json")
    return data


@router.post("/roadmap/suggest")
def suggest_roadmap(user: Editor, request: Request) -> dict[str, Any]:
    """Turn the findings into scored cards (as `touchlens roadmap suggest --json`); `kept` lists people's cards a
    suggestion was linked to instead of added beside."""
    suggested, kept = editing.suggest_opportunities(_ws(request), actor=user.name)
    return {"suggested": [card(o) for o in suggested], "kept": kept}
