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
from touchlens.errors import BadOption, UnknownItem
from touchlens.insights.proactive import in_holdout

T0 = datetime(2026, 3, 2, 9, tzinfo=UTC)  # a Monday morning
DAY = timedelta(days=1)


def shop(
    tmp_path: Path, webhook: str, rule: dict[str, Any], cap: dict[str, Any] | None = None, queue: bool = False
) -> touchlens.Workspace:
    root = tmp_path / "ws"
    touchlens.init(root)
    write(root / "touchlens.toml", f'[proactive]\nwebhook = "{webhook}"\nqueue = {str(queue).lower()}\n')
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


@pytest.mark.slow  # 12 s each: a business of customers generated, ingested and judged
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


# -- a messaging tool without a webhook: the queue it fetches, and its confirmations --------------------------------


def queued_shop(tmp_path: Path, customers: list[str]) -> touchlens.Workspace:
    """A queue-fed shop whose customers ordered an hour after the rule started; no holdout."""
    ws = shop(tmp_path, "", {**RULE, "holdout": 0}, cap={"max": 1, "per": "7d"}, queue=True)
    ws.contacts.run(T0)
    events(ws, tmp_path, "orders.csv", [(c, T0 + timedelta(hours=1), "order_placed") for c in customers])
    return ws


def test_due_contacts_wait_in_the_queue_until_the_tool_confirms_them(tmp_path: Path) -> None:
    ws = queued_shop(tmp_path, ["ann", "bob", "cy"])
    [run] = ws.contacts.run(T0 + 4 * DAY)
    assert (run.queued, run.sent, run.failed) == (3, 0, 0)
    queue = ws.contacts.queue()
    assert [q["customer_id"] for q in queue] == ["ann", "bob", "cy"]
    assert queue[0]["due_at"] == (T0 + timedelta(hours=1) + 3 * DAY).isoformat()
    assert (queue[0]["channel"], queue[0]["touchpoint"]) == ("phone", "checkin_call")
    assert ws.contacts.run(T0 + 5 * DAY)[0].queued == 0  # queued once
    with ws.events(read_only=True) as con:  # nothing is the touchpoint's event before the tool sent it
        assert con.execute("SELECT count(*) FROM events WHERE source = 'proactive'").fetchone() == (0,)
    at = T0 + 4 * DAY + timedelta(hours=5)
    done = ws.contacts.confirm([(queue[0]["contact_id"], at), (queue[1]["contact_id"], None)], now=T0 + 5 * DAY)
    assert (done.confirmed, done.already) == (2, 0)
    assert [q["customer_id"] for q in ws.contacts.queue()] == ["cy"]
    again = ws.contacts.confirm([(queue[0]["contact_id"], None)])
    assert (again.confirmed, again.already) == (0, 1)
    with ws.events(read_only=True) as con:
        stored = con.execute(
            "SELECT customer_id, ts FROM events WHERE source = 'proactive' AND touchpoint = 'checkin_call' ORDER BY 1"
        ).fetchall()
    assert [(c, t.astimezone(UTC)) for c, t in stored] == [("ann", at), ("bob", T0 + 5 * DAY)]


def test_a_queued_contact_counts_against_the_cap_and_not_in_the_measurement(tmp_path: Path) -> None:
    ws = queued_shop(tmp_path, ["ann"])
    ws.contacts.run(T0 + 4 * DAY)
    events(ws, tmp_path, "again.csv", [("ann", T0 + 4 * DAY + timedelta(hours=1), "order_placed")])
    assert ws.contacts.run(T0 + 8 * DAY)[0].queued == 0  # one a week: the queued one counts
    [churn] = ws.contacts.measure("checkin")
    assert churn.with_contact + churn.without_contact == 0  # neither contacted nor withheld yet


def test_an_unknown_contact_is_refused_before_anything_is_stored(tmp_path: Path) -> None:
    ws = queued_shop(tmp_path, ["ann"])
    ws.contacts.run(T0 + 4 * DAY)
    [q] = ws.contacts.queue()
    with pytest.raises(UnknownItem, match="unknown proactive contact 999"):
        ws.contacts.confirm([(q["contact_id"], None), (999, None)])
    assert len(ws.contacts.queue()) == 1


@pytest.mark.parametrize(
    ("text", "problem"),
    [("contact_id,sent_at\n1,2026-03-05T10:00:00Z\nseven,\n", r"row 2: contact_id: a contact's number, not 'seven'"),
     ("contact_id,sent_at\n1,yesterday\n", r"row 1: sent_at: an ISO 8601 time, not 'yesterday'"),
     ('{"contact_id": 1}', "a JSON list of objects")],
)  # fmt: skip
def test_a_bad_confirmation_file_names_the_row_and_field(tmp_path: Path, text: str, problem: str) -> None:
    from touchlens.contacts import read_confirmations

    path = write(tmp_path / "sent.csv", text)
    with pytest.raises(BadOption, match=rf"sent.csv: .*{problem}"):
        read_confirmations(path)


def test_the_cli_exports_the_queue_and_takes_the_tools_confirmations(tmp_path: Path, cli: Any) -> None:
    ws = queued_shop(tmp_path, ["ann", "bob"])
    assert "2 queued for the messaging tool" in cli("-w", ws.root, "design", "run").out
    exported = cli("-w", ws.root, "design", "queue", "--csv").out
    header, *rows = exported.strip().splitlines()
    assert header == "contact_id,rule,customer_id,channel,touchpoint,trigger_at,due_at"
    assert [r.split(",")[2] for r in rows] == ["ann", "bob"]
    first = rows[0].split(",")[0]
    sent = write(tmp_path / "sent.csv", f"contact_id,sent_at\n{first},{(T0 + 4 * DAY).isoformat()}\n")
    assert "1 confirmed as sent" in cli("-w", ws.root, "design", "confirm", "--file", sent).out
    assert [q["customer_id"] for q in json.loads(cli("-w", ws.root, "design", "queue", "--json").out)] == ["bob"]
    assert "0 confirmed as sent, 1 already" in cli("-w", ws.root, "design", "confirm", first).out
    refused = cli("-w", ws.root, "design", "confirm", "--file", write(tmp_path / "bad.csv", "contact_id\nx\n"))
    assert refused.code != 0
    assert "bad.csv: row 1: contact_id" in refused.err


# -- where the holdout's measurement is shown ---------------------------------------------------------------------


def measured_shop(tmp_path: Path, hook: Receiver) -> touchlens.Workspace:
    """A running rule with a 30% holdout, its contacts sent, and a planted churn difference after them."""
    ws = shop(tmp_path, hook.url, {**RULE, "holdout": 0.3, "name": "Check-in <call>"})
    ws.contacts.run(T0)
    customers = [f"c{i:03d}" for i in range(300)]
    events(ws, tmp_path, "orders.csv", [(c, T0 + timedelta(hours=1), "order_placed") for c in customers])
    ws.contacts.run(T0 + 4 * DAY)
    sent = {c["customer_id"] for c in ws.contacts.list("checkin") if c["status"] == "sent"}
    rng = np.random.default_rng(3)
    later = [(c, T0 + 20 * DAY, "page_view") for c in customers if rng.random() >= (0.1 if c in sent else 0.6)]
    events(ws, tmp_path, "later.csv", [*later, ("zz-end", T0 + 60 * DAY, "page_view")])
    return ws


def test_the_holdout_is_shown_in_impact_on_the_touchpoint_page_and_over_the_api(tmp_path: Path, cli: Any) -> None:
    from fastapi.testclient import TestClient

    from tests.test_cases import session
    from touchlens.web.app import create_app

    hook = Receiver()
    ws = measured_shop(tmp_path, hook)
    [change] = ws.changes("checkin_call")  # the rule's first run recorded it
    assert (change["date"], change["note"]) == (T0.date(), "proactive rule checkin started")
    [holdout] = ws.impact(change["id"])["holdout"]
    [churn] = holdout["effects"]
    assert holdout["contacted"] + holdout["held_out"] == 300
    assert churn["high"] < 0  # the planted 50 points fewer churned, surely
    printed = cli("-w", ws.root, "analyze", "impact", str(change["id"])).out
    assert "Proactive rule Check-in <call>" in printed
    assert "points less churn when contacted (randomised" in printed
    with TestClient(create_app(ws.root), follow_redirects=False) as client:
        session(client, ws, "vi", "viewer")
        assert client.get("/api/proactive/checkin/effect").json() == holdout
        assert client.get("/api/proactive/nothing/effect").status_code == 404
        assert client.get("/api/proactive/queue").status_code == 403  # customers' ids: editors only
        page = client.get("/touchpoints/checkin_call").text
        assert "Proactive rule Check-in &lt;call&gt;: contacted against the holdout" in page
        assert churn["verdict"] in page
    hook.server.shutdown()


def test_a_tool_with_a_token_fetches_and_confirms_the_queue_over_the_api(tmp_path: Path) -> None:
    from fastapi.testclient import TestClient

    from touchlens.web.app import create_app

    ws = queued_shop(tmp_path, ["ann", "bob"])
    ws.contacts.run(T0 + 4 * DAY)
    from touchlens.store import users

    users.add_user(ws.meta_engine(), "tool", "a-long-password-1", "editor")
    token = users.add_token(ws.meta_engine(), "tool", ("read", "write"))  # the messaging tool's API token
    with TestClient(create_app(ws.root), follow_redirects=False) as client:
        client.headers["Authorization"] = f"Bearer {token}"
        queue = client.get("/api/proactive/queue?rule=checkin").json()
        assert [q["customer_id"] for q in queue] == ["ann", "bob"]
        body = {"contacts": [{"contact_id": queue[0]["contact_id"], "sent_at": "2026-03-06T10:00:00Z"}]}
        assert client.post("/api/proactive/confirm", json=body).json() == {"confirmed": 1, "already": 0}
        assert client.post("/api/proactive/confirm", json={"contacts": [{"contact_id": 999}]}).status_code == 422
        assert [q["customer_id"] for q in client.get("/api/proactive/queue").json()] == ["bob"]
        [latest, *_] = client.get("/api/ingest/history").json()["ingests"]  # stored through the server's one writer
        assert (latest["source"], latest["accepted"]) == ("proactive", 1)
    assert [c["status"] for c in ws.contacts.list("checkin")] == ["sent", "queued"]


# -- a live stream through /v1 ----------------------------------------------------------------------------------


@pytest.mark.slow  # a server started and fed live events
def test_a_rule_runs_in_the_server_over_live_events(tmp_path: Path) -> None:
    """`touchlens serve` runs the rule every [proactive] check_seconds over events arriving through /v1: each due
    contact is handed to the webhook once, a second order inside the cap's window gets none, a complaint before
    the due time cancels, the holdout is withheld, and the contacts come back as the touchpoint's events."""
    import time

    from fastapi.testclient import TestClient

    from tests.test_cases import session
    from touchlens.store import contacts as contact_store
    from touchlens.store import keys
    from touchlens.web.app import create_app

    hook = Receiver()
    ws = shop(tmp_path, hook.url, {**RULE, "wait": "2s", "holdout": 0.3}, cap={"max": 1, "per": "1d"})
    write(ws.root / "touchlens.toml", f'[proactive]\nwebhook = "{hook.url}"\ncheck_seconds = 0.3\n')
    _, key = keys.add_key(ws.meta_engine(), "ingest", "tests", "live", "tests")
    customers = [f"live-{i:02d}" for i in range(40)]
    with TestClient(create_app(ws.root)) as client:
        session(client, ws, "vi", "viewer")
        started = time.monotonic()
        while contact_store.started_at(ws.meta_engine(), "checkin") is None and time.monotonic() - started < 20:
            time.sleep(0.1)  # the server's first run starts the rule: what was due before is history
        now = datetime.now(UTC)

        def track(customer: str, event: str, ago: float) -> dict[str, Any]:
            at = (now - timedelta(seconds=ago)).isoformat()
            return {"type": "track", "userId": customer, "event": event, "timestamp": at,
                    "messageId": f"{customer}-{event}-{ago}"}  # fmt: skip

        batch = [track(c, "order_placed", 0.5) for c in customers]
        batch += [track(c, "order_placed", 0.4) for c in customers[:10]]  # a second order: the cap allows one
        batch += [track(c, "complaint", 0.3) for c in customers[30:35]]  # before the contact: cancels it
        sent = client.post("/v1/batch", json={"batch": batch}, headers={"Authorization": f"Bearer {key}"})
        assert sent.status_code == 200
        held = {c for c in customers if in_holdout("checkin", c, 0.3)}
        expected = set(customers) - held - set(customers[30:35])
        while time.monotonic() - started < 60 and len(hook.bodies) < len(expected):
            time.sleep(0.2)
        time.sleep(1.5)  # and nothing more after it: five more runs
        stored = [r for r in client.get("/api/ingest/history").json()["ingests"] if r["source"] == "proactive"]
    assert sorted(b["customer_id"] for b in hook.bodies) == sorted(expected)  # each once
    assert sum(r["accepted"] for r in stored) == len(expected)
    statuses = [c["status"] for c in ws.contacts.list("checkin")]
    assert (statuses.count("sent"), statuses.count("held_out")) == (len(expected), len(held - set(customers[30:35])))
    hook.server.shutdown()
