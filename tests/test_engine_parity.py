"""One suite, every engine: each analysis that runs in the engine gives the same result on DuckDB over the
events store (the reference), DuckDB over a Parquet lake, and PySpark (local mode) over the same lake.

The data is the demo workspace (planted findings, 300 customers, two years of events and feedback); the lake is
what `touchlens export parquet --lake` writes of it. Engines are chosen through touchlens.toml's `[engine]`
settings, as a user would. Each test also checks a property its result must have, so the reference itself is
tested, not only copied. Floats compare to 1e-9: engines sum in different orders. Funnels are also checked against
a pure-Python reading of their definition (tests/funnel_reference.py) over the lake's files.
"""

from __future__ import annotations

import dataclasses
import math
import shutil
from collections.abc import Callable, Iterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow.dataset as ds
import pytest

import touchlens
from tests.funnel_reference import Event, ReferenceFunnel
from touchlens import queries
from touchlens.analytics.journeys import JourneyOptions
from touchlens.demo_workspace import build_demo
from touchlens.locate import SETTINGS_FILE
from touchlens.queries.journeys import channels_seen

pytestmark = pytest.mark.engine

ENGINES = ("duckdb", "duckdb-lake", "pyspark")
SETTINGS = {
    "duckdb": "",
    "duckdb-lake": '\n[engine]\nlake = "../lake"\n',
    # Two cores and a small data set: few shuffle partitions, no web UI.
    "pyspark": '\n[engine]\nbackend = "pyspark"\nlake = "../lake"\nspark_master = "local[2]"\n'
    'spark_conf = { "spark.sql.shuffle.partitions" = "4", "spark.ui.enabled" = "false", '
    '"spark.driver.memory" = "1g" }\n',
}


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("parity")
    build_demo(root / "store", customers=300)
    ws = touchlens.open(root / "store")
    ws.add_change("refund_issued_email", date(2025, 6, 1), "new refund email")
    from touchlens.report.export import write_lake

    write_lake(ws, root / "lake")
    return root


@pytest.fixture(scope="module")
def workspaces(demo: Path) -> Iterator[dict[str, touchlens.Workspace]]:
    """The demo workspace three times over, differing only in their `[engine]` settings."""
    out = {}
    for engine in ENGINES:
        folder = demo / "store" if engine == "duckdb" else demo / engine
        if engine != "duckdb":
            shutil.copytree(demo / "store", folder)
            (folder / SETTINGS_FILE).write_text(SETTINGS[engine], encoding="utf-8")
        out[engine] = touchlens.open(folder)
    yield out
    if out["pyspark"]._engine is not None:  # the session this suite started
        from pyspark.sql import SparkSession

        session = SparkSession.getActiveSession()
        if session is not None:
            session.stop()


_reference: dict[str, Any] = {}


@pytest.fixture(params=ENGINES)
def on(request: pytest.FixtureRequest, workspaces: dict[str, touchlens.Workspace]) -> Callable[..., Any]:
    """`on(name, fn)`: fn(workspace) on this test's engine, checked equal to fn on the reference engine."""
    engine = request.param

    def run(name: str, fn: Callable[[touchlens.Workspace], Any]) -> Any:
        if name not in _reference:
            _reference[name] = plain(fn(workspaces["duckdb"]))
        result = plain(fn(workspaces[engine]))
        differences = compare(_reference[name], result)
        assert not differences, f"{engine} differs from duckdb on {name}: {differences[:5]}"
        return result

    return run


def plain(value: Any) -> Any:
    """A result as plain data: dataclasses as dicts, tuples as lists, keys as text, datetimes in UTC."""
    if dataclasses.is_dataclass(value) and not isinstance(value, type):
        return {f.name: plain(getattr(value, f.name)) for f in dataclasses.fields(value)}
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [plain(v) for v in value]
    if isinstance(value, datetime):
        return value.astimezone(UTC).isoformat()
    if hasattr(value, "item") and callable(value.item):  # numpy scalars
        return plain(value.item())
    return value


def compare(expected: Any, actual: Any, path: str = "") -> list[str]:
    if isinstance(expected, dict) and isinstance(actual, dict):
        if expected.keys() != actual.keys():
            return [f"{path}: keys {sorted(expected.keys() ^ actual.keys())[:5]}"]
        return [d for k in expected for d in compare(expected[k], actual[k], f"{path}.{k}")]
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{path}: {len(expected)} items, not {len(actual)}"]
        return [d for i, (e, a) in enumerate(zip(expected, actual, strict=True)) for d in compare(e, a, f"{path}[{i}]")]
    if isinstance(expected, float) and isinstance(actual, int | float):
        if math.isnan(expected) and math.isnan(actual):
            return []
        return [] if math.isclose(expected, actual, rel_tol=1e-9, abs_tol=1e-9) else [f"{path}: {expected} ≠ {actual}"]
    if isinstance(expected, int) and isinstance(actual, float):
        return compare(float(expected), actual, path)
    return [] if expected == actual else [f"{path}: {expected!r} ≠ {actual!r}"]


# -- journeys and flows --------------------------------------------------------------------------------------


def test_flows_balance_at_every_touchpoint(on: Callable[..., Any]) -> None:
    flows = on("flows", lambda ws: ws.flows(exact=True).to_dict())  # the lake keeps no wait sketches
    into: dict[str, int] = {}
    out_of: dict[str, int] = {}
    for e in flows["edges"]:
        out_of[e["source"]] = out_of.get(e["source"], 0) + e["count"]
        into[e["target"]] = into.get(e["target"], 0) + e["count"]
    starts, ends = flows["start"], flows["end"]
    assert sum(starts.values()) == sum(ends.values())  # each journey starts once and ends once
    for tp in set(into) | set(out_of) | set(starts):
        assert into.get(tp, 0) + starts.get(tp, 0) == out_of.get(tp, 0) + ends.get(tp, 0), tp


def test_journey_options_filter_the_same_events(on: Callable[..., Any]) -> None:
    start, end = datetime(2025, 1, 1, tzinfo=UTC), datetime(2025, 7, 1, tzinfo=UTC)
    options = {
        "window": JourneyOptions(start=start, end=end),
        "persona": JourneyOptions(persona="enthusiast"),
        "channel": JourneyOptions(channel="email"),
        "sessions": JourneyOptions(session_gap=timedelta(minutes=30)),
    }
    everything = sum(on("flows", lambda ws: ws.flows(exact=True).to_dict())["start"].values())
    for name, opts in options.items():
        flows = on(f"flows:{name}", lambda ws, o=opts: ws.flows(o).to_dict())
        journeys = sum(flows["start"].values())
        assert journeys > 0, name
        if name != "sessions":
            assert journeys <= everything, name


def test_flows_of_converters_and_the_rest_add_up(on: Callable[..., Any]) -> None:
    split = on("flows_by_conversion", lambda ws: {k: v.to_dict() for k, v in ws.flows_by_conversion().items()})
    whole = on("flows", lambda ws: ws.flows(exact=True).to_dict())
    parts = sum(sum(split[k]["start"].values()) for k in ("converters", "non_converters"))
    assert parts == sum(whole["start"].values())


def test_variants_cover_at_most_every_journey(on: Callable[..., Any]) -> None:
    variants = on("variants", lambda ws: ws.variants(top=None).to_dict())
    counts = [v["count"] for v in variants["variants"]]
    assert counts == sorted(counts, reverse=True)
    assert sum(counts) == variants["journeys"]


def test_sankey_and_paths_around_an_anchor(on: Callable[..., Any]) -> None:
    sankey = on("sankey", lambda ws: ws.sankey(depth=4, top=6))
    assert sankey["links"]
    assert all(link["count"] > 0 for link in sankey["links"])
    after = on("paths_after", lambda ws: ws.paths_around("product_page", steps=3).to_dict())
    before = on("paths_before", lambda ws: ws.paths_around("product_page", steps=2, before=True).to_dict())
    assert after["paths"]
    assert before["paths"]


# -- scorecard and funnels -----------------------------------------------------------------------------------


def test_scorecard_and_its_breakdowns(on: Callable[..., Any], request: pytest.FixtureRequest) -> None:
    card = on("scorecard", lambda ws: ws.scorecard(exact=True).to_dict())  # the lake keeps no wait sketches
    assert all(0 <= s["customers"] <= card["customers"] for s in card["touchpoints"])
    on("scorecard:stage", lambda ws: ws.scorecard(by="stage").to_dict())
    if request.node.callspec.params["on"] != "duckdb":
        # A breakdown is a scorecard per group: 3 s each on DuckDB over this small lake's 800 files, 10 s on
        # Spark. On the lake, one group of each kind and the channels seen, the parts a breakdown is made of.
        for option in ({"persona": "enthusiast"}, {"channel": "email"}):
            on(f"scorecard:{option}", lambda ws, o=option: ws.run(queries.ScorecardQuery(**o)).to_dict())
        on("channels seen", lambda ws: channels_seen(ws.engine()))
        return
    for breakdown in ("persona", "channel"):
        groups = on(f"scorecard:{breakdown}", lambda ws, b=breakdown: ws.scorecard_breakdown(b))["groups"]
        assert groups
        assert len(groups) > 1


PURCHASE = ("homepage", "product_page", "checkout", "order_confirmation_email")
BROWSING = ("homepage", "site_search", "product_page", "product_reviews")  # often one straight after another


@pytest.fixture(scope="module")
def lake_journeys(demo: Path) -> dict[str, list[Event]]:
    """The demo's journeys as plain Python, read from the lake's files."""
    events = ds.dataset(demo / "lake" / "events", partitioning="hive").to_table()
    return ReferenceFunnel.journeys(events.select(["customer_id", "event_id", "ts", "touchpoint"]).to_pylist())


@pytest.mark.parametrize(
    ("steps", "order", "exclude"),
    [(PURCHASE, "any", ()), (BROWSING, "strict", ()), (PURCHASE, "any", ("size_guide",))],
    ids=["any", "strict", "exclude"],
)
def test_funnels_equal_the_pure_python_reference(
    on: Callable[..., Any],
    lake_journeys: dict[str, list[Event]],
    steps: tuple[str, ...],
    order: str,
    exclude: tuple[str, ...],
) -> None:
    name = f"funnel:{order}:{','.join(exclude)}"
    funnel = on(name, lambda ws: ws.run_funnel(ws.funnel(steps, "14d", order, exclude)).to_dict())
    counts = [s["count"] for s in funnel["steps"]]
    assert counts[-1] > 0
    assert counts == sorted(counts, reverse=True)
    assert counts == ReferenceFunnel(steps, timedelta(days=14), order == "strict", exclude).counts(lake_journeys)


def test_funnel_breakdowns_and_drop_outs(on: Callable[..., Any]) -> None:
    steps = ["product_page", "checkout"]
    for by in ("persona", "channel"):
        result = on(f"funnel:{by}", lambda ws, b=by: ws.run_funnel(ws.funnel(steps), b).to_dict())
        assert sum(g["counts"][0] for g in result["breakdown"]["groups"]) >= result["steps"][0]["count"]
    dropped = on("funnel:dropped", lambda ws: ws.funnel_dropped(ws.funnel(steps), 1))
    assert dropped
    assert dropped == sorted(dropped)


# -- attribution ----------------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["touchpoint", "channel", "stage"])
def test_attribution_paths_count_every_conversion(on: Callable[..., Any], by: str) -> None:
    paths = on(f"paths:{by}", lambda ws: ws.attribution_paths(by))
    converted = sum(p["conversions"] for p in paths)
    assert converted > 0
    markov = on(f"markov:{by}", lambda ws: ws.attribution("markov", by).to_dict())
    credited = sum(c["conversions"] for c in markov["results"])
    assert math.isclose(credited, sum(p["conversions"] for p in paths if p["steps"]), rel_tol=1e-9)


def test_attribution_lookback_and_time_decay(on: Callable[..., Any]) -> None:
    short = on("paths:lookback", lambda ws: ws.attribution_paths(lookback="3d"))
    full = on("paths:touchpoint", lambda ws: ws.attribution_paths())
    assert sum(len(p["steps"]) for p in short) < sum(len(p["steps"]) for p in full)
    decay = on("time-decay", lambda ws: ws.attribution("time-decay").to_dict())
    assert math.isclose(sum(c["conversions"] for c in decay["results"]), decay["total_conversions"], rel_tol=1e-9)


# -- feedback and drivers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("by", ["touchpoint", "stage", "persona", "channel", "period"])
def test_feedback_metrics(on: Callable[..., Any], by: str) -> None:
    report = on(f"feedback:{by}", lambda ws: ws.feedback(by=by).to_dict())
    groups, overall = report["groups"], report["overall"]["responses"]
    assert groups
    assert all(0 < g["responses"] <= overall for g in groups)


def test_comments_search_and_latest(on: Callable[..., Any]) -> None:
    found = on("comments", lambda ws: ws.comments(text="REFUND", max_score=3))
    assert found
    assert all("refund" in c["comment"].lower() and c["score"] <= 3 for c in found)
    latest = on("latest_comments", lambda ws: ws.latest_comments(2))
    assert all(len(v) <= 2 for v in latest.values())


def test_drivers_of_churn_and_nps(on: Callable[..., Any]) -> None:
    drivers = on("drivers", lambda ws: ws.drivers("churn", samples=0).to_dict())
    assert drivers["drivers"]
    nps = on("nps_drivers", lambda ws: ws.nps_drivers())
    assert nps["customers"] >= len(nps["weights"])


# -- insights: gaps, friction, conformance, trends ------------------------------------------------------------


@pytest.mark.parametrize("section", ["gaps", "friction"])
def test_insights(on: Callable[..., Any], section: str) -> None:
    found = on(f"insights:{section}", lambda ws: ws.insights((section,)).sections[section])
    assert found


def test_health_and_problems_agree_on_every_engine(on: Callable[..., Any]) -> None:
    # 300 customers leave too few answers for a touchpoint to be surely and materially poor: the engines must
    # agree on that, and on each touchpoint's health and why.
    health = on("health", lambda ws: ws.health_report())
    assert any(r["health"] is not None for r in health)
    problems = on("insights:problems", lambda ws: ws.insights(("problems", "strengths")).to_dict())
    assert set(problems) == {"problems", "strengths"}


def test_personalisation_compares_segments_alike(on: Callable[..., Any]) -> None:
    # 300 customers are too few for a segment gap to pass its test: the engines must agree on that too.
    found = on("insights:personalisation", lambda ws: ws.insights(("personalisation",)).sections["personalisation"])
    assert isinstance(found, list)


def test_conformance_shares_add_up(on: Callable[..., Any]) -> None:
    result = on("conformance", lambda ws: ws.conformance().to_dict())
    assert result["customers"] > 0
    assert 0 <= result["following"] <= result["customers"]


def test_trends_and_impact(on: Callable[..., Any]) -> None:
    trends = on("trends", lambda ws: ws.trends("month"))
    assert trends["series"]
    impact = on("impact", lambda ws: ws.impact(ws.changes()[0]["id"]))
    assert impact["change"]["touchpoint"] == "refund_issued_email"


# -- exports -------------------------------------------------------------------------------------------------------


def test_the_journeys_export_streams_the_same_rows_from_every_engine(on: Callable[..., Any]) -> None:
    from touchlens.report.export import COLUMNS, journey_batches

    def rows(ws: touchlens.Workspace) -> list[list[Any]]:
        with journey_batches(ws, batch_rows=5_000) as reader:
            assert tuple(reader.schema.names) == COLUMNS
            return [list(r.values()) for batch in reader for r in batch.to_pylist()]

    exported = on("export", rows)
    assert exported, "the demo has mapped events"
    order = [(r[0], r[1], r[6]) for r in exported]
    assert order == sorted(order)  # journey order: customer, time, event id


def test_neighbours_of_a_touchpoint(on: Callable[..., Any]) -> None:
    from touchlens.queries import NeighboursQuery

    # Exact: the lake keeps no wait sketches.
    query = NeighboursQuery(touchpoint="order_tracking_page", exact=True)
    around = on("neighbours", lambda ws: ws.run(query).to_dict())
    sides = around["comes_from"] + around["goes_to"]
    assert sides
    assert all(r["moves"] >= r["customers"] >= 1 for r in sides)
