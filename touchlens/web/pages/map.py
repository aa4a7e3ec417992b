"""The map's pages: the journey canvas, a touchpoint's page, the inventory (and its CSV) and the matrix."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from touchlens.analytics.drivers_model import FEATURE_WORDS, DriversReport, difference_text
from touchlens.analytics.feedback import FeedbackReport, FeedbackRow
from touchlens.api import Workspace
from touchlens.errors import TouchlensError
from touchlens.insights.evidence import finding_view
from touchlens.insights.words import Names
from touchlens.limits import Busy, TooSlow
from touchlens.model.map import Phase, Stage, Targets, TouchpointMap
from touchlens.model.views import JourneyView, journey_view
from touchlens.queries.journeys import NeighboursQuery
from touchlens.web.pages.common import (
    Card,
    _cached,
    _cards,
    _feedback,
    _insights,
    _scorecard,
    _trends,
    _verbatims,
)
from touchlens.web.security import PageEditor, PageViewer, state
from touchlens.web.templating import render

router = APIRouter(include_in_schema=False)
DRIVER_SAMPLES = 0
NONE = "-"  # the column or row of touchpoints without a stage or channel


# ---- journey map canvas ----------------------------------------------------------------------------------------


@dataclass
class Column:
    """A stage on the canvas and the journey whose description of it is shown (and edited)."""

    key: str
    name: str
    journey: str | None
    stage: Stage | None


@dataclass
class Canvas:
    columns: list[Column]
    rows: list[tuple[str, str]]  # (channel key, name)
    cells: dict[str, dict[str, list[Card]]] = field(default_factory=dict)


def _columns(view: JourneyView) -> list[Column]:
    columns = [Column(s.key, s.name or s.key, view.described_by.get(s.key), s) for s in view.stages]
    if None in view.touchpoints:
        columns.append(Column(NONE, "(no stage)", None, None))
    return columns


def canvas_of(m: TouchpointMap, cards: dict[str, Card], journey: str | None) -> Canvas:
    """The canvas's grid: every channel of the map as a row (empty ones too: the canvas is where a team plans),
    and the touchpoints the journey view shows (model/views.journey_view, as the SVG map and Mermaid show)."""
    view = journey_view(m, journey)
    columns = _columns(view)
    tps = view.shown()
    rows = [(c.key, c.name or c.key) for c in m.channels]
    if any(view.channel_of(t) is None for t in tps):
        rows.append((NONE, "(no channel)"))
    grid = Canvas(columns, rows, {c.key: {r: [] for r, _ in rows} for c in columns})
    for t in tps:
        grid.cells[t.stage or NONE][view.channel_of(t) or NONE].append(cards[t.key])
    return grid


def emotion_curve(
    m: TouchpointMap,
    stages: FeedbackReport,
    columns: list[Column],
    journey: str | None,
    audited: dict[str, tuple[float, int]] | None = None,
) -> dict[str, Any]:
    """Designed emotion (−2..2) of each journey shown, measured comment sentiment (−1..1), and the emotion
    walkthroughs recorded (−2..2, the mean over their steps) per stage."""
    keys = [c.key for c in columns if c.key != NONE]
    chosen = [j for j in m.journeys if j.key == journey] if journey else m.journeys
    designed = []
    for j in chosen:
        emotion = {s.key: s.emotion for s in j.stages}
        designed.append({"key": j.key, "name": j.name or j.key, "values": [emotion.get(k) for k in keys]})
    measured = [(r.sentiment if (r := stages.row(k)) else None) for k in keys]
    names = [c.name for c in columns if c.key != NONE]
    walked = [(audited or {}).get(k) for k in keys]
    return {"keys": keys, "stages": names, "designed": designed, "measured": measured,
            "audited": [None if w is None else round(w[0], 2) for w in walked],
            "audited_steps": [0 if w is None else w[1] for w in walked]}  # fmt: skip


def _edit_data(m: TouchpointMap) -> dict[str, dict[str, Any]]:
    """The fields the canvas's edit panel shows, per touchpoint."""
    return {t.key: t.model_dump(mode="json", include=EDITABLE_ON_CANVAS) for t in m.touchpoints}


EDITABLE_ON_CANVAS = {"name", "owner", "description", "expectations", "annoyances", "desired"}


@router.get("/canvas", response_class=HTMLResponse)
def canvas(request: Request, user: PageViewer, journey: str | None = None) -> Response:
    m = state(request).ws.map_or_empty()
    if journey and not any(j.key == journey for j in m.journeys):
        known = ", ".join(j.key for j in m.journeys) or "none"
        return render(request, "error.html", 404, message=f"unknown journey '{journey}'; journeys are: {known}")
    grid = canvas_of(m, _cards(request, m), journey or None)
    audited = state(request).ws.audits.audited_emotion(journey or None)
    curve = emotion_curve(m, _feedback(request, "stage"), grid.columns, journey or None, audited)
    return render(
        request,
        "canvas.html",
        active="canvas",
        m=m,
        journey=journey or "",
        grid=grid,
        stage_fields=STAGE_FIELDS,
        curve=curve,
        edit_data=_edit_data(m),
    )


STAGE_FIELDS = (("tasks", "Tasks"), ("questions", "Questions"), ("weaknesses", "Weaknesses"),
                ("opportunities", "Opportunities"))  # fmt: skip


# ---- touchpoint ------------------------------------------------------------------------------------------------


def _drivers(request: Request) -> DriversReport:
    # The touchpoint page lists the drivers that name it: the tested comparison is enough there.
    return _cached(request, "drivers", (None, DRIVER_SAMPLES), lambda ws: ws.all_drivers(DRIVER_SAMPLES))


def _touchpoint_drivers(request: Request, key: str) -> tuple[list[dict[str, Any]], str | None]:
    """Per outcome the map defines, this touchpoint's drivers in words (or why there are none); then each
    outcome the map lacks, with the map lines to add."""
    try:
        report = _drivers(request).to_dict()
    except (Busy, TooSlow):  # the app answers 429 / 503 for these, not a page's 400
        raise
    except TouchlensError as exc:
        return [], str(exc)
    groups = [
        {"outcome": d["outcome"], "message": d["message"],
         "rows": [{**r, "what": FEATURE_WORDS.get(r["kind"], r["kind"]), "points": difference_text(r)}
                  for r in d["drivers"] if r["touchpoint"] == key][:10]}
        for d in report["outcomes"]
    ]  # fmt: skip
    return groups + [{**m, "rows": []} for m in report["missing"]], None


@router.get("/touchpoints/{key}", response_class=HTMLResponse)
def touchpoint(request: Request, key: str, user: PageViewer) -> Response:
    ws = state(request).ws
    m = ws.map_or_empty()
    tp = m.touchpoint(key)
    if tp is None:
        return render(request, "error.html", 404, message=f"unknown touchpoint '{key}'")
    # The insights' findings for this page compute beside the drivers' models, not after them (first load).
    state(request).begin([("page.insights", (), ws.insights)])
    around = state(request).analysis(NeighboursQuery(touchpoint=key))
    report = _feedback(request, themes=True)
    row: FeedbackRow | None = report.row(key)
    drivers, drivers_problem = _touchpoint_drivers(request, key)
    series = _trends(request, "month", (key,))["series"]
    metric, question, answered = ws.surveys.asked(key)
    return render(
        request,
        "touchpoint.html",
        active="canvas",
        m=m,
        tp=tp,
        health=_cards(request, m)[key].health,
        health_reason=_health_reasons(request).get(key),
        **_touchpoint_findings(request, key, Names.of(m)),
        score=next((s for s in _scorecard(request).scores if s.touchpoint == key), None),
        row=row,
        flows_in=around["comes_from"][:8],
        flows_out=around["goes_to"][:8],
        verbatims=_verbatims(request, key, None, None)[:20],
        drivers=drivers,
        drivers_problem=drivers_problem,
        # Not cached: a contact confirmed or sent changes it without new data in the events store.
        holdouts=[h.to_dict() for h in ws.contacts.holdouts_at(key)],
        opportunities=[o for o in ws.roadmap() if key in o.touchpoints],
        # The touchpoint's recorded changes travel with its trend, drawn as markers on the chart.
        trend={**series[0], "period": "month", "changes": _changes_of(ws, key)} if series else None,
        phases=[p.value for p in Phase],
        target_names=list(Targets.model_fields),
        survey_metric=metric,
        survey_question=question,
        survey_answers=answered,
    )


@router.post("/touchpoints/{key}/survey-link", response_class=HTMLResponse)
def survey_link(request: Request, key: str, user: PageEditor, customer: Annotated[str, Form()] = "") -> Response:
    """A new survey link for one customer (or an open one), with its QR code, to copy into a message."""
    import segno

    surveys = state(request).ws.surveys
    link = surveys.link(key, customer.strip() or None)
    qr = segno.make(link, error="m").svg_data_uri(scale=6)
    return render(request, "survey_link.html", active="canvas", key=key, link=link, qr=qr, customer=customer.strip())


def _changes_of(ws: Workspace, key: str) -> list[dict[str, Any]]:
    return [{"date": c["date"].isoformat(), "note": c["note"], "id": c["id"]} for c in ws.changes(key)]


def _health_reasons(request: Request) -> dict[str, str]:
    """Why each touchpoint has its health, in a sentence (the library's one definition of health)."""
    rows = _cached(request, "health", (), lambda ws: ws.health_report())
    return {r["touchpoint"]: str(r["reason"]) for r in rows if r.get("reason")}


FINDINGS_ON_TOUCHPOINT = ("problems", "strengths", "friction")


def _touchpoint_findings(request: Request, key: str, names: Names) -> dict[str, Any]:
    """The problems, strengths and friction that name a touchpoint (`findings`) for its page, or why there are
    none to show (`findings_problem`)."""
    try:
        sections = _insights(request).sections
    except (Busy, TooSlow):  # the app answers 429 / 503 for these, not a page's 400
        raise
    except TouchlensError as exc:
        return {"findings": [], "findings_problem": str(exc)}
    found = [i for s in FINDINGS_ON_TOUCHPOINT for i in sections.get(s, []) if key in i.touchpoints]
    return {"findings": [finding_view(i.to_dict(), names) for i in found], "findings_problem": None}


# ---- inventory and matrix --------------------------------------------------------------------------------------


@router.get("/inventory", response_class=HTMLResponse)
def inventory(request: Request, user: PageViewer) -> Response:
    m = state(request).ws.map_or_empty()
    return render(request, "inventory.html", active="inventory", m=m, cards=_cards(request, m))


@router.get("/inventory.csv")
def inventory_csv(request: Request, user: PageViewer) -> Response:
    ws = state(request).ws
    text = ws.export_map("csv") if ws.has_map() else ""
    headers = {"Content-Disposition": 'attachment; filename="touchpoints.csv"'}
    return PlainTextResponse(text, media_type="text/csv; charset=utf-8", headers=headers)


@router.get("/matrix", response_class=HTMLResponse)
def matrix_page(request: Request, user: PageViewer) -> Response:
    ws = state(request).ws
    m = ws.map_or_empty()
    grid = ws.matrix() if ws.has_map() else None
    return render(request, "matrix.html", active="matrix", m=m, grid=grid)
