"""Server-rendered pages (Jinja2, autoescaped): every page calls the library through `WebState`, never
re-computes. Each analysis a page shows goes through `WebState.cached`, so a page is fast after its first view
until the data or the map changes. Charts are drawn in the browser by Plotly from JSON the page carries in a
`<script type="application/json">` element (the CSP allows no inline scripts).
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath
from typing import Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response
from jinja2.utils import htmlsafe_json_dumps
from markupsafe import Markup

from touchlens.analyses import compare_attribution
from touchlens.analytics.attribution import MODELS
from touchlens.analytics.drivers import Drivers
from touchlens.analytics.feedback import FeedbackReport, FeedbackRow
from touchlens.analytics.flows import Flows
from touchlens.analytics.funnels import Order
from touchlens.analytics.scorecard import Score, Scorecard
from touchlens.analytics.stats import Estimate
from touchlens.api import Workspace
from touchlens.errors import TouchlensError
from touchlens.experience import Insights
from touchlens.limits import Busy, TooSlow
from touchlens.model.map import Horizon, Opportunity, Phase, Stage, Targets, Touchpoint, TouchpointMap
from touchlens.web.security import PageViewer, state

router = APIRouter(include_in_schema=False)
T = TypeVar("T")
ATTRIBUTION_MODELS = (*MODELS, "time-decay")
DRIVER_SAMPLES = 0
NONE = "-"  # the column or row of touchpoints without a stage or channel


# ---- rendering and formatting ----------------------------------------------------------------------------------


def pct(value: float | None, digits: int = 0) -> str:
    return "—" if value is None else f"{value * 100:.{digits}f}%"


def num(value: float | None, digits: int = 0) -> str:
    return "—" if value is None or (isinstance(value, float) and math.isnan(value)) else f"{value:,.{digits}f}"


def estimate(e: Estimate | dict[str, Any] | None, metric: str) -> str:
    """`81% (65–91%)` for CSAT, `+12 (−3 to +27)` for NPS, `2.2 (1.6–2.8)` for CES; `—` when unmeasured."""
    d = e.to_dict() if isinstance(e, Estimate) else (e or {})
    value, low, high = d.get("value"), d.get("low"), d.get("high")
    if value is None:
        return "—"
    show: Callable[[float], str] = {
        "csat": lambda x: f"{x * 100:.0f}%",
        "nps": lambda x: f"{x:+.0f}",
    }.get(metric, lambda x: f"{x:.1f}")
    interval = f" ({show(low)} to {show(high)})" if low is not None and high is not None else ""
    return f"{show(value)}{interval}"


def duration(seconds: float | None) -> str:
    if seconds is None:
        return "—"
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f} {unit}"
    return f"{seconds:.0f} s"


def as_json(data: Any) -> Markup:
    """JSON for a `<script type="application/json">` element: `<`, `>`, `&` and `'` written as \\u escapes, so
    no text inside (a comment's `</script>`, say) can end the element; the page reads it with `JSON.parse`."""
    return htmlsafe_json_dumps(data, dumps=lambda obj, **kw: json.dumps(obj, default=str, **kw))


def pretty(data: Any) -> str:
    """Indented JSON as text (autoescaped where shown)."""
    return json.dumps(data, indent=1, default=str)


FILTERS: dict[str, Callable[..., str | Markup]] = {
    "pct": pct,
    "num": num,
    "est": estimate,
    "dur": duration,
    "json": as_json,
    "pretty": pretty,
}


def render(request: Request, template: str, status_code: int = 200, **context: Any) -> Response:
    from touchlens.web.app import templates

    templates.env.filters.update(FILTERS)
    user = getattr(request.state, "user", None)
    base = {
        "user": user,
        "editor": user is not None and user.can("editor", "write"),
        "csrf": getattr(request.state, "csrf", ""),
        "map_name": state(request).ws.map_or_empty().name,
    }
    return templates.TemplateResponse(request, template, {**base, **context}, status_code=status_code)


# ---- library results, cached per data version -------------------------------------------------------------------


def _cached(request: Request, name: str, params: Hashable, compute: Callable[[Workspace], T]) -> T:
    web = state(request)
    # "page." keeps these apart from the REST API's entries, which cache the same analyses as JSON.
    return web.cached("page." + name, params, lambda: compute(web.ws))


def _feedback(request: Request, by: str = "touchpoint", themes: bool = False) -> FeedbackReport:
    return _cached(request, "feedback", (by, themes), lambda ws: ws.feedback(by=by, themes=themes))


def _scorecard(request: Request) -> Scorecard:
    return _cached(request, "scorecard", (), lambda ws: ws.scorecard())


def _insights(request: Request) -> Insights:
    return _cached(request, "insights", (), lambda ws: ws.insights())


def _flows(request: Request) -> Flows:
    return _cached(request, "flows", (), lambda ws: ws.flows())


def _trends(request: Request, period: str = "week", touchpoints: tuple[str, ...] = ()) -> dict[str, Any]:
    return _cached(request, "trends", (period, touchpoints), lambda ws: ws.trends(period, touchpoints))


def _counts(request: Request) -> dict[str, int]:
    """Rows in the events store: events, feedback, customers, quarantined."""
    return _cached(request, "counts", (), lambda ws: ws.counts())


def _verbatims(
    request: Request, touchpoint: str | None, q: str | None, min_score: float | None
) -> list[dict[str, Any]]:
    """The newest comments, filtered by touchpoint, lowest score and text."""
    key = (touchpoint, q, min_score)
    return _cached(request, "verbatims", key, lambda ws: ws.comments(touchpoint, q, min_score=min_score, limit=60))


# ---- health of a touchpoint ------------------------------------------------------------------------------------


@dataclass
class Card:
    """A touchpoint on the canvas: where it sits and how healthy it is."""

    tp: Touchpoint
    health: str
    csat: Estimate | None
    score: Score | None


def _csat(report: FeedbackReport, key: str) -> Estimate | None:
    row = report.row(key)
    return row.csat if row is not None and row.csat.value is not None else None


def _cards(request: Request, m: TouchpointMap) -> dict[str, Card]:
    report, card = _feedback(request), _scorecard(request)
    scores = {s.touchpoint: s for s in card.scores}
    # The library's one definition, shared with the SVG map and the report.
    states = state(request).ws.touchpoint_health(report, card)
    return {
        tp.key: Card(tp, states.get(tp.key) or "unmeasured", _csat(report, tp.key), scores.get(tp.key))
        for tp in m.touchpoints
    }


# ---- overview --------------------------------------------------------------------------------------------------


def _worst(insights: Insights, limit: int = 6) -> list[dict[str, Any]]:
    """The sub-par touchpoints, each once, most severe first (moments of truth lead)."""
    seen: dict[str, dict[str, Any]] = {}
    for i in insights.sections.get("subpar", []):
        seen.setdefault(i.subject, {"key": i.subject, "title": i.title, "kind": i.kind, "impact": i.impact})
    return list(seen.values())[:limit]


def _anomalies(trends: dict[str, Any], limit: int = 8) -> list[dict[str, Any]]:
    found = [{"touchpoint": s["touchpoint"], **a} for s in trends["series"] for a in s["anomalies"]]
    found.sort(key=lambda a: str(a["period"]), reverse=True)
    return found[:limit]


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, user: PageViewer) -> Response:
    ws = state(request).ws
    m = ws.map_or_empty()
    problem, worst = None, []
    try:
        worst = _worst(_insights(request))
    except (Busy, TooSlow):  # the app answers 429 / 503 for these, not a page's 400
        raise
    except TouchlensError as exc:
        problem = str(exc)
    return render(
        request,
        "overview.html",
        active="overview",
        m=m,
        counts=_counts(request),
        overall=_feedback(request).overall,
        worst=worst,
        problem=problem,
        now=[o for o in ws.roadmap() if o.horizon == Horizon.now][:8],
        changes=sorted(ws.changes(), key=lambda c: str(c["date"]), reverse=True)[:6],
        anomalies=_anomalies(_trends(request)),
    )


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


def _columns(m: TouchpointMap, journey: str | None) -> list[Column]:
    chosen = [j for j in m.journeys if j.key == journey] if journey else m.journeys
    cols: dict[str, Column] = {}
    for j in chosen:
        for s in j.stages:
            cols.setdefault(s.key, Column(s.key, s.name or s.key, j.key, s))
    if journey is None:
        for t in m.touchpoints:
            key = t.stage or NONE
            cols.setdefault(key, Column(key, "(no stage)" if key == NONE else key, None, None))
    return list(cols.values())


def canvas_of(m: TouchpointMap, cards: dict[str, Card], journey: str | None) -> Canvas:
    columns = _columns(m, journey)
    shown = {c.key for c in columns}
    tps = [t for t in m.touchpoints if (t.stage or NONE) in shown]
    rows = [(c.key, c.name or c.key) for c in m.channels]
    if any(t.channel is None or m.channel(t.channel) is None for t in tps):
        rows.append((NONE, "(no channel)"))
    grid = Canvas(columns, rows, {c.key: {r: [] for r, _ in rows} for c in columns})
    for t in tps:
        channel = t.channel if t.channel and m.channel(t.channel) else NONE
        grid.cells[t.stage or NONE][channel].append(cards[t.key])
    return grid


def emotion_curve(
    m: TouchpointMap, stages: FeedbackReport, columns: list[Column], journey: str | None
) -> dict[str, Any]:
    """Designed emotion (−2..2) of each journey shown, and measured comment sentiment (−1..1) per stage."""
    keys = [c.key for c in columns if c.key != NONE]
    chosen = [j for j in m.journeys if j.key == journey] if journey else m.journeys
    designed = []
    for j in chosen:
        emotion = {s.key: s.emotion for s in j.stages}
        designed.append({"key": j.key, "name": j.name or j.key, "values": [emotion.get(k) for k in keys]})
    measured = [(r.sentiment if (r := stages.row(k)) else None) for k in keys]
    names = [c.name for c in columns if c.key != NONE]
    return {"keys": keys, "stages": names, "designed": designed, "measured": measured}


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
    curve = emotion_curve(m, _feedback(request, "stage"), grid.columns, journey or None)
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


def _drivers(request: Request, outcome: str) -> Drivers:
    # The touchpoint page lists the drivers that name it: the tested comparison is enough there.
    return _cached(request, "drivers", (outcome, DRIVER_SAMPLES), lambda ws: ws.drivers(outcome, DRIVER_SAMPLES))


def _touchpoint_drivers(request: Request, key: str) -> tuple[list[dict[str, Any]], str | None]:
    try:
        found = _drivers(request, "churn").to_dict()["drivers"]
    except (Busy, TooSlow):  # the app answers 429 / 503 for these, not a page's 400
        raise
    except TouchlensError as exc:
        return [], str(exc)
    return [d for d in found if d.get("touchpoint") == key][:10], None


@router.get("/touchpoints/{key}", response_class=HTMLResponse)
def touchpoint(request: Request, key: str, user: PageViewer) -> Response:
    ws = state(request).ws
    m = ws.map_or_empty()
    tp = m.touchpoint(key)
    if tp is None:
        return render(request, "error.html", 404, message=f"unknown touchpoint '{key}'")
    flows = _flows(request)
    report = _feedback(request, themes=True)
    row: FeedbackRow | None = report.row(key)
    drivers, drivers_problem = _touchpoint_drivers(request, key)
    series = _trends(request, "month", (key,))["series"]
    return render(
        request,
        "touchpoint.html",
        active="canvas",
        m=m,
        tp=tp,
        health=_cards(request, m)[key].health,
        score=next((s for s in _scorecard(request).scores if s.touchpoint == key), None),
        row=row,
        flows_in=sorted((e for e in flows.edges if e.target == key), key=lambda e: -e.count)[:8],
        flows_out=sorted((e for e in flows.edges if e.source == key), key=lambda e: -e.count)[:8],
        verbatims=_verbatims(request, key, None, None)[:20],
        drivers=drivers,
        drivers_problem=drivers_problem,
        opportunities=[o for o in ws.roadmap() if key in o.touchpoints],
        # The touchpoint's recorded changes travel with its trend, drawn as markers on the chart.
        trend={**series[0], "changes": _changes_of(ws, key)} if series else None,
        phases=[p.value for p in Phase],
        target_names=list(Targets.model_fields),
    )


def _changes_of(ws: Workspace, key: str) -> list[dict[str, Any]]:
    return [{"date": c["date"].isoformat(), "note": c["note"], "id": c["id"]} for c in ws.changes(key)]


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


# ---- flows, funnel, attribution --------------------------------------------------------------------------------


@router.get("/flows", response_class=HTMLResponse)
def flows_page(request: Request, user: PageViewer, depth: int = Query(5, ge=2, le=8)) -> Response:
    sankey = _cached(request, "sankey", depth, lambda ws: ws.sankey(depth=depth))
    flows = _flows(request)
    return render(
        request,
        "flows.html",
        active="flows",
        sankey=sankey,
        depth=depth,
        edges=sorted(flows.edges, key=lambda e: -e.count)[:30],
        starts=sorted(flows.start.items(), key=lambda kv: -kv[1])[:10],
        ends=sorted(flows.end.items(), key=lambda kv: -kv[1])[:10],
    )


def _steps(steps: str, step: list[str]) -> list[str]:
    return [s.strip() for s in (steps.split(",") if steps else step) if s.strip()]


@router.get("/funnel", response_class=HTMLResponse)
def funnel_page(
    request: Request,
    user: PageViewer,
    steps: str = "",
    step: list[str] = Query(default_factory=list),  # noqa: B008 — repeated ?step= from the form without script
    window: str = "7d",
    order: str = "any",
    breakdown: str = "",
) -> Response:
    chosen = _steps(steps, step)
    result: dict[str, Any] | None = None
    problem = None
    if chosen:
        params = (tuple(chosen), window, order, breakdown)
        try:
            result = _cached(
                request,
                "funnel",
                params,
                lambda ws: ws.run_funnel(ws.funnel(chosen, window, order), breakdown or None).to_dict(),
            )
        except (Busy, TooSlow):  # the app answers 429 / 503 for these, not a page's 400
            raise
        except TouchlensError as exc:
            problem = str(exc)
    m = state(request).ws.map_or_empty()
    return render(
        request,
        "funnel.html",
        400 if problem else 200,
        active="funnel",
        m=m,
        chosen=chosen or ["", ""],
        window=window,
        order=order,
        orders=[o.value for o in Order],
        breakdown=breakdown,
        result=result,
        problem=problem,
    )


@router.get("/attribution", response_class=HTMLResponse)
def attribution_page(request: Request, user: PageViewer, by: str = "channel") -> Response:
    def compute(ws: Workspace) -> dict[str, Any]:
        results = compare_attribution(ws, ATTRIBUTION_MODELS, by)
        return {model: r.to_dict() for model, r in zip(ATTRIBUTION_MODELS, results, strict=True)}

    problem, results = None, {}
    try:
        results = _cached(request, "attribution", by, compute)
    except (Busy, TooSlow):  # the app answers 429 / 503 for these, not a page's 400
        raise
    except TouchlensError as exc:
        problem = str(exc)
    keys: list[str] = []
    for r in results.values():
        keys += [c["key"] for c in r["results"] if c["key"] not in keys]
    share = {m: {c["key"]: c["share"] for c in r["results"]} for m, r in results.items()}
    return render(
        request,
        "attribution.html",
        400 if problem else 200,
        active="attribution",
        by=by,
        models=list(results),
        results=results,
        keys=keys,
        share=share,
        problem=problem,
    )


# ---- feedback and insights -------------------------------------------------------------------------------------


@router.get("/feedback", response_class=HTMLResponse)
def feedback_page(
    request: Request, user: PageViewer, touchpoint: str = "", q: str = "", min_score: str = ""
) -> Response:
    try:
        lowest = float(min_score) if min_score.strip() else None
    except ValueError:
        lowest = None
    report = _feedback(request, themes=True)
    rows = [r for r in report.rows if not touchpoint or r.key == touchpoint]
    return render(
        request,
        "feedback.html",
        active="feedback",
        m=state(request).ws.map_or_empty(),
        report=report,
        rows=rows,
        touchpoint=touchpoint,
        q=q,
        min_score=min_score,
        verbatims=_verbatims(request, touchpoint or None, q.strip() or None, lowest),
    )


def evidence_items(evidence: dict[str, Any]) -> list[tuple[str, str]]:
    """Evidence as (name, text) pairs for a definition list: numbers rounded, nested values as compact JSON."""
    out = []
    for name, value in evidence.items():
        if isinstance(value, float):
            text = f"{value:.3g}"
        elif isinstance(value, dict | list):
            text = json.dumps(value, default=str)[:400]
        else:
            text = str(value)
        out.append((name.replace("_", " "), text))
    return out


@router.get("/insights", response_class=HTMLResponse)
def insights_page(request: Request, user: PageViewer) -> Response:
    problem, sections = None, {}
    try:
        sections = _insights(request).sections
    except (Busy, TooSlow):  # the app answers 429 / 503 for these, not a page's 400
        raise
    except TouchlensError as exc:
        problem = str(exc)
    m = state(request).ws.map_or_empty()
    return render(
        request,
        "insights.html",
        active="insights",
        sections=sections,
        problem=problem,
        touchpoints={t.key for t in m.touchpoints},
        evidence=evidence_items,
    )


# ---- roadmap and data ------------------------------------------------------------------------------------------


def _evidence_link(o: Opportunity) -> str:
    insight = o.evidence.get("insight")
    subject = insight.get("subject") if isinstance(insight, dict) else None
    if isinstance(insight, dict) and insight.get("subject_type") == "touchpoint" and isinstance(subject, str):
        return f"/touchpoints/{subject}"
    return f"/touchpoints/{o.touchpoints[0]}" if o.touchpoints else "/insights"


@router.get("/roadmap", response_class=HTMLResponse)
def roadmap_page(request: Request, user: PageViewer) -> Response:
    items = state(request).ws.roadmap()
    columns = {h.value: [o for o in items if o.horizon == h] for h in Horizon}
    return render(
        request,
        "roadmap.html",
        active="roadmap",
        columns=columns,
        unplaced=[o for o in items if o.horizon is None],
        link=_evidence_link,
        evidence=evidence_items,
    )


def _history(request: Request) -> list[dict[str, Any]]:
    def read(ws: Workspace) -> list[dict[str, Any]]:
        return [r | {"file": PurePath(r["file"]).name} for r in ws.ingest_history(50)]

    return _cached(request, "history", (), read)


@router.get("/data", response_class=HTMLResponse)
def data_page(request: Request, user: PageViewer) -> Response:
    return render(
        request,
        "data.html",
        active="data",
        counts=_counts(request),
        history=_history(request),
        quarantine=_cached(request, "quarantine", (), lambda w: w.quarantine()),
        when=lambda t: t.strftime("%Y-%m-%d %H:%M") if isinstance(t, datetime) else "—",
    )
