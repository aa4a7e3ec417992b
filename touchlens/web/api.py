"""The REST API under /api: JSON for everything the pages show and edit (OpenAPI at /api/docs)."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request

from touchlens.web.security import Viewer, state

router = APIRouter(prefix="/api", tags=["api"])


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
