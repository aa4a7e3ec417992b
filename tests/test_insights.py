"""Insights on hand-made journeys, counted by hand: gaps, silent periods, loops, conformance, persona gaps,
trends with an anomaly, a change's impact; feedback scores, scrubbing and sentiment at ingest."""

from __future__ import annotations

import json
import threading
import time
from datetime import date, datetime, timedelta

import pytest

import touchlens
from tests.conftest import workspace_with, write
from touchlens.model.map import ProactiveRule

MAP = """
name: Shop
channels:
  - {key: web, kind: digital}
  - {key: phone, kind: human}
  - {key: fax, kind: offline}
personas:
  - {key: pro, segment: [{property: plan, equals: pro}]}
  - {key: hobby, segment: [{property: plan, equals: hobby}]}
  - {key: ghost, segment: [{property: plan, equals: ghost}]}
journeys:
  - key: main
    persona: pro
    stages: [{key: find}, {key: buy}, {key: get}, {key: keep}]
touchpoints:
  - {key: ad, stage: find, channel: web, match: {event: ad}}
  - {key: order, stage: buy, channel: web, match: {event: order}}
  - {key: track, stage: get, channel: web, match: {event: track}}
  - {key: call, stage: get, channel: phone, match: {event: call}}
  - {key: parcel, stage: get, channel: web, initiative: proactive, match: {event: parcel}}
  - {key: never, stage: find, channel: web, match: {event: never_happens}}
outcomes:
  conversion: {event: order}
"""
T0 = datetime(2026, 1, 5, 9, 0)


def _events(rows: list[tuple[str, datetime, str]]) -> str:
    lines = ["customer_id,ts,event"] + [f"{c},{t.isoformat()}Z,{e}" for c, t, e in rows]
    return "\n".join(lines) + "\n"


def _journeys(n: int = 30) -> list[tuple[str, datetime, str]]:
    """n customers: ad, order, five days of silence, parcel; the first 25 then loop track → call → track."""
    rows = []
    for i in range(n):
        c, t = f"c{i:02d}", T0 + timedelta(hours=i)
        rows += [(c, t, "ad"), (c, t + timedelta(hours=1), "order"), (c, t + timedelta(days=5, hours=1), "parcel")]
        if i < 25:
            rows += [(c, t + timedelta(days=6, minutes=m), e) for m, e in ((0, "track"), (10, "call"), (20, "track"))]
    rows += [(f"c{i:02d}", T0 + timedelta(days=1), "app_crashed") for i in range(25)]
    return rows


@pytest.fixture
def shop(cli, tmp_path):
    return workspace_with(cli, tmp_path, MAP, _events(_journeys()))


def test_gaps_from_the_map_and_the_data(cli, shop) -> None:
    gaps = json.loads(cli("-w", shop, "analyze", "gaps", "--json").out)["gaps"]
    by = {(g["kind"], g["subject"]): g for g in gaps}
    assert by[("gap", "keep")]["evidence"]["journey"] == "main"  # a stage with no touchpoint
    assert ("gap", "fax") in by  # a channel no touchpoint uses
    assert ("gap", "hobby") in by  # a persona without a journey
    assert by[("unmapped_event", "app_crashed")]["evidence"] == {"event": "app_crashed", "events": 25, "customers": 25}
    assert ("never_seen", "never") in by
    silent = by[("silent_period", "buy→get")]["evidence"]
    # Every customer goes from order straight to parcel five days later (the loop comes after, within get).
    assert silent["median_seconds"] == 5 * 86400
    assert silent["transitions"] == 30
    assert silent["touchpoints_before"] == ["order"]
    assert silent["touchpoints_after"] == ["parcel"]
    assert silent["proactive_in_stages"] == ["parcel"]
    # A rule that breaks it, ready for the map: an update halfway through the five days, unless the parcel came.
    assert silent["proactive_rule"] == {
        "key": "update_buy_get", "name": "Update between buy and get", "after": {"touchpoint": "order"},
        "wait": "3d", "unless": {"touchpoint": "parcel"}, "holdout": 0.1,
    }  # fmt: skip
    assert "Try a proactive update 3d after" in by[("silent_period", "buy→get")]["summary"]
    assert ProactiveRule.model_validate(silent["proactive_rule"]).wait == "3d"  # it goes into a map as it is
    assert ("silent_period", "find→buy") not in by  # an hour is no silence


def test_help_repeated_in_one_visit_is_friction_counted_by_hand(cli, tmp_path) -> None:
    """Calls (help: a human channel) 3+ times within one visit (no gap over 30 minutes): 6 customers, one of them
    in two visits. Not counted: 3 calls hours apart (three visits), 2 calls in a visit, and 3 tracking visits
    (not help). 20 customers call at all, so 6 are 30% of those who use it."""
    rows = []
    for i in range(20):
        c, t = f"c{i:02d}", T0 + timedelta(days=i)
        if i < 6:  # 3, 4, ... calls ten minutes apart in one visit
            rows += [(c, t + timedelta(minutes=10 * k), "call") for k in range(3 + i % 2)]
        if i == 0:  # and a second visit with three more, a day later
            rows += [(c, t + timedelta(days=1, minutes=10 * k), "call") for k in range(3)]
        if 6 <= i < 11:  # three calls, hours apart: three visits
            rows += [(c, t + timedelta(hours=2 * k), "call") for k in range(3)]
        if i >= 11:  # two calls in a visit, and three tracking looks in one
            rows += [(c, t + timedelta(minutes=5 * k), "call") for k in range(2)]
            rows += [(c, t + timedelta(hours=3, minutes=k), "track") for k in range(3)]
    ws = workspace_with(cli, tmp_path, MAP, _events(rows))
    friction = json.loads(cli("-w", ws, "analyze", "friction", "--json").out)["friction"]
    repeats = [f for f in friction if f["kind"] == "repeat"]
    assert [f["touchpoints"] for f in repeats] == [["call"]]
    assert repeats[0]["evidence"]["sessions"] == 7
    assert repeats[0]["evidence"]["customers"] == 6
    assert repeats[0]["evidence"]["share_of_customers"] == pytest.approx(6 / 20)


def test_loops_and_switches_are_friction(cli, shop) -> None:
    friction = json.loads(cli("-w", shop, "analyze", "friction", "--json").out)["friction"]
    loops = [f for f in friction if f["kind"] == "loop"]
    assert [f["evidence"]["cycle"] for f in loops] == [["track", "call", "track"]]
    assert loops[0]["evidence"]["loops"] == 25
    assert loops[0]["evidence"]["share_of_customers"] == 1.0
    assert loops[0]["touchpoints"] == ["track", "call"]  # the call is help: a human channel
    # The switch from tracking to a call is the same problem as the loop: one finding, its evidence inside.
    assert [f for f in friction if f["kind"] == "switch"] == []
    assert loops[0]["evidence"]["switches"]["from"] == "track"
    assert loops[0]["evidence"]["switches"]["switches"] == 25
    assert loops[0]["section"] == "friction"
    assert "Track" in loops[0]["summary"] or "track" in loops[0]["summary"]


def test_conformance_counts_followers_backward_moves_and_skips(tmp_path) -> None:
    ws = touchlens.init(tmp_path / "ws")
    ws.import_map(write(tmp_path / "m.yaml", MAP))
    rows = []
    plans = {"a": ["ad", "order", "track"], "b": ["ad", "track"], "c": ["ad", "order", "ad"], "d": ["order", "parcel"]}
    for c, events in plans.items():
        rows += [(c, T0 + timedelta(minutes=i), e) for i, e in enumerate(events)]
    ws.ingest_events([write(tmp_path / "e.csv", _events(rows))])
    result = ws.conformance().to_dict()
    assert result["stages"] == ["find", "buy", "get", "keep"]
    assert result["customers"] == 4
    assert result["following"] == 2  # a (find, buy, get) and d (buy, get)
    assert result["with_backward_moves"] == 1  # c goes back to find
    assert result["skipped"] == [{"stage": "buy", "customers": 1, "share": 0.25}]  # b skips buy
    assert result["median_seconds_in_stage"]["find"] == 0.0


def test_conformance_merges_a_stage_kept_across_a_touch_of_no_stage(tmp_path) -> None:
    ws = touchlens.init(tmp_path / "ws")
    unstaged = MAP.replace("outcomes:", "  - {key: help, channel: web, match: {event: help}}\noutcomes:")
    ws.import_map(write(tmp_path / "m.yaml", unstaged))
    rows = []
    plans = {
        "a": ["ad", "help", "ad", "order", "help", "order", "track"],  # find, buy, get
        "c": ["order", "help", "ad"],  # buy, find
        "d": ["order", "help", "order", "ad"],  # buy, find too: the help between two orders is no stage
    }
    for c, events in plans.items():
        rows += [(c, T0 + timedelta(minutes=i), e) for i, e in enumerate(events)]
    ws.ingest_events([write(tmp_path / "e.csv", _events(rows))])
    result = ws.conformance().to_dict()
    assert (result["customers"], result["following"], result["with_backward_moves"]) == (3, 1, 2)
    assert result["deviations"] == [{"stages": ["buy", "find"], "count": 2, "backward": True, "skipped": []}]


def test_a_persona_rated_worse_is_a_persona_gap(tmp_path) -> None:
    ws = touchlens.init(tmp_path / "ws")
    ws.import_map(write(tmp_path / "m.yaml", MAP))
    people = [(f"p{i}", "pro") for i in range(30)] + [(f"h{i}", "hobby") for i in range(30)]
    ws.ingest_events([write(tmp_path / "e.csv", _events([(c, T0, "track") for c, _ in people]))])
    ws.ingest_customers(write(tmp_path / "c.csv", "customer_id,plan\n" + "".join(f"{c},{p}\n" for c, p in people)))
    # Hobbyists score 1–3, professionals 4–5: CSAT 0 against 1.
    when = (T0 + timedelta(hours=1)).isoformat()
    scores = "".join(f"{c},{when}Z,csat,{i % 3 + 1 if p == 'hobby' else 4 + i % 2},track\n"
                     for i, (c, p) in enumerate(people))  # fmt: skip
    ws.ingest_feedback([write(tmp_path / "f.csv", "customer_id,ts,metric,score,touchpoint\n" + scores)])
    found = ws.insights(("personalisation",)).sections["personalisation"]
    assert [(i.subject, i.evidence["persona"]) for i in found] == [("track", "hobby")]


@pytest.mark.slow
def test_feedback_scores_equal_a_hand_count_and_comments_are_scrubbed(cli, shop, tmp_path) -> None:
    nps = [10, 10, 9, 8, 7, 6, 0, 3, 9, 10]  # promoters 5, detractors 3 of 10: NPS 20
    rows = [f"c{i:02d},2026-01-06T10:00:00Z,nps,{s},order," for i, s in enumerate(nps)]
    rows += [
        "c20,2026-01-06T10:00:00Z,csat,5,track,Lovely and quick",
        "c21,2026-01-06T10:00:00Z,csat,1,track,Awful. Mail me at jo@example.com or call +44 20 7946 0958",
    ]
    text = "customer_id,ts,metric,score,touchpoint,comment\n" + "\n".join(rows) + "\n"
    assert cli("-w", shop, "ingest", "feedback", write(tmp_path / "f.csv", text)).code == 0
    data = json.loads(cli("-w", shop, "analyze", "feedback", "--json").out)
    order = next(g for g in data["groups"] if g["key"] == "order")
    assert order["nps"]["value"] == pytest.approx(20.0)
    assert order["nps"]["n"] == 10
    track = next(g for g in data["groups"] if g["key"] == "track")
    assert track["csat"]["value"] == 0.5
    assert track["comments"] == 2
    assert track["negative_share"] == 0.5
    with touchlens.open(shop).events(read_only=True) as con:
        comments = [c for (c,) in con.execute("SELECT comment FROM feedback WHERE comment IS NOT NULL").fetchall()]
    assert "jo@example.com" not in " ".join(comments)
    assert any("[email]" in c and "[phone]" in c for c in comments)


def test_trends_flag_a_spike_and_impact_compares_equal_windows(tmp_path) -> None:
    ws = touchlens.init(tmp_path / "ws")
    ws.import_map(write(tmp_path / "m.yaml", MAP))
    rows = []
    for day in range(56):  # two events a day on `track`, four a day from day 28; a spike of 60 on day 10
        per_day = (4 if day >= 28 else 2) + (58 if day == 10 else 0)
        rows += [(f"c{day}-{k}", T0 + timedelta(days=day, minutes=k), "track") for k in range(per_day)]
    ws.ingest_events([write(tmp_path / "e.csv", _events(rows))])
    series = ws.trends("day", ("track",))["series"][0]
    assert [a["period"] for a in series["anomalies"]] == [(T0 + timedelta(days=10)).date().isoformat()]
    change = ws.add_change("track", (T0 + timedelta(days=28)).date(), "New tracking page")
    assert ws.changes()[0]["note"] == "New tracking page"
    impact = ws.impact(change, "28d")
    volume = next(m for m in impact["metrics"] if m["metric"] == "events_per_day")
    assert volume["before"] == pytest.approx((27 * 2 + 60) / 28)
    assert volume["after"] == 4.0
    assert volume["change"] == pytest.approx(4.0 - (27 * 2 + 60) / 28)
    assert impact["window_days"] == 28
    with pytest.raises(touchlens.TouchlensError, match="unknown change"):
        ws.impact(99)
    assert date.fromisoformat(impact["date"]) == (T0 + timedelta(days=28)).date()


def test_key_drivers_of_nps_weigh_the_touchpoint_that_moves_it(tmp_path) -> None:
    ws = touchlens.init(tmp_path / "ws")
    ws.import_map(write(tmp_path / "m.yaml", MAP))
    lines = []
    for i in range(60):
        track, call = 1 + i % 5, 1 + (i // 5) % 5  # NPS follows the tracking score; the call score is unrelated
        when = (T0 + timedelta(hours=i)).isoformat()
        lines += [f"c{i},{when}Z,csat,{track},track", f"c{i},{when}Z,csat,{call},call",
                  f"c{i},{when}Z,nps,{min(10, 2 * track + i % 2)},order"]  # fmt: skip
    ws.ingest_feedback([write(tmp_path / "f.csv", "customer_id,ts,metric,score,touchpoint\n" + "\n".join(lines))])
    result = ws.nps_drivers()
    assert result["customers"] == 60
    weights = {w["touchpoint"]: w for w in result["weights"]}
    assert set(weights) == {"track", "call"}
    assert weights["track"]["share"] > 0.9
    # Relative weights split the model's R² exactly.
    assert sum(w["weight"] for w in result["weights"]) == pytest.approx(result["r2"])


def test_insights_computed_beside_each_other_equal_insights_one_after_the_other(shop, monkeypatch) -> None:
    """The scorecard and the sections that need no shared judgment run on threads of their own, each on its own
    backend: the findings are the same as computed one after the other on one thread."""
    ws = touchlens.open(shop)
    threads: list[str] = []
    scorecard = type(ws).scorecard

    def recorded(self, *args, **kwargs):
        threads.append(threading.current_thread().name)
        return scorecard(self, *args, **kwargs)

    monkeypatch.setattr(type(ws), "scorecard", recorded)
    beside = ws.insights().to_dict()
    monkeypatch.setattr(ws, "_backend_per_call", lambda: False)
    alone = ws.insights().to_dict()
    assert threads[0].startswith("touchlens-insights")
    assert threads[1] == threading.current_thread().name
    assert beside == alone
    assert any(beside[section] for section in ("problems", "gaps", "friction"))


def test_insights_that_fail_stop_the_sections_running_beside_them(shop, monkeypatch) -> None:
    """When the judgment fails, the sections computed beside it are interrupted, not left to run to their end: a
    gaps section stuck in a query that takes minutes is stopped, and the failure comes back at once."""
    import duckdb

    from touchlens import experience

    ended: list[BaseException] = []
    started = threading.Event()

    def stuck(m, backend):
        safety = threading.Timer(60, backend.con.interrupt)
        safety.start()
        started.set()
        try:
            backend.con.execute("SELECT count(*) FROM range(20000000000) t(i) WHERE i % 7 = 3").fetchall()
        except duckdb.Error as exc:
            ended.append(exc)
            raise
        finally:
            safety.cancel()
        return []

    def failing(self, *args, **kwargs):
        assert started.wait(10)
        raise RuntimeError("the judgment failed")

    monkeypatch.setitem(experience.ALONE, "gaps", stuck)
    monkeypatch.setattr(experience.Experience, "_judging", failing)
    start = time.monotonic()
    with pytest.raises(RuntimeError, match="the judgment failed"):
        touchlens.open(shop).insights()
    assert isinstance(ended[0], duckdb.InterruptException)
    assert time.monotonic() - start < 30  # not the stand-in's own safety timer (60 s)
