"""The analyses: scorecard, flows, variants, Sankey, paths, funnel and attribution (journeys); feedback,
comments, drivers, insights, health, conformance and trends (experience).
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from fastapi import APIRouter, HTTPException, Query, Request

from touchlens.analyses import compare_attribution
from touchlens.analytics.attribution_models import EVERY_MODEL, MAX_ORDER, MODELS
from touchlens.analytics.funnels import MAX_STEPS
from touchlens.insights.items import SECTIONS
from touchlens.web.api.base import TranslatingRoute, _feedback, _keys, _scorecard, _ws
from touchlens.web.security import Viewer, state

router = APIRouter(route_class=TranslatingRoute)
# Drivers' resamples through the web: each refits the model in Python, which no time limit interrupts.
WEB_SAMPLES = 100
Exact = Annotated[
    bool,
    Query(description="Medians and p90s of waits from every wait (slower) instead of the wait sketches (within 1%)."),
]


# -- journeys ---------------------------------------------------------------------------------------------


@router.get("/scorecard")
def scorecard(
    user: Viewer,
    request: Request,
    window: Annotated[
        str, Query(description="Count a conversion this soon after the touchpoint (30d, 7d, 48h).")
    ] = "30d",
    by: Annotated[Literal["touchpoint", "stage"], Query(description="touchpoint, or stage: one row per stage.")] = (
        "touchpoint"
    ),
    exact: Exact = False,
) -> dict[str, Any]:
    """Per touchpoint (or stage): customers, events, conversion after it and lift, drop-off, repeats."""
    if exact:
        return state(request).cached(
            "scorecard", (window, by, True), lambda: _ws(request).scorecard(window, by, exact=True).to_dict()
        )
    return _scorecard(request, window, by)


@router.get("/flows")
def flows(user: Viewer, request: Request, exact: Exact = False) -> dict[str, Any]:
    """The directly-follows graph over touchpoints: edges with counts and times, starts and ends."""
    # The default answer keeps the key the server warms at start.
    return state(request).cached("flows", (True,) if exact else (), lambda: _ws(request).flows(exact=exact).to_dict())


@router.get("/variants")
def variants(
    user: Viewer,
    request: Request,
    top: Annotated[int, Query(ge=1, le=1000, description="How many of the most frequent variants.")] = 10,
) -> dict[str, Any]:
    """The most frequent full touchpoint sequences, with share and cumulative coverage."""
    return state(request).cached("variants", top, lambda: _ws(request).variants(top).to_dict())


@router.get("/sankey")
def sankey(
    user: Viewer,
    request: Request,
    depth: Annotated[int, Query(ge=2, le=20, description="How many first steps of each journey.")] = 5,
    top: Annotated[int, Query(ge=1, le=100, description="Touchpoints kept per step; the rest become 'other'.")] = 8,
) -> dict[str, Any]:
    """Sankey nodes and links of the journeys' first steps."""
    return state(request).cached("sankey", (depth, top), lambda: _ws(request).sankey(depth, top))


@router.get("/paths")
def paths(
    user: Viewer,
    request: Request,
    from_: Annotated[str | None, Query(description="Show what follows this touchpoint.")] = None,
    from_alias: Annotated[str | None, Query(alias="from", include_in_schema=False)] = None,
    to: Annotated[str | None, Query(description="Show what leads to this touchpoint.")] = None,
    steps: Annotated[int, Query(ge=1, le=20, description="How many steps after (or before).")] = 3,
    top: Annotated[int, Query(ge=1, le=1000, description="How many of the most frequent paths.")] = 20,
) -> dict[str, Any]:
    """The touchpoints right after (`from_`) or before (`to`) a touchpoint, with counts and shares."""
    anchor_from = from_ or from_alias
    if (anchor_from is None) == (to is None):
        raise HTTPException(422, "give exactly one of from_ or to")
    anchor, before = (to, True) if to is not None else (anchor_from or "", False)
    return state(request).cached(
        "paths", (anchor, before, steps, top), lambda: _ws(request).paths_around(anchor, steps, before, top).to_dict()
    )


@router.get("/funnel")
def funnel(
    user: Viewer,
    request: Request,
    steps: Annotated[
        str, Query(description=f"Touchpoint keys in order, comma-separated: a,b,c (at most {MAX_STEPS}).")
    ],
    window: Annotated[str, Query(description="Time allowed from the first step to the last (30m, 48h, 7d).")] = "7d",
    order: Annotated[
        Literal["any", "strict"], Query(description="any: other events may come between steps; strict: none may.")
    ] = "any",
    exclude: Annotated[str | None, Query(description="Touchpoints (comma-separated) that spoil a journey.")] = None,
    breakdown: Annotated[str | None, Query(description="persona, channel or property:NAME.")] = None,
) -> dict[str, Any]:
    """How many customers reach each step of a touchpoint sequence within the window, and how fast."""
    ws = _ws(request)
    if not _keys(steps):
        raise HTTPException(422, "steps: give at least one touchpoint key, as steps=a,b,c")
    query = ws.funnel(_keys(steps), window, order, _keys(exclude))
    return state(request).cached("funnel", (query, breakdown), lambda: ws.run_funnel(query, breakdown).to_dict())


@router.get("/attribution")
def get_attribution(
    user: Viewer,
    request: Request,
    model: Annotated[
        str, Query(pattern=f"^({'|'.join(EVERY_MODEL)})$", description=f"{', '.join(MODELS)}, time-decay.")
    ] = "markov",
    by: Annotated[
        Literal["touchpoint", "channel", "stage"], Query(description="Credit touchpoint, channel or stage.")
    ] = "touchpoint",
    order: Annotated[int, Query(ge=1, le=MAX_ORDER, description=f"Markov order: 1 to {MAX_ORDER}.")] = 1,
    half_life: Annotated[str, Query(description="time-decay: credit halves this long before the conversion.")] = "7d",
    lookback: Annotated[str | None, Query(description="Only touches this close before their conversion.")] = None,
    compare: Annotated[bool, Query(description="Every model side by side (a list, one result per model).")] = False,
) -> dict[str, Any] | list[dict[str, Any]]:
    """Credit for conversions by touchpoint, channel or stage, with one model or every model."""
    every = EVERY_MODEL  # `model` is one of them: its pattern says so
    ws, chosen = _ws(request), every if compare else (model,)

    def compute() -> list[dict[str, Any]]:
        return [r.to_dict() for r in compare_attribution(ws, chosen, by, order, half_life, 0, lookback)]

    results = state(request).cached("attribution", (chosen, by, order, half_life, lookback), compute)
    return results if compare else results[0]


# -- experience -------------------------------------------------------------------------------------------


@router.get("/feedback")
def feedback(
    user: Viewer,
    request: Request,
    by: Annotated[
        Literal["touchpoint", "stage", "persona", "channel", "period"],
        Query(description="touchpoint, stage, persona, channel or period."),
    ] = "touchpoint",
    period: Annotated[Literal["day", "week", "month"], Query(description="With by=period: day, week or month.")] = (
        "week"
    ),
    themes: Annotated[bool, Query(description="Recurring topics of each touchpoint's comments.")] = False,
) -> dict[str, Any]:
    """NPS, CSAT and CES with 95% intervals and comment sentiment, per group."""
    return _feedback(request, by, period, themes)


@router.get("/feedback/comments")
def comments(
    user: Viewer,
    request: Request,
    touchpoint: Annotated[str | None, Query(description="Only this touchpoint's comments.")] = None,
    q: Annotated[str | None, Query(max_length=200, description="Only comments containing this text.")] = None,
    metric: Annotated[str | None, Query(description="Only this metric: nps, csat, ces or rating.")] = None,
    min_score: Annotated[float | None, Query(description="Only scores at least this (on the metric's scale).")] = None,
    max_score: Annotated[float | None, Query(description="Only scores at most this.")] = None,
    limit: Annotated[int, Query(ge=1, le=1000, description="How many of the newest comments.")] = 50,
) -> dict[str, Any]:
    """The feedback explorer: the newest comments with their score, metric, sentiment, touchpoint and time."""
    rows = _ws(request).comments(touchpoint, q, metric, min_score, max_score, limit)
    return {"comments": rows}


@router.get("/drivers")
def drivers(
    user: Viewer,
    request: Request,
    outcome: Annotated[
        Literal["conversion", "repeat", "churn", "nps"] | None,
        Query(
            description="conversion, repeat or churn; or nps (key drivers of NPS). Omitted: every outcome "
            "the map defines, as `analyze drivers --json` without --outcome."
        ),
    ] = None,
    samples: Annotated[
        int, Query(ge=0, le=WEB_SAMPLES, description=f"Resamples for the 95% intervals (at most {WEB_SAMPLES}).")
    ] = WEB_SAMPLES,
) -> dict[str, Any]:
    """What raises or lowers the rate of an outcome (or, for nps, which touchpoint scores explain NPS)."""
    ws = _ws(request)
    if outcome == "nps":
        return state(request).cached("nps_drivers", (), ws.nps_drivers)
    if outcome is None:
        return state(request).cached("all_drivers", (samples,), lambda: ws.all_drivers(samples).to_dict())
    return state(request).cached("drivers", (outcome, samples), lambda: ws.drivers(outcome, samples).to_dict())


@router.get("/insights")
def insights(
    user: Viewer,
    request: Request,
    sections: Annotated[
        str | None,
        Query(description="Comma-separated: problems, strengths, gaps, friction, personalisation (default all)."),
    ] = None,
) -> dict[str, Any]:
    """Findings by section (as `touchlens analyze insights --json`), each with its reach in customers, effects on
    the map's outcomes, what is at stake a year, a summary in words and its evidence."""
    chosen = _keys(sections) or SECTIONS
    return state(request).cached("insights", chosen, lambda: _ws(request).insights(chosen).to_dict())


@router.get("/health")
def touchpoint_health(user: Viewer, request: Request) -> dict[str, Any]:
    """Each touchpoint's health — good, watch, poor or null — and why (as `touchlens analyze health --json`)."""
    return state(request).cached("health", (), lambda: {"touchpoints": _ws(request).health_report()})


@router.get("/conformance")
def conformance(
    user: Viewer,
    request: Request,
    journey: Annotated[str | None, Query(description="The designed journey (default: the map's first).")] = None,
    top: Annotated[int, Query(ge=1, le=1000, description="How many of the most frequent deviations.")] = 10,
) -> dict[str, Any]:
    """The designed stage order against actual journeys: who follows it, skipped stages, backward moves."""
    return state(request).cached(
        "conformance", (journey, top), lambda: _ws(request).conformance(journey, top).to_dict()
    )


@router.get("/trends")
def trends(
    user: Viewer,
    request: Request,
    period: Annotated[Literal["day", "week", "month"], Query(description="day, week or month.")] = "week",
    touchpoint: Annotated[list[str] | None, Query(description="Only these touchpoints (repeat the parameter).")] = None,
) -> dict[str, Any]:
    """Each touchpoint's events, customers, CSAT and sentiment per period, with anomalies flagged."""
    keys = tuple(touchpoint or ())
    return state(request).cached("trends", (period, keys), lambda: _ws(request).trends(period, keys))
