"""Analyses of the journeys customers take: flows, variants, Sankey, the paths around a touchpoint, the scorecard.

Each is a query (its options, checked when made) and a pure run function over an `Engine`. The run functions
import the engine's side (Ibis, the analytics) when they run: the command line builds its commands from these
queries at startup, which must not load the engine (`tests/test_startup.py`).
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

from touchlens.errors import UsageError, WorkspaceError
from touchlens.model.durations import as_duration
from touchlens.queries.base import Query, option

if TYPE_CHECKING:
    from touchlens.analytics import flows as fl
    from touchlens.analytics import scorecard as sc
    from touchlens.analytics.journeys import JourneyOptions
    from touchlens.engines import Engine
    from touchlens.model.map import OutcomeRule

SESSION_GAP = "Split journeys where a customer is silent this long (e.g. 30m)."
NO_CONVERSION = "the map has no conversion outcome; add outcomes: {conversion: {event: …}}"


def journey_options(session_gap: str | None) -> JourneyOptions:
    from touchlens.analytics.journeys import JourneyOptions

    if session_gap is None:
        return JourneyOptions()
    return JourneyOptions(session_gap=as_duration(session_gap, "session_gap"))


def conversion_of(q: Query) -> OutcomeRule:
    rule = q.the_map.outcomes.conversion
    if rule is None:
        raise WorkspaceError(NO_CONVERSION)
    return rule


@dataclass(frozen=True)
class FlowsQuery(Query):
    name = "flows"
    summary = "The directly-follows graph over touchpoints: edges with counts and median / p90 time, starts, ends."
    session_gap: str | None = option(None, SESSION_GAP, kind="duration")
    by_conversion: bool = option(False, "Converters' and non-converters' flows side by side (JSON).")
    exact: bool = option(False, "Exact median and p90 waits (sorts every wait); by default they come from the "
                         "store's wait sketches where those serve, within 1% of the exact ones.")  # fmt: skip

    def check(self, m: Any) -> None:
        if self.by_conversion:
            conversion_of(self)


@dataclass
class FlowsByConversion:
    """Converters' and non-converters' flows, side by side."""

    groups: dict[str, fl.Flows]

    def to_dict(self) -> dict[str, Any]:
        return {name: flows.to_dict() for name, flows in self.groups.items()}


def run_flows(engine: Engine, q: FlowsQuery) -> fl.Flows | FlowsByConversion:
    from touchlens.analytics import flows as fl

    base = journey_options(q.session_gap)
    if not q.by_conversion:
        return fl.FlowsQuery(base, ranked=engine.ranked, exact=q.exact).run(engine.backend)
    rule = conversion_of(q)
    sides = (("converters", True), ("non_converters", False))
    side = {name: replace(base, conversion=rule, converted=won) for name, won in sides}
    return FlowsByConversion(
        {name: fl.FlowsQuery(options, engine.ranked, q.exact).run(engine.backend) for name, options in side.items()}
    )


@dataclass(frozen=True)
class VariantsQuery(Query):
    name = "variants"
    summary = "Journey variants: each distinct full touchpoint sequence with its count, share and cumulative coverage."
    top: int = option(10, "How many of the most frequent variants to show.", minimum=1)
    session_gap: str | None = option(None, SESSION_GAP, kind="duration")


def run_variants(engine: Engine, q: VariantsQuery) -> fl.Variants:
    from touchlens.analytics import flows as fl

    return fl.VariantsQuery(q.top, journey_options(q.session_gap)).run(engine.backend)


@dataclass(frozen=True)
class SankeyQuery(Query):
    name = "sankey"
    summary = "Sankey data for the first steps of the journeys: nodes per step and the links between them."
    depth: int = option(5, "How many first steps of each journey.", minimum=2, maximum=20)
    top: int = option(8, "Touchpoints kept per step; the rest become 'other'.", minimum=1)
    session_gap: str | None = option(None, SESSION_GAP, kind="duration")


def run_sankey(engine: Engine, q: SankeyQuery) -> dict[str, Any]:
    from touchlens.analytics import flows as fl

    return fl.SankeyQuery(q.depth, q.top, journey_options(q.session_gap)).run(engine.backend)


@dataclass(frozen=True)
class PathsQuery(Query):
    name = "paths"
    summary = "The N touchpoints right after (--from) or before (--to) a touchpoint, with counts and shares."
    from_: str | None = option(None, "Show what follows this touchpoint.", flag="--from")
    to: str | None = option(None, "Show what leads to this touchpoint.")
    steps: int = option(3, "How many steps after (or before).", minimum=1, maximum=20)
    top: int = option(20, "How many of the most frequent paths to show.", minimum=1)

    def check(self, m: Any) -> None:
        if (self.from_ is None) == (self.to is None):
            raise UsageError("give exactly one of from or to (a touchpoint key)")
        self.known_touchpoints(self.from_ or self.to or "", field="from_" if self.from_ else "to")


def run_paths(engine: Engine, q: PathsQuery) -> fl.NextPaths:
    from touchlens.analytics import flows as fl

    anchor = q.from_ or q.to or ""
    return fl.PathsFromQuery(anchor, q.steps, q.to is not None, q.top).run(engine.backend)


@dataclass(frozen=True)
class NeighboursQuery(Query):
    name = "neighbours"
    summary = "Where customers come from before a touchpoint and go right after it: customers, moves, median wait."
    touchpoint: str = option(help="The touchpoint (key).")
    session_gap: str | None = option(None, SESSION_GAP, kind="duration")
    exact: bool = option(False, "Exact median waits (sorts every wait); by default from the store's wait sketches "
                         "where those serve, within 1% of the exact ones.")  # fmt: skip

    def check(self, m: Any) -> None:
        self.known_touchpoints(self.touchpoint)


def run_neighbours(engine: Engine, q: NeighboursQuery) -> fl.Neighbours:
    from touchlens.analytics import flows as fl

    return fl.NeighboursQuery(q.touchpoint, journey_options(q.session_gap), q.exact).run(engine.backend)


@dataclass(frozen=True)
class ScorecardQuery(Query):
    name = "scorecard"
    summary = "Per touchpoint: customers reached, events, conversion after it and lift (95% interval), drop-off."
    window: str = option("30d", "Count a conversion this soon after the touchpoint (30d, 7d, 48h).", kind="duration")
    by: str = option("touchpoint", "touchpoint (default) or stage: one row per stage.", choices=("touchpoint", "stage"))
    breakdown: str | None = option(
        None, "One scorecard per persona or per channel (JSON).", choices=("persona", "channel")
    )
    persona: str | None = option(None, "Only this persona's customers.")
    channel: str | None = option(None, "Only the journeys' events through this channel.")
    exact: bool = option(False, "Exact median and p90 times to the next touch (sorts every wait); by default "
                         "from the store's wait sketches where those serve, within 1% of the exact ones.")  # fmt: skip


@dataclass
class ScorecardBreakdown:
    """One scorecard per persona or channel; groups nobody reached are left out."""

    breakdown: str
    groups: list[tuple[str, sc.Scorecard]]

    def to_dict(self) -> dict[str, Any]:
        cards = [{"group": g, **card.to_dict()} for g, card in self.groups]
        return {"breakdown": self.breakdown, "groups": [c for c in cards if c["customers"]]}


def run_scorecard(engine: Engine, q: ScorecardQuery) -> sc.Scorecard | ScorecardBreakdown:
    if q.breakdown == "persona":
        groups = [(p.key, _scorecard(engine, replace(q, persona=p.key))) for p in q.the_map.personas]
        return ScorecardBreakdown("persona", groups)
    if q.breakdown == "channel":
        return ScorecardBreakdown(
            "channel", [(c, _scorecard(engine, replace(q, channel=c))) for c in channels_seen(engine)]
        )
    return _scorecard(engine, q)


def _scorecard(engine: Engine, q: ScorecardQuery) -> sc.Scorecard:
    from touchlens.analytics import scorecard as sc
    from touchlens.analytics.journeys import JourneyOptions

    m = q.the_map
    stage_of = tuple((t.key, t.stage or "(none)") for t in m.touchpoints) if q.by == "stage" else ()
    options = JourneyOptions(persona=q.persona, channel=q.channel)
    query = sc.ScorecardQuery(
        m.outcomes.conversion,
        as_duration(q.window, "window"),
        options=options,
        stage_of=stage_of,
        ranked=engine.ranked,
        exact=q.exact,
    )
    card = query.run(engine.backend)
    card.by = q.by
    return card


def channels_seen(engine: Engine) -> list[str]:
    """The channels the mapped events went through (for a scorecard per channel)."""
    from touchlens.analytics.engine import arrow, mapped_events

    channels = mapped_events(engine.backend).select("channel").distinct()
    found = arrow(engine.backend, channels).column("channel").to_pylist()
    return sorted(c for c in found if c is not None)
