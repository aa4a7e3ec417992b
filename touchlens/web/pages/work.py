"""The work pages: the roadmap board and the data page (counts, ingest history, quarantine)."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from pathlib import PurePath
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from touchlens.api import Workspace
from touchlens.insights.evidence import FindingView, evidence_items, finding_view, key_names, stake_text
from touchlens.insights.prioritise import card as card_data
from touchlens.insights.words import Names
from touchlens.model.map import Horizon, Opportunity, Stage, TouchpointMap, slugify
from touchlens.web.pages.common import CLOSED, _cached, _counts
from touchlens.web.security import PageViewer, state
from touchlens.web.templating import render

router = APIRouter(include_in_schema=False)


# ---- roadmap and data ------------------------------------------------------------------------------------------

# What a card's evidence holds about its findings; anything else (a hand-written card's notes) is shown as is.
CARD_EVIDENCE = {"score", "kind", "reach", "at_stake", "findings", "insight"}


@dataclass
class CardView:
    """A roadmap card as the board shows it."""

    key: str
    title: str
    description: str | None
    status: str
    source: str
    score: float | None
    effort: float | None
    stake: str | None
    touchpoints: list[tuple[str, str]]  # (key, name)
    findings: list[FindingView]
    evidence: list[tuple[str, str]]
    link: str


def _findings(o: Opportunity) -> list[dict[str, Any]]:
    """The findings behind a card; a card suggested by an earlier version holds one, as `insight`."""
    found = card_data(o)["findings"]
    insight = o.evidence.get("insight")
    return [f for f in found if isinstance(f, dict)] or ([insight] if isinstance(insight, dict) else [])


def card_view(o: Opportunity, names: Names) -> CardView:
    c = card_data(o)
    findings = [finding_view(f, names) for f in _findings(o)]
    score = c["score"]
    return CardView(
        key=o.key,
        title=o.title,
        description=o.description or (findings[0].summary if findings else None),
        status=o.status.value.replace("_", " "),
        source=o.source.value,
        score=float(score) if isinstance(score, int | float) else None,
        effort=o.effort,
        stake=stake_text(c["at_stake"]),
        touchpoints=[(t, names.touchpoint(t)) for t in o.touchpoints],
        findings=findings,
        evidence=evidence_items({k: v for k, v in o.evidence.items() if k not in CARD_EVIDENCE}, key_names(names)),
        link=_evidence_link(o),
    )


def _evidence_link(o: Opportunity) -> str:
    """The page of the card's main finding: its touchpoint's, else the first touchpoint's, else its section."""
    findings = _findings(o)
    main = next((f for f in findings if f.get("kind") == o.evidence.get("kind")), findings[0] if findings else {})
    subject = main.get("subject")
    if main.get("subject_type") == "touchpoint" and isinstance(subject, str):
        return f"/touchpoints/{subject}"
    if o.touchpoints:
        return f"/touchpoints/{o.touchpoints[0]}"
    section = main.get("section")
    return f"/insights#{section}" if isinstance(section, str) else "/insights"


@router.get("/roadmap", response_class=HTMLResponse)
def roadmap_page(request: Request, user: PageViewer) -> Response:
    ws = state(request).ws
    names = Names.of(ws.map_or_empty())
    items = ws.roadmap()
    # A done (or dropped) card leaves Now, Next and Later for a column of its own.
    open_ = [o for o in items if o.status not in CLOSED]
    columns = {h.value: [card_view(o, names) for o in open_ if o.horizon == h] for h in Horizon}
    columns["done"] = [card_view(o, names) for o in items if o.status in CLOSED]
    return render(
        request,
        "roadmap.html",
        active="roadmap",
        columns=columns,
        unplaced=[card_view(o, names) for o in open_ if o.horizon is None],
    )


def _history(request: Request) -> list[dict[str, Any]]:
    def read(ws: Workspace) -> list[dict[str, Any]]:
        return [r | {"file": PurePath(r["file"]).name} for r in ws.ingest_history(50)]

    return _cached(request, "history", (), read)


@router.get("/data", response_class=HTMLResponse)
def data_page(request: Request, user: PageViewer) -> Response:
    m = state(request).ws.map_or_empty()
    return render(
        request,
        "data.html",
        active="data",
        counts=_counts(request),
        history=_history(request),
        quarantine=_cached(request, "quarantine", (), lambda w: w.quarantine()),
        unmapped=_cached(request, "unmapped", (), lambda w: w.unmapped_events(20)),
        stages=_stages(m),
        channels=m.channels,
        slug=slugify,
        title=lambda event: event.replace("_", " ").replace("-", " ").strip().capitalize(),
        when=lambda t: t.strftime("%Y-%m-%d %H:%M") if isinstance(t, datetime) else "—",
    )


def _stages(m: TouchpointMap) -> list[Stage]:
    """Every stage of the map's journeys, once each, in journey order (a new touchpoint's choices)."""
    seen: dict[str, Stage] = {}
    for journey in m.journeys:
        for stage in journey.stages:
            seen.setdefault(stage.key, stage)
    return list(seen.values())
