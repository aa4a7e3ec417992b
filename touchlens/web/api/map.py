"""Who is signed in, and the map: read it whole, list and read touchpoints, edit a touchpoint or a stage."""

from __future__ import annotations

from typing import Annotated, Any

from fastapi import APIRouter, HTTPException, Query, Request

from touchlens import editing
from touchlens.model.views import TouchpointFilter
from touchlens.web.api.base import NOT_FOUND, TranslatingRoute, _feedback, _scorecard, _ws
from touchlens.web.collect import on_writer
from touchlens.web.security import Editor, Viewer, state

router = APIRouter(route_class=TranslatingRoute)


# -- who, and the map -------------------------------------------------------------------------------------


@router.get("/me")
def me(user: Viewer, request: Request) -> dict[str, Any]:
    """Who is signed in, their role, and the CSRF token scripts send with changes."""
    return {"name": user.name, "role": user.role, "scopes": list(user.scopes), "csrf": request.state.csrf}


@router.get("/map")
def get_map(user: Viewer, request: Request) -> dict[str, Any]:
    """The whole touchpoint map, as `touchlens map export --format json` writes it."""
    ws = state(request).ws
    data: dict[str, Any] = ws.map_or_empty().model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


@router.get("/touchpoints")
def list_touchpoints(
    user: Viewer,
    request: Request,
    stage: Annotated[str | None, Query(description="Only this stage (key).")] = None,
    channel: Annotated[str | None, Query(description="Only this channel (key).")] = None,
    persona: Annotated[str | None, Query(description="Only touchpoints on this persona's journeys.")] = None,
    owner: Annotated[str | None, Query(description="Only this owner (case-insensitive).")] = None,
    phase: Annotated[str | None, Query(description="pre-purchase, purchase or post-purchase.")] = None,
) -> dict[str, Any]:
    """The touchpoint inventory, optionally filtered: `{"touchpoints": [...]}` as `touchlens touchpoints --json`."""
    ws = _ws(request)
    found = ws.touchpoints(TouchpointFilter(stage, channel, persona, owner, phase)) if ws.has_map() else []
    return {"touchpoints": [t.model_dump(mode="json", by_alias=True, exclude_defaults=True) for t in found]}


@router.post("/touchpoints", status_code=201)
def create_touchpoint(user: Editor, request: Request, new: editing.NewTouchpoint) -> dict[str, Any]:
    """A new touchpoint claiming an event no touchpoint claims (the Data page's "map it"), then every stored event
    remapped; 422 with every problem (key taken, unknown stage, the event already claimed) and nothing stored.
    `mapped`: the stored events it now holds."""
    ws = _ws(request)
    created = editing.add_touchpoint(ws, new, actor=user.name)
    counts = on_writer(state(request), lambda: ws.remap(actor=user.name))
    state(request).changed()  # a page computed between the map's save and the remap is stale too
    return {
        "touchpoint": created.model_dump(mode="json", by_alias=True, exclude_none=True),
        "mapped": counts.get(new.key, 0),
    }


@router.get("/touchpoints/{key}", responses=NOT_FOUND)
def get_touchpoint(user: Viewer, request: Request, key: str) -> dict[str, Any]:
    """One touchpoint with its scorecard row and its feedback row (each null when there is no data)."""
    found = _ws(request).map_or_empty().touchpoint(key)
    if found is None:
        raise HTTPException(404, f"unknown touchpoint '{key}'")
    card = _scorecard(request, "30d", "touchpoint")
    report = _feedback(request, "touchpoint", "week", False)
    return {
        "touchpoint": found.model_dump(mode="json", by_alias=True, exclude_none=True),
        "score": next((r for r in card["touchpoints"] if r["touchpoint"] == key), None),
        "feedback": next((r for r in report["groups"] if r["key"] == key), None),
    }


@router.patch("/touchpoints/{key}", responses=NOT_FOUND)
def patch_touchpoint(user: Editor, request: Request, key: str, changes: editing.TouchpointChanges) -> dict[str, Any]:
    """Change any of a touchpoint's fields; 422 with every problem (an unknown stage, say) and nothing stored."""
    updated = editing.update_touchpoint(_ws(request), key, changes, actor=user.name)
    data: dict[str, Any] = updated.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data


@router.patch("/journeys/{journey}/stages/{stage}", responses=NOT_FOUND)
def patch_stage(
    user: Editor, request: Request, journey: str, stage: str, changes: editing.StageChanges
) -> dict[str, Any]:
    """Change a stage as one journey describes it: goal, tasks, questions, emotion (-2..2), weaknesses …"""
    updated = editing.update_stage(_ws(request), journey, stage, changes, actor=user.name)
    data: dict[str, Any] = updated.model_dump(mode="json", by_alias=True, exclude_none=True)
    return data
