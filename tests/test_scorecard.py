"""The scorecard on hand-worked journeys: reach, volume, conversion after, lift, drop-off, repeats, timing."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.conftest import workspace_with, write
from touchlens.analytics.scorecard import lift_interval


def test_scorecard_numbers_equal_a_hand_count(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    text = (
        "name: S\ntouchpoints: [{key: ad, match: {event: ad}}, {key: chat, match: {event: chat}}]\n"
        "outcomes: {conversion: {event: order}}\n"
    )
    cli("-w", ws, "map", "import", write(tmp_path / "m.yaml", text))
    rows = [
        ("a", "2026-01-01T10:00:00Z", "ad"), ("a", "2026-01-01T10:10:00Z", "chat"),
        ("a", "2026-01-02T10:00:00Z", "order"),
        ("b", "2026-01-01T10:00:00Z", "ad"), ("b", "2026-01-03T10:00:00Z", "ad"),  # repeat within 7 days, no order
        ("c", "2026-01-01T10:00:00Z", "chat"), ("c", "2026-03-01T10:00:00Z", "order"),  # order too late (30d)
    ]  # fmt: skip
    write(tmp_path / "e.csv", "customer_id,ts,event\n" + "\n".join(",".join(r) for r in rows) + "\n")
    cli("-w", ws, "ingest", "events", tmp_path / "e.csv")
    card = json.loads(cli("-w", ws, "analyze", "scorecard", "--json").out)
    scores = {s["touchpoint"]: s for s in card["touchpoints"]}
    assert card["customers"] == 3
    assert card["baseline_conversion"] == pytest.approx(1 / 3)  # only a converts within 30 days
    ad, chat = scores["ad"], scores["chat"]
    assert (ad["customers"], ad["events"], ad["events_per_customer"]) == (2, 3, 1.5)
    assert ad["conversion"] == 0.5
    assert ad["lift"] == pytest.approx(1.5)
    assert ad["repeat_rate"] == pytest.approx(1 / 3)
    assert chat["conversion"] == 0.5
    # Customers who never convert: b (ends at ad). c converted, just late, so it is not a drop-off.
    assert (ad["drop_off"], chat["drop_off"]) == (1.0, 0.0)
    assert chat["median_seconds_to_next"] is None or chat["median_seconds_to_next"] > 0
    # From the wait sketches, within 1% of the exact median; --exact gives it to the digit.
    assert ad["median_seconds_to_next"] == pytest.approx((600 + 2 * 86400) / 2, rel=0.01)
    exact = json.loads(cli("-w", ws, "analyze", "scorecard", "--exact", "--json").out)
    assert {s["touchpoint"]: s for s in exact["touchpoints"]}["ad"]["median_seconds_to_next"] == (600 + 2 * 86400) / 2
    assert [{**s, "median_seconds_to_next": None, "p90_seconds_to_next": None} for s in card["touchpoints"]] == [
        {**s, "median_seconds_to_next": None, "p90_seconds_to_next": None} for s in exact["touchpoints"]
    ]


def test_lift_interval_brackets_the_ratio_and_narrows_with_more_data() -> None:
    ratio, low, high = lift_interval(0.3, 100, 0.2, 1000)
    assert ratio == pytest.approx(1.5)
    assert low < ratio < high
    _, low_big, high_big = lift_interval(0.3, 10000, 0.2, 100000)
    assert low < low_big < high_big < high
    assert lift_interval(0.0, 10, 0.2, 10) == (None, None, None)


def test_stage_rows_count_a_stage_s_touchpoints_together(cli, tmp_path: Path) -> None:
    text = (
        "name: S\njourneys: [{key: j, stages: [{key: find}, {key: buy}]}]\n"
        "touchpoints: [{key: ad, stage: find, match: {event: ad}}, {key: mail, stage: find, match: {event: mail}},"
        " {key: cart, stage: buy, match: {event: cart}}]\n"
    )
    rows = (
        "a,2026-01-01T10:00:00Z,ad\na,2026-01-01T10:01:00Z,mail\n"
        "b,2026-01-01T10:00:00Z,mail\nb,2026-01-01T10:02:00Z,cart\n"
    )
    ws = workspace_with(cli, tmp_path, text, "customer_id,ts,event\n" + rows)
    card = json.loads(cli("-w", ws, "analyze", "scorecard", "--by", "stage", "--json").out)
    stages = {s["stage"]: s for s in card["stages"]}
    assert (stages["find"]["customers"], stages["find"]["events"]) == (2, 3)
    assert stages["find"]["repeat_rate"] == pytest.approx(1 / 3)  # a's mail follows a's ad in the same stage
    assert (stages["buy"]["customers"], stages["buy"]["events"]) == (1, 1)
    assert cli("-w", ws, "analyze", "scorecard", "--by", "moon").code == 1


@pytest.mark.slow
def test_persona_and_channel_breakdowns_split_the_scorecard(cli, tmp_path: Path) -> None:
    ws = tmp_path / "demo"
    assert cli("-w", ws, "demo", "--no-serve", "--customers", "200", "--seed", "5").code == 0
    overall = {
        s["touchpoint"]: s for s in json.loads(cli("-w", ws, "analyze", "scorecard", "--json").out)["touchpoints"]
    }
    personas = json.loads(cli("-w", ws, "analyze", "scorecard", "--breakdown", "persona").out)
    assert personas["breakdown"] == "persona"
    assert len(personas["groups"]) > 1
    for key, row in overall.items():
        split = sum(s["customers"] for g in personas["groups"] for s in g["touchpoints"] if s["touchpoint"] == key)
        assert split <= row["customers"]  # customers without a persona are in no group
    channels = json.loads(cli("-w", ws, "analyze", "scorecard", "--breakdown", "channel").out)
    for group in channels["groups"]:
        events = sum(s["events"] for s in group["touchpoints"])
        assert 0 < events <= sum(r["events"] for r in overall.values())
    assert cli("-w", ws, "analyze", "scorecard", "--breakdown", "mood").code == 1
