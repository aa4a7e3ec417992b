"""The demo data: deterministic, valid Segment JSON claimed by the retail map, with findable planted truths.

Every check computes straight from the written files with a small reference evaluator of the map's match
rules, so it does not depend on the ingest or analytics code it will later be used to test.
"""

from __future__ import annotations

import csv
import json
import statistics
from collections import defaultdict
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.compute as pc
import pytest

from touchlens.demo import BENCH_VOCAB, DemoFiles, benchmark_events, write_demo_files
from touchlens.model.map import Condition, MatchRule, TouchpointMap
from touchlens.model.mapfile import parse_map

MAP_FILE = Path(__file__).resolve().parent.parent / "examples" / "outdoor_retail.yaml"
UNMAPPED = {"return_label_created", "app_crashed"}
DATA_START = datetime.fromisoformat("2024-11-01T00:00:00+00:00")
DATA_END = datetime.fromisoformat("2026-10-31T23:59:59.999+00:00")
DAY = timedelta(days=1)
OTHER_POST_PURCHASE = {
    "order_confirmation_email", "shipped_sms", "store_pickup", "phone_support", "support_chat",
    "exchange_initiated_email", "in_store_return",
}  # fmt: skip
CUSTOMERS = 2000
SEED = 11


Row = tuple[datetime, dict[str, Any], str | None]  # time, Segment message, touchpoint


@dataclass
class Demo:
    files: DemoFiles
    events: list[dict[str, Any]]
    feedback: list[dict[str, str]]
    truths: dict[str, Any]
    touchpoints: list[str | None]  # the touchpoint each event belongs to, by the reference evaluator
    journeys: dict[str, list[Row]]  # each known customer's events in time order


def fits(value: Any, cond: Condition) -> bool:
    """The reference meaning of one condition."""
    if cond.exists is not None:
        return (value is not None) == cond.exists
    if value is None:
        return False
    if cond.prefix is not None:
        return str(value).startswith(cond.prefix)
    if cond.equals is not None:
        return bool(value == cond.equals)
    return value in (cond.in_ or [])


def claims(rule: MatchRule, message: dict[str, Any]) -> bool:
    checks = [(rule.event, message["event"]), (rule.channel, message["context"].get("channel"))]
    checks += [(cond, message["properties"].get(name)) for name, cond in rule.where.items()]
    return all(fits(value, cond) for cond, value in checks if cond is not None)


def touchpoints_of(tmap: TouchpointMap, message: dict[str, Any]) -> list[str]:
    return [t.key for t in tmap.touchpoints if t.match is not None and claims(t.match, message)]


def claimed_by(tmap: TouchpointMap, events: list[dict[str, Any]]) -> list[list[str]]:
    """`touchpoints_of` for many events, evaluated once per distinct (event, channel, tested properties)."""
    tested = {name for t in tmap.touchpoints if t.match is not None for name in t.match.where}
    seen: dict[tuple[Any, ...], list[str]] = {}
    out = []
    for e in events:
        props = tuple((name, e["properties"].get(name)) for name in sorted(tested))
        key = (e["event"], e["context"].get("channel"), props)
        if key not in seen:
            seen[key] = touchpoints_of(tmap, e)
        out.append(seen[key])
    return out


@pytest.fixture(scope="module")
def retail_map() -> TouchpointMap:
    return parse_map(MAP_FILE.read_text(encoding="utf-8"), str(MAP_FILE))


def load(folder: Path, tmap: TouchpointMap, planted: bool, customers: int = CUSTOMERS) -> Demo:
    files = write_demo_files(folder, customers=customers, seed=SEED, planted=planted)
    events = [json.loads(line) for line in files.events.read_text(encoding="utf-8").splitlines()]
    with files.feedback.open(encoding="utf-8", newline="") as f:
        feedback = list(csv.DictReader(f))
    truths = json.loads(files.truths.read_text(encoding="utf-8"))
    touchpoints = [c[0] if c else None for c in claimed_by(tmap, events)]
    return Demo(files, events, feedback, truths, touchpoints, journeys(events, touchpoints))


@pytest.fixture(scope="module")
def planted(tmp_path_factory: pytest.TempPathFactory, retail_map: TouchpointMap) -> Demo:
    return load(tmp_path_factory.mktemp("planted"), retail_map, planted=True)


@pytest.fixture(scope="module")
def unplanted(tmp_path_factory: pytest.TempPathFactory, retail_map: TouchpointMap) -> Demo:
    return load(tmp_path_factory.mktemp("unplanted"), retail_map, planted=False)


def ts(text: str) -> datetime:
    return datetime.fromisoformat(text.replace("Z", "+00:00"))


def journeys(events: list[dict[str, Any]], touchpoints: list[str | None]) -> dict[str, list[Row]]:
    """Each known customer's events in time order, with their touchpoints."""
    out: dict[str, list[Row]] = defaultdict(list)
    for event, touchpoint in zip(events, touchpoints, strict=True):
        if "userId" in event:
            out[event["userId"]].append((ts(event["timestamp"]), event, touchpoint))
    for rows in out.values():
        rows.sort(key=lambda row: row[0])
    return out


def csat_means(demo: Demo) -> tuple[float, float]:
    """Mean CSAT of the refund email and of the other post-purchase touchpoints."""
    scores: dict[bool, list[int]] = {True: [], False: []}
    surveyed = OTHER_POST_PURCHASE | {"refund_issued_email"}
    for row in demo.feedback:
        if row["metric"] == "csat" and row["touchpoint"] in surveyed:
            scores[row["touchpoint"] == "refund_issued_email"].append(int(row["score"]))
    return statistics.mean(scores[True]), statistics.mean(scores[False])


def churn_ratio(demo: Demo) -> float:
    """Churn (no events in the last 365 days) after a refund email, over churn of other buyers."""
    cutoff = DATA_END - 365 * DAY
    groups: dict[bool, list[bool]] = {True: [], False: []}
    for rows in demo.journeys.values():
        refunds = [t for t, _, tp in rows if tp == "refund_issued_email"]
        orders = [t for t, e, _ in rows if e["event"] == "order_placed"]
        anchor = refunds[0] if refunds else orders[0] if orders else None
        if anchor is not None and anchor <= cutoff:
            groups[bool(refunds)].append(rows[-1][0] <= cutoff)
    return statistics.mean(groups[True]) / statistics.mean(groups[False])


def conversion_ratio(demo: Demo) -> float:
    """Share of chat users ordering after their first chat, over buyers without chat ordering again."""
    cutoff = DATA_END - 200 * DAY
    groups: dict[bool, list[bool]] = {True: [], False: []}
    for rows in demo.journeys.values():
        orders = [t for t, e, _ in rows if e["event"] == "order_placed"]
        chats = [t for t, e, _ in rows if e["event"] == "chat_started"]
        anchor = chats[0] if chats else orders[0] if orders else None
        if anchor is not None and anchor <= cutoff:
            groups[bool(chats)].append(any(t > anchor for t in orders))
    return statistics.mean(groups[True]) / statistics.mean(groups[False])


def loop_share(demo: Demo) -> float:
    """Share of customers with a delivered SMS who go tracking → call → tracking within a day."""
    looped = delivered = 0
    for rows in demo.journeys.values():
        delivered += any(tp == "delivered_sms" for _, _, tp in rows)
        steps = [(t, tp) for t, _, tp in rows if tp in ("order_tracking_page", "phone_support")]
        looped += any(
            (a[1], b[1], c[1]) == ("order_tracking_page", "phone_support", "order_tracking_page") and c[0] - a[0] <= DAY
            for a, b, c in zip(steps, steps[1:], steps[2:], strict=False)
        )
    return looped / delivered


def after_orders(demo: Demo, tmap: TouchpointMap) -> list[tuple[float, str | None]]:
    """For each order, the days until the customer's next event outside the purchase stage, and its stage."""
    stages = {t.key: t.stage for t in tmap.touchpoints}
    found = []
    for rows in demo.journeys.values():
        for i, (placed, event, _) in enumerate(rows):
            later = ((t, stages.get(tp or "")) for t, _, tp in rows[i + 1 :] if stages.get(tp or "") != "purchase")
            if event["event"] == "order_placed" and (first := next(later, None)):
                found.append(((first[0] - placed) / DAY, first[1]))
    return found


def truth(demo: Demo, truth_id: str) -> dict[str, Any]:
    return next(t for t in demo.truths["truths"] if t["id"] == truth_id)


# ------------------------------------------------------------------------------------------------ files


def test_same_seed_gives_identical_files_and_another_seed_different(tmp_path: Path) -> None:
    a, b = (write_demo_files(tmp_path / name, customers=150, seed=3) for name in ("a", "b"))
    c = write_demo_files(tmp_path / "c", customers=150, seed=4)
    for field in ("events", "feedback", "customers", "truths"):
        assert getattr(a, field).read_bytes() == getattr(b, field).read_bytes()
    assert a.events.read_bytes() != c.events.read_bytes()
    assert a.feedback.read_bytes() != c.feedback.read_bytes()


@pytest.mark.slow
def test_every_line_is_a_segment_track_message_with_a_unique_id(planted: Demo) -> None:
    ids = [e["messageId"] for e in planted.events]
    assert len(set(ids)) == len(ids)
    for e in planted.events:
        assert e["type"] == "track"
        assert e.get("userId") or e.get("anonymousId")
        assert isinstance(e["properties"], dict)
        assert "channel" not in e["properties"]
        assert DATA_START <= ts(e["timestamp"]) <= DATA_END
    assert sum("anonymousId" in e for e in planted.events) > 0
    assert 15 <= len(planted.events) / CUSTOMERS <= 40


def test_every_event_but_the_unmapped_is_claimed_by_exactly_one_touchpoint(
    planted: Demo, retail_map: TouchpointMap
) -> None:
    channels = {c.key for c in retail_map.channels}
    for event, claimed in zip(planted.events, claimed_by(retail_map, planted.events), strict=True):
        assert len(claimed) == (0 if event["event"] in UNMAPPED else 1), event
        assert event["context"]["channel"] in channels


def test_feedback_names_map_touchpoints_and_scores_on_their_scales(planted: Demo, retail_map: TouchpointMap) -> None:
    keys = {t.key for t in retail_map.touchpoints}
    scales = {"csat": range(1, 6), "nps": range(11), "ces": range(1, 8)}
    for row in planted.feedback:
        assert row["touchpoint"] in keys
        assert int(row["score"]) in scales[row["metric"]]
    answering = {row["customer_id"] for row in planted.feedback}
    assert 0.1 <= len(answering) / CUSTOMERS <= 0.2
    assert any("@" in row["comment"] for row in planted.feedback)


def test_customers_carry_the_attributes_persona_segments_test(planted: Demo) -> None:
    with planted.files.customers.open(encoding="utf-8", newline="") as f:
        rows = list(csv.DictReader(f))
    assert len(rows) == CUSTOMERS
    assert {r["lifecycle_segment"] for r in rows} >= {"new", "returning"}
    assert any(r["loyalty_tier"] in ("gold", "summit") and r["orders_last_12m"] for r in rows)
    assert any(r["acquisition_campaign"].startswith("gift_") for r in rows)


# ------------------------------------------------------------------------------------------------ truths


@pytest.mark.slow
def test_refund_email_scores_far_below_other_post_purchase_touchpoints(planted: Demo, unplanted: Demo) -> None:
    refund, others = csat_means(planted)
    assert refund <= 2.5
    assert others >= 4
    refund, others = csat_means(unplanted)
    assert abs(refund - others) <= 0.5


def test_customers_churn_more_after_a_refund_email(planted: Demo, unplanted: Demo) -> None:
    assert churn_ratio(planted) >= 1.5
    assert churn_ratio(unplanted) < 1.2


def test_delivering_customers_loop_between_tracking_page_and_phone(planted: Demo, unplanted: Demo) -> None:
    assert loop_share(planted) >= 0.1
    assert loop_share(unplanted) == 0
    assert truth(planted, "tracking_loop")["deliveries"] > 0


def test_return_label_created_is_unmapped_and_counted_exactly(planted: Demo, unplanted: Demo) -> None:
    count = sum(e["event"] == "return_label_created" for e in planted.events)
    returns = sum(e["event"] == "return_label_requested" for e in planted.events)
    assert truth(planted, "unmapped_return_label")["events"] == count
    assert count >= 0.5 * returns
    assert not any(e["event"] == "return_label_created" for e in unplanted.events)


def test_nothing_happens_for_a_week_between_purchase_and_delivery(
    planted: Demo, unplanted: Demo, retail_map: TouchpointMap
) -> None:
    gaps = after_orders(planted, retail_map)
    assert {stage for _, stage in gaps} == {"deliver"}
    assert 6 <= statistics.median(days for days, _ in gaps) <= 8
    assert truth(planted, "silent_week")["median_seconds"] == 7 * 86_400
    assert statistics.median(days for days, _ in after_orders(unplanted, retail_map)) < 4


def test_chat_users_order_again_more_often(planted: Demo, unplanted: Demo) -> None:
    assert conversion_ratio(planted) >= 1.3
    assert conversion_ratio(unplanted) < 1.15


def test_truths_are_listed_with_their_planted_flag(planted: Demo, unplanted: Demo) -> None:
    for demo, flag in ((planted, True), (unplanted, False)):
        assert (demo.truths["seed"], demo.truths["customers"], demo.truths["planted"]) == (SEED, CUSTOMERS, flag)
        assert [t["planted"] for t in demo.truths["truths"]] == [flag] * 5
        assert {t["kind"] for t in demo.truths["truths"]} == {
            "subpar", "loop", "unmapped_event", "silent_period", "driver"
        }  # fmt: skip
    named = {t["event"] for t in planted.truths["truths"] if t["kind"] == "unmapped_event"}
    assert named | {n["event"] for n in planted.truths["noise"]} == UNMAPPED


# ------------------------------------------------------------------------------------------------ benchmark


def test_benchmark_events_are_unique_typed_and_sorted_within_customers() -> None:
    table = benchmark_events(200_000)
    types = {field.name: field.type for field in table.schema}
    strings = ("event_id", "customer_id", "event", "channel", "page_type", "template")
    expected = dict.fromkeys(strings, pa.string()) | {
        "ts": pa.timestamp("us", tz="UTC"),
        "revenue": pa.float64(),
    }
    assert types == expected
    assert table.num_rows == 200_000
    assert pc.count_distinct(table["event_id"]).as_py() == table.num_rows
    customers = pc.count_distinct(table["customer_id"]).as_py()
    assert 15 <= table.num_rows / customers <= 25
    # A stable sort by customer keeps each customer's rows as written; they must already be in time order.
    grouped = table.sort_by([("customer_id", "ascending")])
    timed = table.sort_by([("customer_id", "ascending"), ("ts", "ascending")])
    assert grouped["ts"].equals(timed["ts"])
    orders = pc.equal(table["event"], "order_placed")
    assert pc.all(pc.equal(pc.is_valid(table["revenue"]), orders)).as_py()
    assert set(pc.unique(table["event"]).to_pylist()) <= {v[0] for v in BENCH_VOCAB}
