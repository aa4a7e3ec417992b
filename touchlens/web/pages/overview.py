"""The overview page (`/`): counts, overall scores, the worst problems and the strengths, what changed."""

from __future__ import annotations

from functools import partial
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import HTMLResponse, Response

from touchlens.errors import TouchlensError
from touchlens.experience import Insights
from touchlens.insights.evidence import FindingView, finding_view
from touchlens.insights.items import Insight
from touchlens.insights.words import Names
from touchlens.limits import Busy, TooSlow
from touchlens.model.map import Horizon
from touchlens.web.pages.common import CLOSED, _cached, _counts, _feedback, _trends
from touchlens.web.security import PageViewer, state
from touchlens.web.templating import render

router = APIRouter(include_in_schema=False)


JUDGED = ("problems", "strengths")  # the insights' sections the overview shows


def _judged(request: Request) -> Insights:
    """The problems and strengths the overview shows: cheaper than every section (no friction, no gaps)."""
    return _cached(request, "insights", JUDGED, lambda ws: ws.insights(JUDGED))


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
    # Its two heavy answers begin together, each on a thread of its own, beside the lighter ones this request
    # reads meanwhile: one after the other, the first load at 10M events took 3.7 s.
    if ws.has_map():  # without one, the insights say so on this page, not in the log of a thread
        state(request).begin(
            [
                ("page.insights", JUDGED, partial(ws.insights, JUDGED)),
                ("page.trends", ("week", ()), partial(ws.trends, "week", ())),
            ]
        )
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
