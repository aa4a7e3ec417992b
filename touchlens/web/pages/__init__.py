"""Server-rendered pages (Jinja2, autoescaped): every page calls the library through `WebState`, never
re-computes. Each analysis a page shows goes through `WebState.cached`, so a page is fast after its first view
until the data or the map changes. Charts are drawn in the browser by Plotly from JSON the page carries in a
`<script type="application/json">` element (the CSP allows no inline scripts).

One module per group of pages; `router` holds them all, in the order they were always registered.
"""

from __future__ import annotations

from fastapi import APIRouter

from touchlens.insights.evidence import evidence_items, stake_text
from touchlens.web.pages import alerts, audits, cases, journeys, overview, voice, work
from touchlens.web.pages import map as map_pages

__all__ = ["evidence_items", "router", "stake_text"]

router = APIRouter(include_in_schema=False)
for group in (overview, map_pages, journeys, voice, work, cases, alerts, audits):
    router.include_router(group.router)
