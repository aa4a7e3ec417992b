"""The registry's analyses on the web, with no code per analysis: `GET /api/analyses` lists them,
`GET /api/analyses/NAME?option=value` runs one (JSON), and `/analyses/NAME` is its page (a form from the
query's fields, the result's rows as a table). Pages and the API cache a result under the same query."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import HTMLResponse, Response

from touchlens.errors import TouchlensError
from touchlens.queries.base import Query
from touchlens.registry import ANALYSES, analysis, query_from
from touchlens.web.api import ERRORS, NOT_FOUND, TranslatingRoute
from touchlens.web.security import PageViewer, Viewer, state
from touchlens.web.templating import render

api_router = APIRouter(prefix="/api", tags=["api"], route_class=TranslatingRoute, responses=ERRORS)
page_router = APIRouter(include_in_schema=False)


def _result(request: Request, query: Query) -> dict[str, Any]:
    return state(request).analysis(query)


def _known(name: str) -> None:
    if name not in ANALYSES:
        raise HTTPException(404, f"no analysis '{name}'; analyses are: {', '.join(ANALYSES)}")


def _params(request: Request) -> dict[str, str]:
    return {k: v for k, v in request.query_params.items() if v != ""}


@api_router.get("/analyses")
def list_analyses(user: Viewer) -> dict[str, Any]:
    """Every analysis of the registry: its name, summary and options (name, kind, default, help, choices)."""
    return {"analyses": [spec.to_dict() for spec in ANALYSES.values()]}


@api_router.get("/analyses/{name}", responses=NOT_FOUND)
def run_analysis(request: Request, name: str, user: Viewer) -> dict[str, Any]:
    """One analysis, its options from the query string (`?top=5&session_gap=30m`); its documented JSON shape."""
    _known(name)
    return _result(request, query_from(name, _params(request)))


@page_router.get("/analyses/{name}", response_class=HTMLResponse)
def analysis_page(request: Request, name: str, user: PageViewer) -> Response:
    if name not in ANALYSES:
        return render(request, "error.html", 404, message=f"no analysis '{name}'; analyses are: {', '.join(ANALYSES)}")
    spec = analysis(name)
    params = _params(request)
    rows: list[dict[str, Any]] = []
    problem = ""
    try:
        rows = spec.rows(_result(request, query_from(name, params)))
    except TouchlensError as exc:
        problem = str(exc)  # the form stays, with what was wrong
    columns = list(rows[0]) if rows else []
    return render(
        request, "analysis.html", spec=spec, fields=spec.fields(), params=params, rows=rows, columns=columns,
        problem=problem,
    )  # fmt: skip
