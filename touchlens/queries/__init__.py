"""Analysis queries: one frozen query class and one pure run function per analysis (see `touchlens.registry`).

``ws.run(FunnelQuery(steps=("browse", "cart", "buy"), window="7d"))`` runs one on a workspace."""

from touchlens.queries.funnels import FunnelQuery
from touchlens.queries.journeys import (
    FlowsQuery,
    NeighboursQuery,
    PathsQuery,
    SankeyQuery,
    ScorecardQuery,
    VariantsQuery,
)
from touchlens.queries.weekly import WeekdaysQuery

__all__ = [
    "FlowsQuery",
    "FunnelQuery",
    "NeighboursQuery",
    "PathsQuery",
    "SankeyQuery",
    "ScorecardQuery",
    "VariantsQuery",
    "WeekdaysQuery",
]
