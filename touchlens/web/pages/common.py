"""What several pages share: the library's results, cached per data version (`WebState.cached`), the
feedback comments a page lists, and each touchpoint's card (where it sits and how healthy it is).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Callable, Hashable
from dataclasses import dataclass
from functools import partial
from typing import Any, TypeVar

from fastapi import Request

from touchlens.analytics.feedback import FeedbackReport
from touchlens.analytics.flows import Flows
from touchlens.analytics.scorecard import Score, Scorecard
from touchlens.analytics.stats import Estimate
from touchlens.api import Workspace
from touchlens.experience import Insights
from touchlens.model.map import OpportunityStatus, Touchpoint, TouchpointMap
from touchlens.web.security import state
from touchlens.web.state import WebState

T = TypeVar("T")


# ---- library results, cached per data version -------------------------------------------------------------------


def _cached(request: Request, name: str, params: Hashable, compute: Callable[[Workspace], T]) -> T:
    web = state(request)
    # "page." keeps these apart from the REST API's entries, which cache the same analyses as JSON.
    return web.cached("page." + name, params, lambda: compute(web.ws))


def warm_start(web: WebState) -> int:
    """At server start, compute in the background what the overview, the canvas and a touchpoint's page show
    first (under the keys these pages use); how many answers were started."""
    ws = web.ws
    if not ws.has_map():
        return 0
    return web.warm(
        [
            # The overview's first: people land there. Its sections only (the problems and the strengths).
            ("page.insights", ("problems", "strengths"), partial(ws.insights, ("problems", "strengths"))),
            ("page.insights", (), ws.insights),
            ("page.scorecard", (), ws.scorecard),
            ("page.counts", (), ws.counts),
            *(
                ("page.feedback", (by, False), partial(ws.feedback, by=by, themes=False))
                for by in ("touchpoint", "stage")
            ),
            ("page.trends", ("week", ()), partial(ws.trends, "week", ())),
            ("page.success", (), lambda: ws.success_status(ws.feedback(by="touchpoint", themes=False))),
        ]
    )


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


# A done (or dropped) roadmap card: off the overview's Now list and in the board's own column.
CLOSED = (OpportunityStatus.done, OpportunityStatus.dropped)
