"""Proactive rules run on live data (issue 22, part 3): each due contact handed to the webhook once, recorded as
the touchpoint's event; the contact cap and quiet hours respected; the holdout's randomised comparison covers a
planted effect (and 0 on a null twin)."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest

import touchlens
from tests.conftest import write
from tests.test_alerts import Receiver
from touchlens.errors import BadOption
from touchlens.insights.proactive import in_holdout

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday morning
DAY = timedelta(days=1)


def shop(tmp_path: Path, webhook: str, rule: dict[str, Any], cap: dict[str, Any] | None = None) -> touchlens.Workspace:
    root = tmp_path / "ws"
    touchlens.init(root)
    write(root / "touchlens.toml", f'[proactive]\nwebhook = "{webhook}"\n')
    ws = touchlens.open(root)
    m: dict[str, Any] = {
        "name": "Shop",
        "channels": [{"key": "phone", "kind": "human"}, {"key": "email", "kind": "digital"}],
        "touchpoints": [
            {"key": "order", "match": {"event": "order_placed"}},
            {
                "key": "checkin_call",
                "channel": "phone",
                "initiative": "proactive",
                "match": {"event": "call", "where": {"kind": "checkin"}},
            },
            {"key": "promo_email", "channel": "email", "initiative": "proactive", "match": {"event": "promo"}},
            {"key": "browse", "match": {"event": "page_view"}},
        ],
        "outcomes": {"churn": {"inactive_days": 30}},
        "proactive": [rule],
    }
    if cap:
        m["contact_cap"] = cap
    ws.import_map(write(tmp_path / "map.json", json.dumps(m)))
    return ws


RULE = {"key": "checkin", "after": {"touchpoint": "order"}, "wait": "3d", "unless": {"event": "complaint"},
        "channel": "phone", "touchpoint": "checkin_call", "holdout": 0.2}  # fmt: skip


def events(ws: touchlens.Workspace, tmp_path: Path, name: str, rows: list[tuple[str, datetime, str]]) -> None:
    text = "customer_id,ts,event\n" + "".join(f"{c},{t.isoformat()},{e}\n" for c, t, e in rows)
    ws.ingest_events([write(tmp_path / name, text)])


def test_each_due_contact_is_sent_once_and_recorded_as_the_touchpoints_event(tmp_path: Path) -> None:
    hook = Receiver()
    ws = shop(tmp_path, hook.url, RULE, cap={"max": 1, "per": "7d"})
    events(ws, tmp_path, "before.csv", [("old", T0 - 10 * DAY, "order_placed")])  # history: never sent
    assert [r.sent for r in ws.contacts.run(T0)] == [0]  # the rule starts now
    customers = [f"c{i:03d}" for i in range(60)]
    stream = [(c, T0 + timedelta(hours=1), "order_placed") for c in customers]
    stream += [(c, T0 + DAY, "complaint") for c in customers[:5]]  # cancels theirs
    stream += [(c, T0 + 2 * DAY, "promo") for c in customers[5:10]]  # another proactive contact: the cap stops theirs
    events(ws, tmp_path, "stream.csv", stream)
    assert [r.sent for r in ws.contacts.run(T0 + 2 * DAY)] == [0]  # not due yet
    first = ws.contacts.run(T0 + 3 * DAY + timedelta(hours=2))[0]
    held = {c for c in customers[10:] if in_holdout("checkin", c, 0.2)}
    expected = set(customers[10:]) - held
    assert {b["customer_id"] for b in hook.bodies} == expected
    assert len(hook.bodies) == len(expected)  # once each
    assert (first.sent, first.held_out, first.failed) == (len(expected), len(held), 0)
    assert ws.contacts.run(T0 + 4 * DAY)[0].sent == 0  # nothing twice
    assert len(hook.bodies) == len(expected)
    assert hook.bodies[0]["due_at"] == (T0 + timedelta(hours=1) + 3 * DAY).isoformat()
    with ws.events(read_only=True) as con:
        stored = con.execute("SELECT count(*) FROM events WHERE source = 'proactive' AND touchpoint = 'checkin_call'")
        assert stored.fetchone() == (len(expected),)  # the map's rule claims them: the touchpoint's events
    statuses = [c["status"] for c in ws.contacts.list("checkin")]
    assert (statuses.count("sent"), statuses.count("held_out")) == (len(expected), len(held))
    hook.server.shutdown()


def test_quiet_hours_hold_a_contact_until_they_end(tmp_path: Path) -> None:
    hook = Receiver()
    ws = shop(tmp_path, hook.url, {**RULE, "holdout": 0, "quiet": "08:00-12:00"})
    ws.contacts.run(T0)
    events(ws, tmp_path, "s.csv", [("ann", T0 + timedelta(hours=1), "order_placed")])  # due at 10:00: quiet
    assert ws.contacts.run(T0 + 3 * DAY + timedelta(hours=2))[0].sent == 0
    assert ws.contacts.run(T0 + 3 * DAY + timedelta(hours=3, minutes=1))[0].sent == 1
    assert hook.bodies[0]["due_at"] == (T0 + 3 * DAY + timedelta(hours=3)).isoformat()
    hook.server.shutdown()


def test_a_contact_the_webhook_refuses_is_tried_again(tmp_path: Path) -> None:
    ws = shop(tmp_path, "http://127.0.0.1:9/nobody", {**RULE, "holdout": 0})
    ws.contacts.run(T0)
    events(ws, tmp_path, "s.csv", [("ann", T0 + timedelta(hours=1), "order_placed")])
    assert ws.contacts.run(T0 + 4 * DAY)[0].failed == 1
    assert ws.contacts.list("checkin") == []  # not recorded: the next run tries again
    assert ws.contacts.run(T0 + 4 * DAY)[0].failed == 1


def test_running_needs_a_webhook(tmp_path: Path) -> None:
    ws = shop(tmp_path, "", RULE)
    with pytest.raises(BadOption, match=r"\[proactive\] webhook"):
        ws.contacts.run(T0)


def covers(low: float | None, high: float | None, value: float) -> bool:
    return low is not None and high is not None and low <= value <= high


@pytest.mark.parametrize(("churn_contacted", "churn_held"), [(0.2, 0.5), (0.35, 0.35)], ids=["planted", "null"])
def test_the_holdout_measures_the_planted_effect(tmp_path: Path, churn_contacted: float, churn_held: float) -> None:
    hits = 0
    for seed in range(10):
        hook = Receiver()
        ws = shop(tmp_path / str(seed), hook.url, {**RULE, "holdout": 0.3})
        ws.contacts.run(T0)
        customers = [f"s{seed}-{i:03d}" for i in range(500)]
        events(
            ws, tmp_path / str(seed), "orders.csv", [(c, T0 + timedelta(hours=1), "order_placed") for c in customers]
        )
        ws.contacts.run(T0 + 4 * DAY)
        sent = {c["customer_id"] for c in ws.contacts.list("checkin") if c["status"] == "sent"}
        rng = np.random.default_rng(seed)
        later = [(c, T0 + 20 * DAY, "page_view") for c in customers
                 if rng.random() >= (churn_contacted if c in sent else churn_held)]  # fmt: skip
        later.append(("zz-end", T0 + 60 * DAY, "page_view"))
        events(ws, tmp_path / str(seed), "later.csv", later)
        [churn] = ws.contacts.measure("checkin")
        assert churn.with_contact + churn.without_contact == 500
        assert churn.without_contact > 100
        hits += covers(churn.low, churn.high, churn_contacted - churn_held)
        assert "randomised" in churn.verdict or churn.verdict.startswith("no clear difference")
        hook.server.shutdown()
    assert hits >= 8  # a 95% interval misses 2 of 10 seeds or more with probability 1.2%


def test_a_server_stores_the_contacts_through_its_one_writer(tmp_path: Path) -> None:
    hook = Receiver()
    ws = shop(tmp_path, hook.url, {**RULE, "holdout": 0})
    ws.contacts.run(T0)
    events(ws, tmp_path, "s.csv", [("ann", T0 + timedelta(hours=1), "order_placed")])
    handed: list[object] = []

    def writer(work: Any) -> None:  # as the server's live writer would: the work on its connection
        handed.append(work)
        with ws.events() as con:
            work(con)

    assert ws.contacts.run(T0 + 4 * DAY, writer=writer)[0].sent == 1
    assert len(handed) == 1
    with ws.events(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM events WHERE source = 'proactive'").fetchone() == (1,)
    hook.server.shutdown()
