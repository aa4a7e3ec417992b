"""Every analysis by name: its query class, its run function and the rows of its result that make a table.

The command line (`touchlens analyze NAME`), the REST API (`/api/analyses/NAME`) and the web page
(`/analyses/NAME`) are generated from this table, and all three cache a result under its query. Adding an
analysis is a query class, a run function and one line here (docs/architecture.md shows one being added).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from touchlens.errors import UnknownItem
from touchlens.queries import funnels, journeys, weekly
from touchlens.queries.base import Field, Query

if TYPE_CHECKING:  # the registry is read when the CLI starts; the engine loads when an analysis runs
    from touchlens.engines import Engine

Rows = Callable[[dict[str, Any]], list[dict[str, Any]]]


@dataclass(frozen=True)
class Analysis:
    """One analysis: how to ask for it (`query`), how to compute it (`run`), which rows make its table."""

    query: type[Query]
    run: Callable[[Engine, Any], Any]
    rows: Rows

    @property
    def name(self) -> str:
        return self.query.name

    @property
    def summary(self) -> str:
        return self.query.summary

    def fields(self) -> list[Field]:
        return self.query.fields()

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "summary": self.summary, "fields": [f.to_dict() for f in self.fields()]}


def _key(name: str) -> Rows:
    return lambda result: list(result.get(name, []))


def _neighbour_rows(result: dict[str, Any]) -> list[dict[str, Any]]:
    sides = (("from", result.get("comes_from", [])), ("to", result.get("goes_to", [])))
    return [{"direction": d, **row} for d, rows in sides for row in rows]


def _entry(query: type[Query], run: Callable[[Engine, Any], Any], rows: Rows) -> tuple[str, Analysis]:
    return query.name, Analysis(query, run, rows)


ANALYSES: dict[str, Analysis] = dict(
    [
        _entry(journeys.FlowsQuery, journeys.run_flows, _key("edges")),
        _entry(journeys.VariantsQuery, journeys.run_variants, _key("variants")),
        _entry(journeys.SankeyQuery, journeys.run_sankey, _key("links")),
        _entry(journeys.PathsQuery, journeys.run_paths, _key("paths")),
        _entry(journeys.NeighboursQuery, journeys.run_neighbours, _neighbour_rows),
        _entry(journeys.ScorecardQuery, journeys.run_scorecard, lambda r: list(r.get(f"{r.get('by')}s", []))),
        _entry(funnels.FunnelQuery, funnels.run_funnel, _key("steps")),
        _entry(weekly.WeekdaysQuery, weekly.run_weekdays, _key("touchpoints")),
    ]
)


def analysis(name: str) -> Analysis:
    try:
        return ANALYSES[name]
    except KeyError:
        raise UnknownItem(f"unknown analysis '{name}'; analyses are: {', '.join(sorted(ANALYSES))}") from None


def analysis_of(query: Query) -> Analysis:
    return analysis(query.name)


def query_from(name: str, params: Mapping[str, str]) -> Query:
    """The named analysis's query from text values (a query string); errors name the field."""
    return analysis(name).query.parse(params)


def as_dict(result: Any) -> dict[str, Any]:
    """A result in its documented JSON shape."""
    return result if isinstance(result, dict) else dict(result.to_dict())
