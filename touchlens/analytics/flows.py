"""Flows: the directly-follows graph over touchpoints, start and end counts, and journey variants.

Counts come from the engine; the small results are shaped here. Every edge count adds up to the number of
journey events minus the number of journeys (each journey's last event has no successor).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

import ibis

from touchlens.analytics import sketches
from touchlens.analytics.engine import arrow, mapped_events, seconds_between, with_quantiles
from touchlens.analytics.journeys import JourneyOptions, in_order, layer_state


@dataclass(frozen=True)
class Edge:
    source: str
    target: str
    count: int
    median_seconds: float | None
    p90_seconds: float | None


@dataclass
class Flows:
    edges: list[Edge]
    start: dict[str, int]
    end: dict[str, int]

    def to_dict(self) -> dict[str, Any]:
        return {
            "edges": [e.__dict__ for e in self.edges],
            "start": dict(self.start),
            "end": dict(self.end),
        }


QUANTILES = {"median_seconds": 0.5, "p90_seconds": 0.9}


@dataclass(frozen=True)
class FlowsQuery:
    """The directly-follows graph of the journeys `options` selects."""

    options: JourneyOptions = field(default_factory=JourneyOptions)
    # Quantiles by ranking, in bounded memory (for big data: `engine.with_quantiles`).
    ranked: bool = False
    # Exact median and p90 waits, from every wait sorted; otherwise, where the store keeps wait sketches and the
    # options keep whole journeys, read from the sketches within relative error `sketches.ALPHA`.
    exact: bool = False

    def to_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        """Every (touchpoint, next touchpoint) pair with its count and times, plus journey starts.

        A null `target` marks journey ends; `starts` counts the journeys that begin at `source`.
        """
        if not self.exact and self.options.whole() and sketches.served(backend):
            return self._sketched(backend)
        t = self.options.touches(backend, "pos", "next_touchpoint", "next_ts")
        steps = t.mutate(
            target=t.next_touchpoint,
            seconds=seconds_between(backend, t.next_ts, t.ts),
            first=(t.pos == 0).cast("int64"),
        )
        return with_quantiles(
            steps.mutate(source=steps.touchpoint),
            ["source", "target"],
            "seconds",
            QUANTILES,
            self.ranked,
            count=lambda g: g.count(),
            starts=lambda g: g.first.sum(),
        )

    def _sketched(self, backend: ibis.BaseBackend) -> ibis.Table:
        """`to_expr` with the quantiles from the wait sketches: the counts from the layer, no wait sorted."""
        t = self.options.touches(backend, "pos", "next_touchpoint")
        counts = t.group_by(source=t.touchpoint, target=t.next_touchpoint).aggregate(
            count=t.count(), starts=(t.pos == 0).cast("int64").sum()
        )
        times = sketches.wait_quantiles(backend, ["source", "target"], QUANTILES)
        joined = counts.left_join(times, ["source", "target"])
        return joined.select("source", "target", "count", "starts", *QUANTILES)

    def run(self, backend: ibis.BaseBackend) -> Flows:
        rows = arrow(backend, self.to_expr(backend)).to_pylist()
        start: dict[str, int] = {}
        for r in rows:
            if r["starts"]:
                start[r["source"]] = start.get(r["source"], 0) + int(r["starts"])
        end = {r["source"]: int(r["count"]) for r in rows if r["target"] is None}
        edges = [r for r in rows if r["target"] is not None]
        edges.sort(key=lambda r: (-r["count"], r["source"], r["target"]))
        return Flows(
            edges=[
                Edge(r["source"], r["target"], int(r["count"]), r["median_seconds"], r["p90_seconds"]) for r in edges
            ],
            start=_ranked(start),
            end=_ranked(end),
        )


@dataclass(frozen=True)
class NeighboursQuery:
    """The touchpoints right before and right after `key` in the journeys: the moves (each step from one to the
    next) and the customers who made them, who are fewer when some make the move again."""

    key: str
    options: JourneyOptions = field(default_factory=JourneyOptions)
    # Exact median waits; otherwise from the wait sketches where they serve (`FlowsQuery.exact`).
    exact: bool = False

    def to_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        sketched = not self.exact and self.options.whole() and sketches.served(backend)
        t = self.options.touches(backend, "next_touchpoint", "next_ts")
        s = t.mutate(nxt=t.next_touchpoint, wait=seconds_between(backend, t.next_ts, t.ts))
        s = s.filter(s.nxt.notnull())
        # A move from the touchpoint to itself is both an arrival and a departure: both sides list it.
        out = s.filter(s.touchpoint == self.key).mutate(direction=ibis.literal("out"), other=s.nxt)
        into = s.filter(s.nxt == self.key).mutate(direction=ibis.literal("in"), other=s.touchpoint)
        moves = out.union(into)
        counts = {"moves": moves.count(), "customers": moves.customer_id.nunique()}
        if not sketched:
            return moves.group_by(["direction", "other"]).aggregate(**counts, median_seconds=moves.wait.median())
        found = moves.group_by(["direction", "other"]).aggregate(**counts)
        # Each move is a pair's wait: the key's departures are the pairs (key, other), its arrivals (other, key).
        times = sketches.wait_quantiles(backend, ["source", "target"], {"median_seconds": 0.5})
        out_pair = (found.direction == "out") & (times.source == self.key) & (times.target == found.other)
        in_pair = (found.direction == "in") & (times.source == found.other) & (times.target == self.key)
        joined = found.left_join(times, out_pair | in_pair)
        return joined.select("direction", "other", "moves", "customers", "median_seconds")

    def run(self, backend: ibis.BaseBackend) -> Neighbours:
        rows = arrow(backend, self.to_expr(backend)).to_pylist()
        rows.sort(key=lambda r: (-r["customers"], -r["moves"], r["other"]))
        side = {d: [_neighbour(r) for r in rows if r["direction"] == d] for d in ("in", "out")}
        return Neighbours(self.key, side["in"], side["out"])


@dataclass
class Neighbours:
    touchpoint: str
    comes_from: list[dict[str, Any]]
    goes_to: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"touchpoint": self.touchpoint, "comes_from": self.comes_from, "goes_to": self.goes_to}


def _neighbour(r: dict[str, Any]) -> dict[str, Any]:
    return {"touchpoint": r["other"], "customers": int(r["customers"]), "moves": int(r["moves"]),
            "median_seconds": r["median_seconds"]}  # fmt: skip


def _ranked(counts: dict[str, int]) -> dict[str, int]:
    return dict(sorted(counts.items(), key=lambda kv: (-kv[1], kv[0])))


@dataclass(frozen=True)
class Variant:
    steps: list[str]
    count: int
    share: float
    cumulative: float


@dataclass
class Variants:
    variants: list[Variant]
    journeys: int

    def to_dict(self) -> dict[str, Any]:
        return {"journeys": self.journeys, "variants": [v.__dict__ for v in self.variants]}


CODES = ibis.schema({"touchpoint": "string", "code": "int32"})


@dataclass(frozen=True)
class VariantsQuery:
    """The most frequent full touchpoint sequences; `top` None keeps them all."""

    top: int | None = 10
    options: JourneyOptions = field(default_factory=JourneyOptions)

    def to_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        t = self.options.touches(backend, "pos")
        numbered = t.mutate(step=t.pos)
        # Ordered collection through sorting (step, touchpoint) structs: portable to engines without
        # collect(order_by=...), such as Spark.
        paths = numbered.group_by("journey").aggregate(
            seq=ibis.struct({"step": numbered.step, "touchpoint": numbered.touchpoint}).collect()
        )
        paths = paths.mutate(steps=paths.seq.sort().map(lambda s: s.touchpoint))
        return paths.group_by("steps").aggregate(count=paths.count())

    def coded_expr(self, backend: ibis.BaseBackend, keys: list[str]) -> ibis.Table:
        """The same variants with each touchpoint as its place in `keys` (sorted; every journey's touchpoints
        among them), the `top` most frequent only, each row with the count of all journeys: on DuckDB, which
        orders within an aggregate, ordering and grouping lists of numbers is twice as fast as texts of the keys
        (2.0 s against 4.3 s for 500,000 journeys) and four times as fast as sorting structs."""
        t = self.options.touches(backend, "pos")
        codes = ibis.memtable({"touchpoint": keys, "code": list(range(len(keys)))}, schema=CODES)
        t = t.left_join(codes, "touchpoint")  # a touchpoint first seen since `keys` were read: -1
        paths = t.group_by("journey").aggregate(steps=t.code.fill_null(-1).collect(order_by=t.pos))
        grouped = paths.group_by("steps").aggregate(count=paths.count())
        grouped = grouped.mutate(total=grouped["count"].sum().over(ibis.window()))
        ranked = grouped.order_by([ibis.desc("count"), "steps"])  # codes follow the keys' order: as lists sort
        return ranked.limit(self.top) if self.top is not None else ranked

    def run(self, backend: ibis.BaseBackend) -> Variants:
        if backend.name == "duckdb":
            for _ in range(2):  # again if live events brought a touchpoint between the two reads
                mapped = mapped_events(backend).select("touchpoint").distinct()
                keys = sorted(arrow(backend, mapped).column("touchpoint").to_pylist())
                coded = arrow(backend, self.coded_expr(backend, keys)).to_pylist()
                if all(c >= 0 for r in coded for c in r["steps"]):
                    rows = [{"steps": [keys[c] for c in r["steps"]], "count": r["count"]} for r in coded]
                    return self._variants(rows, coded[0]["total"] if coded else 0)
        rows = arrow(backend, self.to_expr(backend)).to_pylist()
        rows.sort(key=lambda r: (-r["count"], r["steps"]))
        return self._variants(rows[: self.top] if self.top is not None else rows, sum(r["count"] for r in rows))

    def _variants(self, rows: list[dict[str, Any]], total: int) -> Variants:
        kept, running = [], 0
        for r in rows:
            running += r["count"]
            kept.append(Variant(list(r["steps"]), int(r["count"]), r["count"] / total, running / total))
        return Variants(kept, int(total))


@dataclass(frozen=True)
class NextPaths:
    anchor: str
    direction: str
    paths: list[dict[str, Any]]

    def to_dict(self) -> dict[str, Any]:
        return {"anchor": self.anchor, "direction": self.direction, "paths": self.paths}


# Steps of a path found by joins beyond the layer's neighbours; more take a window. A guard on memory, not on
# time: at 10M events five steps after took 0.6 s joined against 1.8 s, eight 1.5 s against 2.2 s, but each join
# holds a table of the anchor's visits and ten ran out of a 1 GB limit (more than three were not measured so).
JOINED = 3


@dataclass(frozen=True)
class PathsFromQuery:
    """The `steps` touchpoints after (or before) each visit of `anchor`, counted; shorter where journeys end."""

    anchor: str
    steps: int = 3
    before: bool = False
    top: int = 20
    options: JourneyOptions = field(default_factory=JourneyOptions)

    def to_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        if self.options.cut() or layer_state(backend) == "none":
            return self._windowed(backend)
        # The journey layer's neighbours give the first steps (two after, one before) with no sort. A step beyond
        # them is a neighbour of another touch of the journey, found by its position: a join that builds on the
        # anchor's visits, not a sort of every touch (10M events, three steps after: 2.2–2.5 s → 0.35–0.55 s).
        # Past `JOINED` such steps, a window over the positions.
        near = (("prev_touchpoint",) if self.before else ("next_touchpoint", "next2_touchpoint"))[: self.steps]
        far = range(len(near) + 1, self.steps + 1)
        t = self.options.touches(backend, *near, *(("pos",) if far else ()))
        steps = {f"s{k}": t[name] for k, name in enumerate(near, 1)}
        if len(far) > JOINED:
            w = ibis.window(group_by=t.journey, order_by=t.pos)
            shift = t.touchpoint.lag if self.before else t.touchpoint.lead
            steps |= {f"s{k}": shift(k).over(w) for k in far}
            far = range(0)
        around = t.mutate(**steps)
        visits = around.filter(around.touchpoint == self.anchor).select("journey", *(("pos",) if far else ()), *steps)
        for k in far:
            # Before: the touch k - 1 back, its previous touch; after: the touch k - 2 on, the one two after it.
            offset, name = (1 - k, "prev_touchpoint") if self.before else (k - 2, "next2_touchpoint")
            other = t.select(j=t.journey, p=t.pos, **{f"s{k}": t[name]})
            visits = visits.left_join(other, [visits.journey == other.j, visits.pos + offset == other.p])
            visits = visits.drop("j", "p")
        columns = [f"s{k}" for k in range(1, self.steps + 1)]
        return visits.group_by(columns).aggregate(count=visits.count())

    def _windowed(self, backend: ibis.BaseBackend) -> ibis.Table:
        """Without the layer (cut journeys, a lake, a store never built) the neighbours are computed anyway: one
        window over the journeys' events in time order, as the layer's own columns would take."""
        t = self.options.apply(backend)
        w = in_order(t)
        shift = t.touchpoint.lag if self.before else t.touchpoint.lead
        around = t.mutate(**{f"s{k}": shift(k).over(w) for k in range(1, self.steps + 1)})
        visits = around.filter(around.touchpoint == self.anchor)
        columns = [f"s{k}" for k in range(1, self.steps + 1)]
        return visits.group_by(columns).aggregate(count=visits.count())

    def run(self, backend: ibis.BaseBackend) -> NextPaths:
        rows = arrow(backend, self.to_expr(backend)).to_pylist()
        total = sum(r["count"] for r in rows)
        out = []
        for r in sorted(rows, key=lambda r: (-r["count"], [str(v) for v in r.values()]))[: self.top]:
            seq = [r[f"s{k}"] for k in range(1, self.steps + 1) if r[f"s{k}"] is not None]
            out.append(
                {"steps": seq[::-1] if self.before else seq, "count": int(r["count"]), "share": r["count"] / total}
            )
        return NextPaths(self.anchor, "before" if self.before else "after", out)


@dataclass(frozen=True)
class SankeyQuery:
    """The first `depth` steps of every journey as Sankey links; beyond the `top` touchpoints of a step, "other"."""

    depth: int = 5
    top: int = 8
    options: JourneyOptions = field(default_factory=JourneyOptions)

    def to_expr(self, backend: ibis.BaseBackend) -> ibis.Table:
        t = self.options.touches(backend, "pos", "next_touchpoint")
        steps = t.mutate(step=t.pos, target=t.next_touchpoint)
        early = steps.filter(steps.step < self.depth)
        return early.group_by(["step", "touchpoint", "target"]).aggregate(count=early.count())

    def run(self, backend: ibis.BaseBackend) -> dict[str, Any]:
        rows = arrow(backend, self.to_expr(backend)).to_pylist()
        volume: dict[tuple[int, str], int] = {}
        for r in rows:
            volume[(r["step"], r["touchpoint"])] = volume.get((r["step"], r["touchpoint"]), 0) + r["count"]
        keep = self._kept(volume)
        links: dict[tuple[int, str, str], int] = {}
        for r in rows:
            if r["target"] is None or r["step"] + 1 >= self.depth:
                continue
            source = r["touchpoint"] if r["touchpoint"] in keep[r["step"]] else "other"
            target = r["target"] if r["target"] in keep.get(r["step"] + 1, set()) else "other"
            key = (int(r["step"]), source, target)
            links[key] = links.get(key, 0) + int(r["count"])
        nodes = sorted({(s, n) for s, n, _ in links} | {(s + 1, n) for s, _, n in links})
        return {
            "nodes": [{"step": s + 1, "touchpoint": n} for s, n in nodes],
            "links": [
                {"step": s + 1, "source": a, "target": b, "count": c}
                for (s, a, b), c in sorted(links.items(), key=lambda kv: (kv[0][0], -kv[1], kv[0][1], kv[0][2]))
            ],
        }

    def _kept(self, volume: dict[tuple[int, str], int]) -> dict[int, set[str]]:
        by_step: dict[int, list[tuple[int, str]]] = {}
        for (step, tp), n in volume.items():
            by_step.setdefault(step, []).append((-n, tp))
        return {step: {tp for _, tp in sorted(items)[: self.top]} for step, items in by_step.items()}
