"""The journeys' pages: flows (Sankey and directly-follows), the funnel builder and attribution."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query, Request
from fastapi.responses import HTMLResponse, Response

from touchlens.analyses import compare_attribution
from touchlens.analytics.attribution_models import EVERY_MODEL
from touchlens.analytics.funnels import Order
from touchlens.api import Workspace
from touchlens.errors import TouchlensError
from touchlens.limits import Busy, TooSlow
from touchlens.web.pages.common import _cached, _flows
from touchlens.web.security import PageViewer, state
from touchlens.web.templating import render

router = APIRouter(include_in_schema=False)
ATTRIBUTION_MODELS = EVERY_MODEL


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
