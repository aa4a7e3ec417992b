"""The analysis half of the `Workspace` facade: each `touchlens analyze` command is one call here.

A mixin of `Workspace`, which supplies the map, the events store and the engine.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from contextlib import AbstractContextManager
from dataclasses import replace
from datetime import timedelta
from typing import TYPE_CHECKING, Any

from touchlens.errors import BadOption, UnknownItem, WorkspaceError
from touchlens.model.durations import as_duration
from touchlens.once import Latest
from touchlens.queries import funnels as funnel_queries
from touchlens.queries import journeys as queries

if TYPE_CHECKING:
    import duckdb
    import ibis

    from touchlens.analytics.attribution import Attribution
    from touchlens.analytics.attribution import Path as Path_
    from touchlens.analytics.flows import Flows, NextPaths, Variants
    from touchlens.analytics.funnels import Funnel, FunnelQuery
    from touchlens.analytics.journeys import JourneyOptions
    from touchlens.analytics.paths import PathsQuery
    from touchlens.analytics.scorecard import Scorecard
    from touchlens.model.map import TouchpointMap
    from touchlens.queries.base import Query

# DuckDB's holistic quantiles kept 10M transition times within an 800 MB limit, but spilled 40+ GiB with 98M
# in 8 GB; past this much memory limit a mapped event, quantiles rank the values instead (engine.with_quantiles).
HOLISTIC_BYTES = 96


class Analyses:
    """Journeys' analyses over the events store; `Workspace` provides the methods below that raise."""

    def map(self) -> TouchpointMap:
        raise NotImplementedError

    def map_or_empty(self) -> TouchpointMap:
        raise NotImplementedError

    def events(self, read_only: bool = False) -> AbstractContextManager[duckdb.DuckDBPyConnection]:
        raise NotImplementedError

    def _backend(self) -> ibis.BaseBackend:
        raise NotImplementedError

    def _memory_bytes(self) -> int:
        raise NotImplementedError

    def run(self, query: Query) -> Any:
        raise NotImplementedError

    def _shared_version(self) -> tuple[Any, ...] | None:
        raise NotImplementedError

    _scorecards: Latest[Scorecard]

    def _ranked(self, backend: ibis.BaseBackend) -> bool:
        # The engine, Ibis and the statistics load inside the methods that use them: the CLI opens this facade for
        # light commands too (tests/test_startup.py).
        from touchlens.engines import Engine

        return Engine(backend, self._memory_bytes()).ranked

    # The journey analyses below are the registry's (touchlens.queries.journeys), kept as methods for callers
    # that predate `ws.run(query)`; each is one call of it.

    def flows(self, options: JourneyOptions | None = None, exact: bool = False) -> Flows:
        """The directly-follows graph over touchpoints, with start and end counts; median and p90 waits from the
        wait sketches where they serve (within 1%), or `exact`."""
        from touchlens.analytics.flows import FlowsQuery
        from touchlens.analytics.journeys import JourneyOptions

        backend = self._backend()
        return FlowsQuery(options or JourneyOptions(), ranked=self._ranked(backend), exact=exact).run(backend)

    def flows_by_conversion(self, options: JourneyOptions | None = None) -> dict[str, Flows]:
        """Flows of customers who converted and of those who did not, side by side."""
        rule = self.map().outcomes.conversion
        if rule is None:
            raise WorkspaceError("the map has no conversion outcome; add outcomes: {conversion: {event: …}}")
        from touchlens.analytics.journeys import JourneyOptions

        base = options or JourneyOptions()
        return {
            name: self.flows(replace(base, conversion=rule, converted=won))
            for name, won in (("converters", True), ("non_converters", False))
        }

    def sankey(self, depth: int = 5, top: int = 8, options: JourneyOptions | None = None) -> dict[str, Any]:
        """Sankey nodes and links of the journeys' first `depth` steps, small touchpoints grouped as "other"."""
        from touchlens.analytics.flows import SankeyQuery
        from touchlens.analytics.journeys import JourneyOptions

        return SankeyQuery(depth, top, options or JourneyOptions()).run(self._backend())

    def variants(self, top: int | None = 10, options: JourneyOptions | None = None) -> Variants:
        """The most frequent full touchpoint sequences, with share and cumulative coverage."""
        from touchlens.analytics.flows import VariantsQuery
        from touchlens.analytics.journeys import JourneyOptions

        return VariantsQuery(top, options or JourneyOptions()).run(self._backend())

    def funnel(
        self,
        steps: Sequence[str],
        window: str | timedelta = "7d",
        order: str = "any",
        exclude: Sequence[str] = (),
        options: JourneyOptions | None = None,
    ) -> FunnelQuery:
        """The funnel query for `steps` (touchpoint keys, in order), checked against the map; `.run()` it."""
        from touchlens.analytics.funnels import FunnelQuery, Order
        from touchlens.analytics.journeys import JourneyOptions

        if not steps:
            raise BadOption("a funnel needs at least one step: --steps a,b,c")
        exclude = tuple(dict.fromkeys(exclude))  # a repeated key excludes nothing more
        known = {t.key for t in self.map_or_empty().touchpoints}
        unknown = [s for s in (*steps, *exclude) if s not in known]
        if unknown:
            raise UnknownItem(f"unknown touchpoint '{unknown[0]}'; touchpoints are: {', '.join(sorted(known))}")
        if order not in Order.__members__:
            raise UnknownItem(f"unknown order '{order}'; orders are: {', '.join(Order.__members__)}")
        window_ = as_duration(window, "window")
        return FunnelQuery(tuple(steps), window_, Order(order), options or JourneyOptions(), tuple(exclude))

    def run_funnel(self, query: FunnelQuery, breakdown: str | None = None) -> Funnel:
        backend = self._backend()
        funnel = query.run(backend)
        if breakdown is not None:
            try:
                funnel.breakdown = query.breakdown(backend, breakdown)
            except ValueError as exc:
                raise UnknownItem(str(exc)) from None
        return funnel

    def funnel_dropped_at(self, query: funnel_queries.FunnelQuery, step: int) -> list[str]:
        """Customers who reached `step` (1-based) of the registry's funnel query but not the next."""
        from touchlens.engines import Engine

        return funnel_queries.dropped_at(Engine(self._backend()), query.resolve(self.map_or_empty()), step)

    def funnel_dropped(self, query: FunnelQuery, step: int) -> list[str]:
        """Customers who reached `step` (1-based) of the funnel but not the next."""
        try:
            return query.dropped_at(self._backend(), step)
        except ValueError as exc:
            raise UnknownItem(str(exc)) from None

    def attribution(
        self,
        model: str = "markov",
        by: str = "touchpoint",
        order: int = 1,
        half_life: str | timedelta = "7d",
        lookback: str | timedelta | None = None,
    ) -> Attribution:
        """Credit for the workspace's conversions by touchpoint, channel or stage, with any model."""
        from touchlens.analytics.attribution import attribute, check_options, from_credit

        check_options(order)
        if model == "markov" and order == 1:
            return self._markov(by, lookback)
        if model != "time-decay":
            return attribute(self.paths_for_models(by, lookback), model, by=by, order=order)
        query, half = self._paths_query(by, lookback), as_duration(half_life, "half_life")
        if not half:
            raise BadOption("give a duration longer than 0 (e.g. 7d)", field="half_life")
        credit, value = query.time_decay(self._backend(), half)
        if by == "stage":
            credit, value = self._by_stage(credit), self._by_stage(value)
        # Each converting path with a touch shares out one conversion, so the credit adds up to their count (an
        # integer up to float rounding): no second read of every path.
        shared = sum(credit.values())
        if math.isfinite(shared):
            total = float(round(shared))
        else:  # weights that underflow leave no shares to add: count the paths themselves
            total = sum(p.conversions for p in self.paths_for_models(by, lookback) if p.steps)
        return from_credit("time-decay", by, total, credit, value)

    def _markov(self, by: str, lookback: str | timedelta | None) -> Attribution:
        """Order-1 Markov from the chain the engine counts: a few hundred rows, however many distinct paths."""
        from touchlens.analytics.attribution import from_credit, removal_credit

        chain = self._paths_query(by, lookback).transitions(self._backend())
        if by == "stage":
            chain = chain.by({t.key: t.stage or "(none)" for t in self.map().touchpoints})
        credit, value = removal_credit(chain)
        return from_credit("markov order 1", by, chain.conversions, credit, value)

    def _paths_query(self, by: str, lookback: str | timedelta | None = None) -> PathsQuery:
        from touchlens.analytics.paths import PathsQuery

        m = self.map()
        if m.outcomes.conversion is None:
            raise WorkspaceError("the map has no conversion outcome; add outcomes: {conversion: {event: …}}")
        if by not in ("touchpoint", "channel", "stage"):
            raise UnknownItem(f"unknown --by '{by}'; choose touchpoint, channel or stage")
        window = as_duration(lookback, "lookback") if lookback is not None else None
        if by != "channel":
            return PathsQuery(m.outcomes.conversion, "touchpoint", lookback=window)
        # Events without a channel of their own (Segment's, say) take their touchpoint's channel in the map.
        channel_of = tuple((t.key, t.channel) for t in m.touchpoints if t.channel)
        return PathsQuery(m.outcomes.conversion, "channel", lookback=window, channel_of=channel_of)

    def _by_stage(self, per_touchpoint: dict[str, float]) -> dict[str, float]:
        stage_of = {t.key: t.stage or "(none)" for t in self.map().touchpoints}
        out: dict[str, float] = {}
        for key, amount in per_touchpoint.items():
            out[stage_of.get(key, "(none)")] = out.get(stage_of.get(key, "(none)"), 0.0) + amount
        return out

    def attribution_paths(self, by: str = "touchpoint", lookback: str | timedelta | None = None) -> list[Path_]:
        """Journeys cut at each conversion (the map's conversion outcome), grouped by touchpoint, channel or stage."""
        return list(self.paths_for_models(by, lookback))

    def paths_for_models(self, by: str = "touchpoint", lookback: str | timedelta | None = None) -> Sequence[Path_]:
        """`attribution_paths` as the models read them: arrays, with `Path` objects only if iterated."""
        from touchlens.analytics.attribution import Path as Path_
        from touchlens.analytics.attribution import Paths

        paths = self._paths_query(by, lookback).run(self._backend())
        if by != "stage":
            return paths
        stage_of = {t.key: t.stage or "(none)" for t in self.map().touchpoints}
        if isinstance(paths, Paths):
            return paths.regrouped(stage_of, "(none)")
        return [
            Path_(tuple(stage_of.get(s, "(none)") for s in p.steps), p.conversions, p.nulls, p.value) for p in paths
        ]

    def scorecard(self, window: str | timedelta = "30d", by: str = "touchpoint", exact: bool = False) -> Scorecard:
        """Per touchpoint (or stage): reach, volume, conversion within `window` after it, lift, drop-off, repeats;
        times to the next touch from the wait sketches where they serve (within 1%), or `exact`."""
        text = window if isinstance(window, str) else f"{int(window.total_seconds())}s"
        query = queries.ScorecardQuery(window=text, by=by, exact=exact)
        version = self._shared_version()
        if version is None:
            return self.run(query)  # type: ignore[no-any-return]
        # A server's page asks for it, and so do the insights and health beside it: one computation.
        return self._scorecards.get((version, query), lambda: self.run(query))

    def scorecard_breakdown(
        self, breakdown: str, window: str | timedelta = "30d", by: str = "touchpoint"
    ) -> dict[str, Any]:
        """One scorecard per persona (its customers) or per channel (the journeys' events through it)."""
        text = window if isinstance(window, str) else f"{int(window.total_seconds())}s"
        return self.run(queries.ScorecardQuery(window=text, by=by, breakdown=breakdown)).to_dict()  # type: ignore[no-any-return]

    def paths_around(self, anchor: str, steps: int = 3, before: bool = False, top: int = 20) -> NextPaths:
        """The touchpoints customers visit right after (or before) `anchor`, as counted sequences."""
        query = (
            queries.PathsQuery(to=anchor, steps=steps, top=top)
            if before
            else queries.PathsQuery(anchor, None, steps, top)
        )
        return self.run(query)  # type: ignore[no-any-return]


def attribution(
    source: Analyses | list[Path_],
    model: str,
    by: str = "touchpoint",
    order: int = 1,
    half_life: str | timedelta = "7d",
    bootstrap_samples: int = 0,
    lookback: str | timedelta | None = None,
) -> Attribution:
    """One model's credit, from a workspace's journeys or from given paths, with bootstrap intervals on request."""
    from touchlens.analytics.attribution import attribute, bootstrap, check_options, with_intervals

    check_options(order, bootstrap_samples)
    if isinstance(source, Analyses):
        result = source.attribution(model, by, order, half_life, lookback)
        paths = source.paths_for_models(by, lookback) if bootstrap_samples else []
    else:
        result, paths = attribute(source, model, by="key", order=order), source
    if not bootstrap_samples:
        return result
    if model == "time-decay":
        raise UnknownItem("works on paths; time-decay has no bootstrap yet", field="bootstrap")
    return with_intervals(result, bootstrap(paths, model, order, bootstrap_samples))


def compare_attribution(
    source: Analyses | list[Path_],
    models: Sequence[str],
    by: str = "touchpoint",
    order: int = 1,
    half_life: str | timedelta = "7d",
    bootstrap_samples: int = 0,
    lookback: str | timedelta | None = None,
) -> list[Attribution]:
    """Several models side by side over one read of the paths (the engine's part is the slow one)."""
    from touchlens.analytics.attribution import attribute, bootstrap, check_options, with_intervals

    check_options(order, bootstrap_samples)
    if not isinstance(source, Analyses):
        return [attribution(source, m, by, order, half_life, bootstrap_samples, lookback) for m in models]
    # Order-1 Markov counts its chain in the engine; the other models (and bootstrap) need the paths in Python,
    # and once they are read, Markov from them is numpy arithmetic (cheaper than the engine counting again).
    in_engine = ("time-decay", "markov") if order == 1 and not bootstrap_samples else ("time-decay",)
    needs_paths = any(m not in in_engine for m in models)
    paths = source.paths_for_models(by, lookback) if needs_paths else []
    in_engine = ("time-decay",) if needs_paths else in_engine
    out = []
    for m in models:
        if m in in_engine:
            out.append(attribution(source, m, by, order, half_life, bootstrap_samples, lookback))
            continue
        result = attribute(paths, m, by=by, order=order)
        if bootstrap_samples:
            result = with_intervals(result, bootstrap(paths, m, order, bootstrap_samples))
        out.append(result)
    return out
