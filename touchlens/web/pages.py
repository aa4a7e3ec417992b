"""Server-rendered pages (Jinja2, autoescaped): every page calls the library through `WebState`, never
re-computes. Each analysis a page shows goes through `WebState.cached`, so a page is fast after its first view
until the data or the map changes. Charts are drawn in the browser by Plotly from JSON the page carries in a
`<script type="application/json">` element (the CSP allows no inline scripts).
"""

from __future__ import annotations

import math
from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import PurePath
from typing import Any, TypeVar

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, PlainTextResponse, Response

from touchlens.analyses import compare_attribution
from touchlens.analytics.attribution import EVERY_MODEL
from touchlens.analytics.drivers_model import FEATURE_WORDS, DriversReport, difference_text
from touchlens.analytics.feedback import FeedbackReport, FeedbackRow
from touchlens.analytics.flows import Flows
from touchlens.analytics.funnels import Order
from touchlens.analytics.scorecard import Score, Scorecard
from touchlens.analytics.stats import Estimate
from touchlens.api import Workspace
from touchlens.errors import TouchlensError
from touchlens.experience import Insights
from touchlens.insights.evidence import FindingView, evidence_items, finding_view, key_names, plain, stake_text
from touchlens.insights.items import Insight
from touchlens.insights.prioritise import card as card_data
from touchlens.insights.words import Names
from touchlens.limits import Busy, TooSlow
from touchlens.model.map import (
    Horizon,
    Opportunity,
    OpportunityStatus,
    Phase,
    Stage,
    Targets,
    Touchpoint,
    TouchpointMap,
)
from touchlens.web.security import PageViewer, state
from touchlens.web.templating import render

router = APIRouter(include_in_schema=False)
T = TypeVar("T")
ATTRIBUTION_MODELS = EVERY_MODEL
DRIVER_SAMPLES = 0
NONE = "-"  # the column or row of touchpoints without a stage or channel


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


VERBATIMS = 60  # comments shown at once
ORDERS = {"newest": "Newest first", "lowest": "Lowest score first", "highest": "Highest score first"}
FEEDBACK_METRICS = {"nps": "NPS", "csat": "CSAT", "ces": "CES", "rating": "Rating"}


def _verbatims(
    request: Request,
    touchpoint: str | None,
    q: str | None,
    min_score: float | None,
    metric: str | None = None,
    order: str = "newest",
) -> list[dict[str, Any]]:
    """The comments that pass the filters (touchpoint, text, metric, lowest score): the newest; or the lowest (or
    highest) scores first, newest first within a score. The library gives the newest comments between two scores,
    and a metric has few possible scores (eleven at most), so asking score by score gives the lowest first exactly
    without reading every comment."""
    key = (touchpoint, q, min_score, metric, order)
    if order not in ("lowest", "highest"):
        return _cached(
            request, "verbatims", key, lambda ws: ws.comments(touchpoint, q, metric, min_score, limit=VERBATIMS)
        )
    scores = _scores(_feedback(request, themes=True), touchpoint, metric)
    values = sorted((v for v in scores if min_score is None or v >= min_score), reverse=order == "highest")
    return _cached(request, "verbatims", key, lambda ws: _by_score(ws, touchpoint, q, metric, values))


def _scores(report: FeedbackReport, touchpoint: str | None, metric: str | None) -> Counter[float]:
    """How many answers gave each score, for one touchpoint (or all) and one metric (or all)."""
    counts: Counter[float] = Counter()
    for (key, name), values in report.scores.items():
        if (touchpoint is None or key == touchpoint) and (metric is None or name == metric):
            counts.update(values)
    return counts


def _by_score(
    ws: Workspace, touchpoint: str | None, q: str | None, metric: str | None, values: list[float]
) -> list[dict[str, Any]]:
    found: list[dict[str, Any]] = []
    for value in values:
        if len(found) >= VERBATIMS:
            break
        found += ws.comments(touchpoint, q, metric, value, value, limit=VERBATIMS - len(found))
    return found


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


def _judged(request: Request) -> Insights:
    """The problems and strengths the overview shows: cheaper than every section (no friction, no gaps)."""
    chosen = ("problems", "strengths")
    return _cached(request, "insights", chosen, lambda ws: ws.insights(chosen))


def _stake_value(i: Insight) -> float:
    return i.at_stake.value if i.at_stake is not None else -1.0


def _worst(insights: Insights, names: Names, limit: int = 6) -> list[FindingView]:
    """The problems, one per touchpoint, most at stake first; those with nothing at stake in outcome units after,
    by impact."""
    found = sorted(insights.sections.get("problems", []), key=lambda i: (-_stake_value(i), -i.impact))
    seen: dict[str, FindingView] = {}
    for i in found:
        seen.setdefault(i.subject, finding_view(i.to_dict(), names))
    return list(seen.values())[:limit]


def _strengths(insights: Insights, names: Names, limit: int = 6) -> list[FindingView]:
    """What works: strengths most at stake first."""
    found = sorted(insights.sections.get("strengths", []), key=lambda i: -_stake_value(i))
    return [finding_view(i.to_dict(), names) for i in found[:limit]]


def _anomalies(trends: dict[str, Any], limit: int = 8) -> list[dict[str, Any]]:
    found = [{"touchpoint": s["touchpoint"], **a} for s in trends["series"] for a in s["anomalies"]]
    # The surest first (adjusted p-value), the latest among equals.
    found.sort(key=lambda a: str(a["period"]), reverse=True)
    found.sort(key=lambda a: a["p_value"])
    return found[:limit]


@router.get("/", response_class=HTMLResponse)
def overview(request: Request, user: PageViewer) -> Response:
    ws = state(request).ws
    m = ws.map_or_empty()
    problem, worst, strengths = None, [], []
    try:
        judged, names = _judged(request), Names.of(m)
        worst, strengths = _worst(judged, names), _strengths(judged, names)
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
        strengths=strengths,
        problem=problem,
        now=[o for o in ws.roadmap() if o.horizon == Horizon.now and o.status not in CLOSED][:8],
        changes=sorted(ws.changes(), key=lambda c: str(c["date"]), reverse=True)[:6],
        anomalies=_anomalies(_trends(request)),
        success=[
            s.to_dict() for s in _cached(request, "success", (), lambda ws: ws.success_status(_feedback(request)))
        ],
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
        health_reason=_health_reasons(request).get(key),
        **_touchpoint_findings(request, key, Names.of(m)),
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


SCALES = {"nps": range(0, 11), "csat": range(1, 6), "ces": range(1, 8)}


@dataclass
class Bars:
    """One metric's score distribution: each score on its scale with its answers and its bar's height (0–1 of the
    tallest)."""

    metric: str
    answers: int
    bars: list[tuple[str, int, float]]


def score_bars(report: FeedbackReport, touchpoint: str | None, metric: str | None, lowest: float | None) -> list[Bars]:
    """The distribution of the scores that pass the filters, one chart per metric (their scales differ)."""
    charts = []
    for name in sorted({m for _, m in report.scores} if metric is None else {metric}):
        counts = _scores(report, touchpoint, name)
        shown = sorted({float(v) for v in SCALES.get(name, ())} | set(counts))
        shown = [v for v in shown if lowest is None or v >= lowest]
        answers = sum(counts[v] for v in shown)
        if answers:
            top = max(counts[v] for v in shown)
            bars = [(plain(v), counts[v], counts[v] / top) for v in shown]
            charts.append(Bars(FEEDBACK_METRICS.get(name, name), answers, bars))
    return charts


def _lowest(text: str) -> float | None:
    try:
        value = float(text) if text.strip() else None
    except ValueError:
        return None
    return value if value is not None and math.isfinite(value) else None


@router.get("/feedback", response_class=HTMLResponse)
def feedback_page(
    request: Request,
    user: PageViewer,
    touchpoint: str = "",
    q: str = "",
    min_score: str = "",
    metric: str = "",
    sort: str = "newest",
) -> Response:
    lowest, chosen = _lowest(min_score), metric if metric in FEEDBACK_METRICS else None
    order = sort if sort in ORDERS else "newest"
    report = _feedback(request, themes=True)
    m = state(request).ws.map_or_empty()
    return render(
        request,
        "feedback.html",
        active="feedback",
        m=m,
        names={t.key: t.name or t.key for t in m.touchpoints},
        report=report,
        rows=[r for r in report.rows if not touchpoint or r.key == touchpoint],
        touchpoint=touchpoint,
        q=q,
        min_score=min_score,
        metric=chosen or "",
        metrics=FEEDBACK_METRICS,
        sort=order,
        orders=ORDERS,
        charts=score_bars(report, touchpoint or None, chosen, lowest),
        verbatims=_verbatims(request, touchpoint or None, q.strip() or None, lowest, chosen, order),
    )


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
    names = Names.of(m)
    return render(
        request,
        "insights.html",
        active="insights",
        sections={name: [finding_view(i.to_dict(), names) for i in items] for name, items in sections.items()},
        problem=problem,
        known={t.key for t in m.touchpoints},
    )


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


CLOSED = (OpportunityStatus.done, OpportunityStatus.dropped)


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
    return render(
        request,
        "data.html",
        active="data",
        counts=_counts(request),
        history=_history(request),
        quarantine=_cached(request, "quarantine", (), lambda w: w.quarantine()),
        when=lambda t: t.strftime("%Y-%m-%d %H:%M") if isinstance(t, datetime) else "—",
    )
