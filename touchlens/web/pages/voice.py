"""The customer's voice: the feedback explorer and the insights (findings by section)."""

from __future__ import annotations

import math
from dataclasses import dataclass

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from touchlens.analytics.feedback import FeedbackReport
from touchlens.errors import TouchlensError
from touchlens.insights.evidence import finding_view, plain
from touchlens.insights.words import Names
from touchlens.limits import Busy, TooSlow
from touchlens.web.pages.common import FEEDBACK_METRICS, ORDERS, _feedback, _insights, _scores, _verbatims
from touchlens.web.security import PageViewer, state
from touchlens.web.templating import render

router = APIRouter(include_in_schema=False)


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
