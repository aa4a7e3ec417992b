"""The REST API under /api: JSON for everything the pages show and edit (OpenAPI at /api/docs).

Viewers read; editors also change the map, the roadmap and the data; admins also manage users. A read-scoped
token never writes. Each analysis answers with the JSON its `touchlens analyze … --json` command prints, cached
until the data or the map changes. Library errors become JSON: an unknown key in the path 404, a bad parameter
or an invalid map 422 (with every problem), a missing map 409.

One module per group of routes; `router` holds them all under /api, in the order they were always registered
(`/touchpoints` before `/touchpoints/{key}`, `/feedback` before `/feedback/comments`).
"""

from __future__ import annotations

from fastapi import APIRouter

from touchlens.web.api import admin, alerts, analyses, base, cases, data, proactive, roadmap, surveys
from touchlens.web.api import map as map_routes
from touchlens.web.api.base import ERRORS, NOT_FOUND, STATUS, TranslatingRoute, error_response

__all__ = ["ERRORS", "NOT_FOUND", "STATUS", "TranslatingRoute", "base", "data", "error_response", "router"]

router = APIRouter(prefix="/api", tags=["api"], route_class=TranslatingRoute, responses=ERRORS)
for group in (map_routes, analyses, roadmap, data, admin, surveys, cases, alerts, proactive):
    router.include_router(group.router)
