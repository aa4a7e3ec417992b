"""Event ingestion: exact counts, nothing twice, bad rows quarantined with a reason, rules in the engine."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import touchlens
from tests.conftest import EXAMPLES, write

MAP = """\
name: Shop
channels: [{key: email, kind: digital}, {key: web, kind: digital}]
journeys: [{key: j, stages: [{key: buy}, {key: after}]}]
touchpoints:
  - {key: receipt, stage: buy, channel: email, match: {event: email_sent, where: {template: receipt}}}
  - key: refund
    stage: after
    channel: email
    match: {event: email_sent, where: {template: {in: [refund, refund_v2]}}}
  - {key: product, stage: buy, channel: web, match: {event: page_viewed, channel: web, where: {page: {prefix: /p/}}}}
  - {key: order, stage: buy, channel: web, match: {event: order_placed, where: {coupon: {exists: true}}}}
"""


def _track(
    i: int, user: str | None, event: str | None, ts: str, props: dict[str, Any], channel: str | None = None
) -> str:
    message: dict[str, Any] = {"type": "track", "messageId": f"m{i}", "timestamp": ts, "properties": props}
    if user is not None:
        message["userId"] = user
    if event is not None:
        message["event"] = event
    if channel is not None:
        message["context"] = {"channel": channel}
    return json.dumps(message)


def segment_file(path: Path, seed: int = 3) -> dict[str, Any]:
    """A Segment export with every kind of trouble; returns the counts a correct ingest must report."""
    rng = random.Random(seed)
    lines: list[str] = []
    expected = {"read": 0, "accepted": 0, "duplicates": 0, "quarantined": 0, "unmapped": 0}
    by_tp: dict[str, int] = {}
    kinds = [
        ("receipt", "email_sent", {"template": "receipt"}, None),
        ("refund", "email_sent", {"template": "refund_v2"}, None),
        ("product", "page_viewed", {"page": "/p/boots"}, "web"),
        ("order", "order_placed", {"coupon": "X"}, None),
        (None, "order_placed", {}, None),  # no coupon: unmapped
        (None, "page_viewed", {"page": "/p/boots"}, "email"),  # wrong channel: unmapped
        (None, "email_sent", {"template": "newsletter"}, None),
    ]
    for i in range(300):
        tp, event, props, channel = rng.choice(kinds)
        lines.append(_track(i, f"u{i % 37}", event, f"2026-03-{1 + i % 28:02d}T10:{i % 60:02d}:00Z", props, channel))
        expected["accepted"] += 1
        if tp is None:
            expected["unmapped"] += 1
        else:
            by_tp[tp] = by_tp.get(tp, 0) + 1
    for i in rng.sample(range(300), 25):  # exact duplicates, anywhere later in the file
        lines.append(lines[i])
        expected["duplicates"] += 1
    bad = [
        '{"type": "track", "messageId": "t1", "userId": "u1", "event": "ord',  # truncated
        _track(1001, None, "order_placed", "2026-03-01T00:00:00Z", {}),  # no user
        _track(1002, "u1", "order_placed", "yesterday", {}),  # bad timestamp
        _track(1003, "u1", "order_placed", "2026-02-30T10:00:00Z", {}),  # impossible date
        _track(1004, "u1", None, "2026-03-01T00:00:00Z", {}),  # no event name
        _track(1005, "u1", "", "2026-03-01T00:00:00Z", {}),  # empty event name
    ]
    lines += bad
    expected["quarantined"] = len(bad)
    rng.shuffle(lines)
    path.write_text("\n".join(lines) + "\n")
    expected["read"] = len(lines)
    expected["by_touchpoint"] = dict(sorted(by_tp.items()))
    return expected


def _ingest(cli: Any, ws: Path, *args: str | Path) -> dict[str, Any]:
    result = cli("-w", ws, "ingest", "events", *args, "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_segment_counts_are_exact_and_a_second_run_accepts_nothing(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    cli("-w", ws, "map", "import", write(tmp_path / "m.yaml", MAP))
    expected = segment_file(tmp_path / "export.jsonl")

    first = _ingest(cli, ws, tmp_path / "export.jsonl")
    assert {k: first[k] for k in expected} == expected
    second = _ingest(cli, ws, tmp_path / "export.jsonl")
    assert second["accepted"] == 0
    assert second["duplicates"] == expected["accepted"] + expected["duplicates"]
    assert second["by_touchpoint"] == {}
    with touchlens.open(ws).events(read_only=True) as con:
        assert con.execute("SELECT count(*), count(DISTINCT event_id) FROM events").fetchone() == (300, 300)
        assert con.execute("SELECT count(*) FROM quarantine").fetchone() == (6,)


def test_quarantine_lists_each_reason_with_file_row_and_field(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    path = write(
        tmp_path / "e.jsonl",
        _track(1, "u1", "a", "2026-03-01T00:00:00Z", {}) + "\n{broken\n" + _track(2, "u1", "a", "soon", {}) + "\n",
    )
    _ingest(cli, ws, path)
    reasons = json.loads(cli("-w", ws, "quarantine", "list", "--json").out)["reasons"]
    by_reason = {r["reason"]: r for r in reasons}
    assert set(by_reason) == {"not valid JSON", "unparseable timestamp"}
    assert by_reason["unparseable timestamp"]["examples"][0]["row"] == 3
    assert by_reason["unparseable timestamp"]["examples"][0]["field"] == "ts"
    assert by_reason["unparseable timestamp"]["examples"][0]["detail"] == "soon"
    assert by_reason["not valid JSON"]["examples"][0]["row"] == 2
    table = cli("-w", ws, "quarantine", "list").out
    assert "e.jsonl:3 ts: soon" in table


def test_a_plain_csv_ingests_with_a_map_that_has_no_channels(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    cli(
        "-w",
        ws,
        "map",
        "import",
        write(tmp_path / "m.yaml", "name: Bare\ntouchpoints: [{key: visit, match: {event: visit}}]\n"),
    )
    path = write(
        tmp_path / "e.csv",
        "customer_id,ts,event,channel\nc1,2026-01-01T10:00:00Z,visit,kiosk\nc2,2026-01-02 11:00:00,visit,\n"
        "c1,1767261600,call,phone\n,2026-01-01,visit,web\n",
    )
    report = _ingest(cli, ws, path)
    assert (report["read"], report["accepted"], report["quarantined"], report["unmapped"]) == (4, 3, 1, 1)
    assert report["by_touchpoint"] == {"visit": 2}
    with touchlens.open(ws).events(read_only=True) as con:
        rows = con.execute("SELECT customer_id, channel, epoch(ts) FROM events ORDER BY ts").fetchall()
    # Naive times are UTC; an epoch number is seconds since 1970.
    assert sorted(rows, key=str) == [
        ("c1", "kiosk", 1767261600.0),
        ("c1", "phone", 1767261600.0),
        ("c2", None, 1767351600.0),
    ]


def test_columns_map_other_names_and_unknown_columns_are_named(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    path = write(tmp_path / "e.csv", "who,when,what,plan\nc1,2026-01-01T10:00:00Z,visit,gold\n")
    report = _ingest(cli, ws, path, "--columns", "customer_id=who,ts=when,event=what")
    assert report["accepted"] == 1
    with touchlens.open(ws).events(read_only=True) as con:
        assert json.loads(con.execute("SELECT properties FROM events").fetchone()[0]) == {"plan": "gold"}
    bad = cli("-w", ws, "ingest", "events", path, "--columns", "customer_id=user")
    assert bad.code == 1
    assert "column 'user' (for customer_id) not found; columns are: who, when, what, plan" in bad.err


def test_remap_applies_a_changed_map_to_stored_events(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    path = write(
        tmp_path / "e.csv",
        "customer_id,ts,event\nc1,2026-01-01T10:00:00Z,visit\nc1,2026-01-02T10:00:00Z,call\n",
    )
    assert _ingest(cli, ws, path)["unmapped"] == 2
    cli(
        "-w",
        ws,
        "map",
        "import",
        write(tmp_path / "m.yaml", "name: X\ntouchpoints: [{key: calls, match: {event: call}}]\n"),
    )
    remapped = json.loads(cli("-w", ws, "remap", "--json").out)
    assert remapped == {"by_touchpoint": {"calls": 1}, "unmapped": 1}


def test_customers_and_identify_traits_assign_personas(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    cli("-w", ws, "map", "import", EXAMPLES / "outdoor_retail.yaml")
    m = touchlens.open(ws).map()
    persona = m.personas[0]
    cond = persona.segment[0]
    value = cond.equals if cond.equals is not None else (cond.in_ or ["x"])[0]
    traits = {c.property: (c.equals if c.equals is not None else (c.in_ or ["yes"])[0]) for c in persona.segment}
    line = json.dumps(
        {
            "type": "identify",
            "messageId": "i1",
            "userId": "u9",
            "traits": traits,
            "timestamp": "2026-01-01T00:00:00Z",
        }
    )
    report = _ingest(cli, ws, write(tmp_path / "id.jsonl", line + "\n"))
    assert report["identified"] == 1
    with touchlens.open(ws).events(read_only=True) as con:
        assert con.execute("SELECT persona FROM customers WHERE customer_id = 'u9'").fetchone() == (persona.key,)
    csv_path = write(tmp_path / "c.csv", f"customer_id,{cond.property}\nu10,{value}\n,orphan\n")
    counts = json.loads(cli("-w", ws, "ingest", "customers", csv_path, "--json").out)
    assert (counts["read"], counts["updated"], counts["quarantined"]) == (2, 1, 1)


def test_empty_csv_cells_are_absent_and_a_json_array_file_is_read_item_by_item(cli, tmp_path: Path) -> None:
    ws = tmp_path / "ws"
    cli("init", ws)
    rules = (
        "name: X\ntouchpoints:\n  - {key: with_coupon, match: {event: order, where: {coupon: {exists: true}}}}\n"
        "  - {key: without_coupon, match: {event: order, where: {coupon: {exists: false}}}}\n"
    )
    cli("-w", ws, "map", "import", write(tmp_path / "m.yaml", rules))
    csv_path = write(
        tmp_path / "e.csv", "customer_id,ts,event,coupon\nc1,2026-01-01,order,SAVE\nc2,2026-01-01,order,\n"
    )
    assert _ingest(cli, ws, csv_path)["by_touchpoint"] == {"with_coupon": 1, "without_coupon": 1}
    events = [{"customer_id": "c3", "ts": "2026-01-02", "event": "order"}, "not an object"]
    report = _ingest(cli, ws, write(tmp_path / "a.json", json.dumps(events, indent=2)))
    assert (report["accepted"], report["quarantined"], report["by_touchpoint"]) == (1, 1, {"without_coupon": 1})


def test_unmapped_events_are_named_by_event_most_frequent_first(cli, tmp_path: Path) -> None:
    from tests.conftest import workspace_with

    ws = workspace_with(cli, tmp_path, "name: M\ntouchpoints:\n  - {key: home, name: Home, match: {event: home}}\n")
    rows = ["c1,2026-01-01T10:00:00Z,home", "c1,2026-01-01T10:01:00Z,promo_click", "c2,2026-01-01T10:02:00Z,chat",
            "c2,2026-01-01T10:03:00Z,promo_click", "c3,2026-01-01T10:04:00Z,promo_click"]  # fmt: skip
    events = write(tmp_path / "u.csv", "customer_id,ts,event\n" + "\n".join(rows) + "\n")
    report = json.loads(cli("-w", ws, "ingest", "events", events, "--json").out)
    assert report["unmapped"] == 4
    assert list(report["unmapped_events"].items()) == [("promo_click", 3), ("chat", 1)]
    again = cli("-w", ws, "ingest", "events", events)  # nothing new: nothing unmapped to name
    assert "unmapped, by event" not in again.out
    table = cli(
        "-w", ws, "ingest", "events", write(tmp_path / "v.csv", "customer_id,ts,event\nc9,2026-01-02T00:00:00Z,chat\n")
    )
    assert "unmapped, by event" in table.out
    assert "touchlens remap" in table.err
