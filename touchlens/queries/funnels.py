"""The funnel as one query: the steps, window, order, what spoils a journey and the breakdown, checked against the
map when resolved and run in one call (it took two: build, then run)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from touchlens.errors import BadOption, UnknownItem
from touchlens.model.durations import as_duration
from touchlens.queries.base import Query, option

if TYPE_CHECKING:  # the engine's side loads when a funnel runs, not when the CLI starts (see journeys.py)
    from touchlens.analytics import funnels as fu
    from touchlens.engines import Engine

STEPS = "Touchpoint keys in order, comma-separated: a,b,c (any number)."
WINDOW = "Time allowed from the first step to the last (30m, 48h, 7d)."
ORDER = "any: other events may come between steps; strict: none may."
ORDERS = ("any", "strict")  # analytics.funnels.Order's members (a test keeps them equal)
EXCLUDE = "Touchpoints (comma-separated) that spoil a journey between first and last step."
BREAKDOWN = "Counts per persona, channel or property:NAME (of the first step's event)."


@dataclass(frozen=True)
class FunnelQuery(Query):
    name = "funnel"
    summary = "How many customers reach each step of a touchpoint sequence within the window, and how fast."
    steps: tuple[str, ...] = option(help=STEPS)
    window: str = option("7d", WINDOW, kind="duration")
    order: str = option("any", ORDER, choices=ORDERS)
    exclude: tuple[str, ...] = option((), EXCLUDE)
    breakdown: str | None = option(None, BREAKDOWN)

    def __post_init__(self) -> None:
        super().__post_init__()
        if not self.steps:
            raise BadOption("a funnel needs at least one step: a,b,c", field="steps")

    def check(self, m: Any) -> None:
        self.known_touchpoints(*self.steps, field="steps")
        self.known_touchpoints(*self.exclude, field="exclude")

    def analytic(self) -> fu.FunnelQuery:
        """The engine's funnel query (a repeated excluded key excludes nothing more)."""
        from touchlens.analytics import funnels as fu
        from touchlens.analytics.journeys import JourneyOptions

        exclude = tuple(dict.fromkeys(self.exclude))
        window = as_duration(self.window, "window")
        return fu.FunnelQuery(self.steps, window, fu.Order(self.order), JourneyOptions(), exclude)


def run_funnel(engine: Engine, q: FunnelQuery) -> fu.Funnel:
    analytic = q.analytic()
    funnel = analytic.run(engine.backend)
    if q.breakdown is not None:
        try:
            funnel.breakdown = analytic.breakdown(engine.backend, q.breakdown)
        except ValueError as exc:
            raise UnknownItem(str(exc), field="breakdown") from None
    return funnel


def dropped_at(engine: Engine, q: FunnelQuery, step: int) -> list[str]:
    """Customers who reached step `step` (1-based) of the funnel but not the next."""
    return q.analytic().dropped_at(engine.backend, step)
