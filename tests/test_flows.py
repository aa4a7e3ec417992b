"""Flows and variants: hand-worked journeys, invariants, and pm4py as the oracle on a public event log."""

from __future__ import annotations

import csv
import json
from collections import Counter
from pathlib import Path
from typing import Any

import pytest

import touchlens
from tests.conftest import ROOT, JourneysFor, workspace_with
from touchlens.model.map import slugify

SHARED = ROOT.parent / "shared" / "data"


def test_flows_count_each_step_to_the_next_and_variants_whole_sequences(cli, journeys_for: JourneysFor) -> None:
    paths = {
        "ann": ["home", "cart", "buy"],
        "bob": ["home", "cart", "home", "cart"],
        "cy": ["home", "cart", "buy"],
        "di": ["help"],
    }
    ws = journeys_for(paths).root
    flows = json.loads(cli("-w", ws, "analyze", "flows", "--json").out)
    edges = {(e["source"], e["target"]): e["count"] for e in flows["edges"]}
    assert edges == {("home", "cart"): 4, ("cart", "buy"): 2, ("cart", "home"): 1}
    assert flows["start"] == {"home": 3, "help": 1}
    assert flows["end"] == {"buy": 2, "cart": 1, "help": 1}
    # The median from the wait sketches is within 1% of a minute; --exact gives the minute itself.
    assert all(e["median_seconds"] == pytest.approx(60.0, rel=0.01) for e in flows["edges"])
    assert any(e["median_seconds"] != 60.0 for e in flows["edges"])
    exact = json.loads(cli("-w", ws, "analyze", "flows", "--exact", "--json").out)
    assert all(e["median_seconds"] == e["p90_seconds"] == 60.0 for e in exact["edges"])
    assert [{**e, "median_seconds": 60.0, "p90_seconds": 60.0} for e in flows["edges"]] == exact["edges"]
    assert sum(edges.values()) == sum(map(len, paths.values())) - len(paths)  # events minus journeys
    variants = json.loads(cli("-w", ws, "analyze", "variants", "--top", "2", "--json").out)
    assert variants["journeys"] == 4
    assert variants["variants"][0] == {"steps": ["home", "cart", "buy"], "count": 2, "share": 0.5, "cumulative": 0.5}
    assert variants["variants"][1]["cumulative"] == 0.75
    assert "home → cart → buy" in cli("-w", ws, "analyze", "variants").out


def test_ties_in_time_follow_the_event_id(cli, tmp_path: Path) -> None:
    ws = workspace_with(
        cli,
        tmp_path,
        "name: T\ntouchpoints: [{key: a, match: {event: a}}, {key: b, match: {event: b}}]\n",
        "event_id,customer_id,ts,event\n2,c,2026-01-01T10:00:00Z,a\n1,c,2026-01-01T10:00:00Z,b\n",
    )
    edges = json.loads(cli("-w", ws, "analyze", "flows", "--json").out)["edges"]
    assert [(e["source"], e["target"]) for e in edges] == [("b", "a")]


def _pm4py_log(name: str) -> Any:
    xes = SHARED / name
    assert xes.exists(), f"the shared data set is missing: {xes}"
    import pm4py  # a dev-only oracle (AGPL), installed by `make install`; touchlens never imports it

    return pm4py, pm4py.read_xes(str(xes))


LOGS = ["helpdesk_tickets/helpdesk.xes.gz", "bpic2013_incidents/bpic2013_incidents.xes.gz"]


@pytest.fixture(scope="module", params=LOGS, ids=["helpdesk", "bpic2013"])
def helpdesk(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> tuple[Any, Any, Any]:
    """A public event log as touchlens events (case = customer, activity = event = touchpoint)."""
    pm4py, log = _pm4py_log(request.param)
    tmp = tmp_path_factory.mktemp("log")
    activities = sorted(log["concept:name"].unique())
    touchpoints = [{"key": slugify(a), "name": a, "match": {"event": a}} for a in activities]
    (tmp / "m.json").write_text(json.dumps({"name": "Log", "touchpoints": touchpoints}))
    with (tmp / "e.csv").open("w", newline="") as f:
        writer = csv.writer(f)
        writer.writerow(["event_id", "customer_id", "ts", "event"])
        cases, times, names = log["case:concept:name"], log["time:timestamp"], log["concept:name"]
        for i, (case, ts, name) in enumerate(zip(cases, times, names, strict=True)):
            # Zero-padded ids keep the file's order for equal timestamps, as pm4py's stable sort does.
            writer.writerow([f"{i:08d}", case, ts.isoformat(), name])
    ws = touchlens.init(tmp / "ws")
    ws.import_map(tmp / "m.json")
    ws.ingest_events([tmp / "e.csv"])
    return pm4py, log, ws


@pytest.mark.oracle
def test_the_directly_follows_graph_equals_pm4py_edge_for_edge(helpdesk) -> None:
    pm4py, log, ws = helpdesk
    dfg, start, end = pm4py.discover_dfg(log)
    key = {a: slugify(a) for a in log["concept:name"].unique()}
    flows = ws.flows().to_dict()
    assert {(e["source"], e["target"]): e["count"] for e in flows["edges"]} == {
        (key[a], key[b]): n for (a, b), n in dfg.items()
    }
    assert flows["start"] == {key[a]: n for a, n in start.items()}
    assert flows["end"] == {key[a]: n for a, n in end.items()}


@pytest.mark.oracle
def test_variants_equal_pm4py(helpdesk) -> None:
    pm4py, log, ws = helpdesk
    ordered = log.sort_values(["case:concept:name", "time:timestamp"], kind="stable")
    theirs = Counter(
        tuple(slugify(a) for a in variant)
        for variant, n in pm4py.get_variants(ordered).items()
        for _ in range(n if isinstance(n, int) else len(n))
    )
    ours = ws.variants(top=None).to_dict()["variants"]
    assert {tuple(v["steps"]): v["count"] for v in ours} == dict(theirs)
    top10 = [v["count"] for v in ws.variants(top=10).to_dict()["variants"]]
    assert top10 == sorted(theirs.values(), reverse=True)[:10]


def test_paths_after_and_before_a_touchpoint(cli, journeys_for: JourneysFor) -> None:
    ws = journeys_for({"a": ["x", "y", "z"], "b": ["x", "y"], "c": ["w", "x"], "d": ["x", "y", "z"]}).root
    after = json.loads(cli("-w", ws, "analyze", "paths", "--from", "x", "--steps", "2", "--json").out)
    assert [(p["steps"], p["count"]) for p in after["paths"]] == [(["y", "z"], 2), ([], 1), (["y"], 1)]
    before = json.loads(cli("-w", ws, "analyze", "paths", "--to", "z", "--steps", "2", "--json").out)
    assert before["paths"] == [{"steps": ["x", "y"], "count": 2, "share": 1.0}]
    assert cli("-w", ws, "analyze", "paths", "--from", "x", "--to", "y").code == 2
    assert cli("-w", ws, "analyze", "paths", "--from", "nowhere").code == 1


def test_a_session_gap_splits_journeys(cli, tmp_path: Path) -> None:
    rows = "c,2026-01-01T10:00:00Z,a\nc,2026-01-01T10:05:00Z,b\nc,2026-01-01T12:00:00Z,a\nc,2026-01-01T12:01:00Z,b\n"
    ws = workspace_with(
        cli,
        tmp_path,
        "name: S\ntouchpoints: [{key: a, match: {event: a}}, {key: b, match: {event: b}}]\n",
        "customer_id,ts,event\n" + rows,
    )
    whole = json.loads(cli("-w", ws, "analyze", "flows", "--json").out)
    split = json.loads(cli("-w", ws, "analyze", "flows", "--session-gap", "30m", "--json").out)
    assert {(e["source"], e["target"]): e["count"] for e in whole["edges"]} == {("a", "b"): 2, ("b", "a"): 1}
    assert {(e["source"], e["target"]): e["count"] for e in split["edges"]} == {("a", "b"): 2}
    assert split["start"] == {"a": 2}
    variants = json.loads(cli("-w", ws, "analyze", "variants", "--session-gap", "30m", "--json").out)
    assert variants["journeys"] == 2
    assert variants["variants"][0]["steps"] == ["a", "b"]
    assert cli("-w", ws, "analyze", "flows", "--session-gap", "soon").code == 1


def test_sankey_links_add_up_and_small_touchpoints_become_other(cli, journeys_for: JourneysFor) -> None:
    paths = {"a": ["x", "y", "z"], "b": ["x", "y"], "c": ["w", "y", "z"], "d": ["x"], "e": ["v", "y", "z"]}
    ws = journeys_for(paths).root
    sankey = json.loads(cli("-w", ws, "analyze", "sankey", "--depth", "3", "--top", "1").out)
    out_of = Counter()
    for link in sankey["links"]:
        out_of[link["step"]] += link["count"]
    assert out_of == {1: sum(len(p) > 1 for p in paths.values()), 2: sum(len(p) > 2 for p in paths.values())}
    firsts = {(link["source"], link["target"]): link["count"] for link in sankey["links"] if link["step"] == 1}
    assert firsts == {("x", "y"): 2, ("other", "y"): 2}


def test_converters_and_non_converters_side_by_side(cli, tmp_path: Path) -> None:
    text = (
        "name: S\ntouchpoints: [{key: a, match: {event: a}}, {key: b, match: {event: b}}]\n"
        "outcomes: {conversion: {event: buy}}\n"
    )
    rows = (
        "c1,2026-01-01T10:00:00Z,a\nc1,2026-01-01T10:01:00Z,b\nc1,2026-01-01T10:02:00Z,buy\nc2,2026-01-01T10:00:00Z,b\n"
    )
    ws = workspace_with(cli, tmp_path, text, "customer_id,ts,event\n" + rows)
    both = json.loads(cli("-w", ws, "analyze", "flows", "--by-conversion").out)
    assert both["converters"]["start"] == {"a": 1}
    assert [(e["source"], e["target"]) for e in both["converters"]["edges"]] == [("a", "b")]
    assert both["non_converters"] == {"edges": [], "start": {"b": 1}, "end": {"b": 1}}


@pytest.mark.parametrize(
    ("args", "rows_of"),
    [
        (("flows",), lambda d: d["edges"]),
        (("variants",), lambda d: d["variants"]),
        (("paths", "--from", "home"), lambda d: d["paths"]),
        (("funnel", "--steps", "home,cart,buy"), lambda d: d["steps"]),
        (("scorecard",), lambda d: d["touchpoints"]),
    ],
)
def test_csv_holds_the_same_rows_as_json(cli, journeys_for: JourneysFor, args: tuple[str, ...], rows_of: Any) -> None:
    ws = journeys_for({"ann": ["home", "cart", "buy"], "bob": ["home", "cart", "home"], "cy": ["help"]}).root
    data = rows_of(json.loads(cli("-w", ws, "analyze", *args, "--json").out))
    table = list(csv.DictReader(cli("-w", ws, "analyze", *args, "--csv").out.splitlines()))
    assert data
    assert len(table) == len(data)
    for row, record in zip(table, data, strict=True):
        assert list(row) == list(record)
        for key, value in record.items():
            shown = " > ".join(value) if isinstance(value, list) else "" if value is None else str(value)
            assert row[key] == shown
