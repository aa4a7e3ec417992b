"""The registry of analyses: queries check themselves and parse from text, one query is one cache key, every
entry gets a command, and the worked example (weekdays) counts what a hand count says."""

from __future__ import annotations

import json
from collections import Counter
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
import typer
from typer.testing import CliRunner

import touchlens
from tests.conftest import workspace_with
from touchlens.cli_generated import add_analyses
from touchlens.errors import BadOption, UnknownItem
from touchlens.queries.base import Query, option
from touchlens.queries.journeys import FlowsQuery, PathsQuery, ScorecardQuery
from touchlens.queries.weekly import DAYS, WeekdaysQuery
from touchlens.registry import ANALYSES, Analysis, query_from

MAP = """name: Week
touchpoints:
  - {key: call, name: Phone call, match: {event: call}}
  - {key: visit, name: Store visit, match: {event: visit}}
"""
# 2026-03-02 is a Monday.
EVENTS = [
    ("ann", "2026-03-02T09:00:00Z", "call"),
    ("ann", "2026-03-02T10:00:00Z", "call"),
    ("bob", "2026-03-09T23:59:00Z", "call"),
    ("bob", "2026-03-04T12:00:00Z", "visit"),
    ("cy", "2026-03-08T08:00:00Z", "visit"),
    ("cy", "2026-03-15T08:00:00Z", "visit"),
]


@pytest.fixture
def week(cli, tmp_path: Path) -> touchlens.Workspace:
    rows = "\n".join(",".join(e) for e in EVENTS)
    return touchlens.open(workspace_with(cli, tmp_path, MAP, "customer_id,ts,event\n" + rows + "\n"))


def _hand_count(count: str) -> dict[str, Counter[str]]:
    seen: dict[str, dict[str, set[str]]] = {}
    events: dict[str, Counter[str]] = {}
    for customer, ts, tp in EVENTS:
        day = DAYS[datetime.fromisoformat(ts).weekday()]
        events.setdefault(tp, Counter())[day] += 1
        seen.setdefault(tp, {}).setdefault(day, set()).add(customer)
    if count == "events":
        return events
    return {tp: Counter({d: len(c) for d, c in days.items()}) for tp, days in seen.items()}


@pytest.mark.parametrize("count", ["events", "customers"])
def test_weekdays_count_what_a_hand_count_says(week: touchlens.Workspace, count: str) -> None:
    result = week.run(WeekdaysQuery(count=count)).to_dict()
    expected = _hand_count(count)
    assert [r["touchpoint"] for r in result["touchpoints"]] == sorted(expected)
    for row in result["touchpoints"]:
        assert {d: row[d] for d in DAYS} == {d: expected[row["touchpoint"]][d] for d in DAYS}
        assert row["total"] == sum(expected[row["touchpoint"]].values())
    call = next(r for r in result["touchpoints"] if r["touchpoint"] == "call")
    assert call["busiest"] == "Mon"
    assert call["name"] == "Phone call"


def test_weekdays_through_the_command_line_equal_the_library(cli, week: touchlens.Workspace) -> None:
    out = cli("-w", week.root, "analyze", "weekdays", "--touchpoints", "visit", "--json")
    assert out.code == 0, out.err
    assert json.loads(out.out) == week.run(WeekdaysQuery(touchpoints=("visit",))).to_dict()
    assert "Events and customers" in cli("-w", week.root, "analyze", "weekdays").out
    csv_rows = cli("-w", week.root, "analyze", "weekdays", "--csv").out.splitlines()
    assert csv_rows[0].startswith("touchpoint,name,Mon")
    assert len(csv_rows) == 3
    assert "Store visit" in csv_rows[2]


def test_an_unknown_touchpoint_is_named_with_its_field(cli, week: touchlens.Workspace) -> None:
    with pytest.raises(UnknownItem) as caught:
        week.run(WeekdaysQuery(touchpoints=("nope",)))
    assert caught.value.field == "touchpoints"
    assert "call, visit" in caught.value.message
    out = cli("-w", week.root, "analyze", "weekdays", "--touchpoints", "nope")
    assert out.code == 1
    assert "--touchpoints: unknown touchpoint 'nope'" in out.err


def test_queries_check_their_options_when_made() -> None:
    with pytest.raises(UnknownItem) as choice:
        ScorecardQuery(by="week")
    assert choice.value.field == "by"
    with pytest.raises(BadOption) as duration:
        FlowsQuery(session_gap="soon")
    assert duration.value.field == "session_gap"
    assert "--" not in str(duration.value)
    with pytest.raises(BadOption) as bound:
        PathsQuery(from_="a", steps=0)
    assert bound.value.field == "steps"


def test_queries_parse_from_text_and_name_the_field_at_fault() -> None:
    q = query_from("weekdays", {"touchpoints": "call, visit,", "count": "customers"})
    assert q == WeekdaysQuery(touchpoints=("call", "visit"), count="customers")
    assert query_from("flows", {"by_conversion": "yes"}) == FlowsQuery(by_conversion=True)
    for params, field in [
        ({"top": "many"}, "top"),
        ({"colour": "red"}, "colour"),
        ({"by_conversion": "?"}, "by_conversion"),
    ]:
        with pytest.raises(BadOption) as caught:
            query_from("variants" if field == "top" else "flows", params)
        assert caught.value.field == field
    with pytest.raises(UnknownItem):
        query_from("horoscope", {})


def test_one_query_is_one_cache_key_whatever_map_it_ran_against(week: touchlens.Workspace) -> None:
    a, b = WeekdaysQuery(count="customers"), WeekdaysQuery(count="customers")
    resolved = a.resolve(week.map())
    assert a == b == resolved
    assert hash(a) == hash(b) == hash(resolved)
    assert {a: 1}[resolved] == 1
    assert WeekdaysQuery() != a


def test_every_entry_describes_its_options() -> None:
    for name, spec in ANALYSES.items():
        assert spec.name == name
        assert spec.summary
        described = spec.to_dict()
        assert all(f["help"] for f in described["fields"]), name
        assert json.dumps(described)  # the REST listing serialises it


def test_a_new_registry_entry_gets_a_command(monkeypatch: pytest.MonkeyPatch, week: touchlens.Workspace) -> None:
    """Adding an analysis is a query, a run function and a registry line: the command appears by itself."""

    from dataclasses import dataclass

    @dataclass(frozen=True)
    class EchoQuery(Query):
        name = "echo"
        summary = "Says how many touchpoints the map has, times n."
        n: int = option(1, "A multiplier.", minimum=1)

    def run_echo(engine: Any, q: EchoQuery) -> dict[str, Any]:
        return {"rows": [{"touchpoints": len(q.the_map.touchpoints) * q.n}]}

    monkeypatch.setitem(ANALYSES, "echo", Analysis(EchoQuery, run_echo, lambda r: r["rows"]))
    app = typer.Typer()
    add_analyses(app)
    runner = CliRunner()
    out = runner.invoke(app, ["echo", "--n", "3", "--json"], obj=str(week.root))
    assert out.exit_code == 0, out.output
    assert json.loads(out.output) == {"rows": [{"touchpoints": 6}]}
    assert "A multiplier." in runner.invoke(app, ["echo", "--help"]).output


def test_the_funnel_is_one_query_and_one_call(week: touchlens.Workspace) -> None:
    """`ws.run(FunnelQuery(...))` counts what a hand count says and refuses unknown steps and exclusions by
    their field."""
    from touchlens.queries import FunnelQuery

    funnel = week.run(FunnelQuery(steps=("visit", "call"), window="7d")).to_dict()
    # bob: visit Wed 4th, call Mon 9th (5 days later); cy: visits only; ann: calls only.
    assert [s["count"] for s in funnel["steps"]] == [2, 1]
    wider = week.run(FunnelQuery(steps=("call",), breakdown="channel")).to_dict()
    assert wider["steps"][0]["count"] == 2
    assert sum(g["counts"][0] for g in wider["breakdown"]["groups"]) == 2
    with pytest.raises(UnknownItem) as unknown:
        week.run(FunnelQuery(steps=("call",), exclude=("nope",)))
    assert unknown.value.field == "exclude"
    with pytest.raises(BadOption) as empty:
        FunnelQuery(steps=())
    assert empty.value.field == "steps"
    assert week.funnel_dropped_at(FunnelQuery(steps=("visit", "call")), 1) == ["cy"]


def test_neighbours_count_customers_and_moves_apart(journeys_for) -> None:
    """ann goes help → home twice (two moves, one customer); bob once; cy never reaches home from help."""
    from touchlens.queries import NeighboursQuery

    ws = journeys_for({"ann": ["help", "home", "help", "home", "buy"], "bob": ["help", "home"], "cy": ["help", "buy"]})
    around = ws.run(NeighboursQuery(touchpoint="home")).to_dict()
    assert [(r["touchpoint"], r["customers"], r["moves"]) for r in around["comes_from"]] == [("help", 2, 3)]
    assert [(r["touchpoint"], r["customers"], r["moves"]) for r in around["goes_to"]] == [("buy", 1, 1), ("help", 1, 1)]
    # A minute between steps: from the wait sketches within 1%, to the digit when exact.
    assert around["comes_from"][0]["median_seconds"] == pytest.approx(60.0, rel=0.01)
    exact = ws.run(NeighboursQuery(touchpoint="home", exact=True)).to_dict()
    assert exact["comes_from"][0]["median_seconds"] == 60.0
    loop = ws.run(NeighboursQuery(touchpoint="help")).to_dict()
    assert ("home", 1, 1) in [(r["touchpoint"], r["customers"], r["moves"]) for r in loop["comes_from"]]
