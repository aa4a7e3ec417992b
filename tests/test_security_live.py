"""Issue 16, finding 2: one write key cannot monopolise the single live writer. Invalid messages are quarantined
in one statement per commit, and each key is limited in requests per second and invalid messages per minute."""

from __future__ import annotations

import asyncio
import base64
import json
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import duckdb
import pytest
from fastapi.testclient import TestClient

import touchlens
from benchmarks.liveclient import Connection, Server, invalid_batch_body
from tests.conftest import EXAMPLES
from tests.fakes import Clock
from touchlens.ingest.live import Allowance, LiveWriter, OverLimit, prepare
from touchlens.store import keys as key_store
from touchlens.store.users import add_user
from touchlens.web import collect
from touchlens.web.app import create_app
from touchlens.web.keylimits import KeyLimits

FLOOD = 10_000


def _workspace(root: Path, rate: float = 100, rejected: int = 1000, events: int = 10_000) -> tuple[str, str]:
    """A workspace with two write keys of different senders, and the live limits given."""
    ws = touchlens.init(root)
    ws.import_map(EXAMPLES / "outdoor_retail.yaml")
    settings = root / "touchlens.toml"
    text = settings.read_text().replace("requests_per_second = 100", f"requests_per_second = {rate}")
    text = text.replace("events_per_second = 10000", f"events_per_second = {events}")
    settings.write_text(text.replace("rejected_per_minute = 1000", f"rejected_per_minute = {rejected}"))
    _, attacker = key_store.add_key(ws.meta_engine(), "ingest", "leaked", "flood", "test")
    _, other = key_store.add_key(ws.meta_engine(), "ingest", "app", "app", "test")
    return attacker, other


def _track(customer: str = "c1") -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": str(uuid.uuid4()),
        "userId": customer,
        "event": "product_viewed",
        "timestamp": "2026-11-01T10:00:00Z",
    }


def _auth(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(collect, "_limits", KeyLimits(clock=fake))
    return fake


async def _flood_and_others(port: int, attacker: str, other: str) -> tuple[tuple[int, Any], list[float], list[str]]:
    """The flood from one key; meanwhile, every 0.25 s for 1.5 s, one valid event from another key. Returns the
    flood's answer, each event's seconds from send to answer, and the ids of the events answered 200."""
    flood = asyncio.create_task(Connection(port, attacker).post("/v1/batch", invalid_batch_body(FLOOD), timeout=120))
    latencies, ids = [], []
    conn = Connection(port, other)
    for _ in range(6):
        await asyncio.sleep(0.25)
        event = _track("c-other")
        started = time.perf_counter()
        status, answer = await conn.post("/v1/batch", json.dumps({"batch": [event]}).encode(), timeout=120)
        latencies.append(time.perf_counter() - started)
        if status == 200 and answer["accepted"] == 1:
            ids.append(event["messageId"])
    conn.close()
    return await flood, latencies, ids


@pytest.mark.slow
def test_regression_invalid_flood_does_not_stall_other_keys(tmp_path: Path) -> None:
    # The limit is high enough that the flood is processed, not refused: what is tested is the writer's time.
    root = tmp_path / "ws"
    attacker, other = _workspace(root, rejected=1_000_000)
    add_user(touchlens.open(root).meta_engine(), "admin", "a-long-password-here", "admin")
    server = Server(root)
    server.start()
    try:
        (status, answer), latencies, ids = asyncio.run(_flood_and_others(server.port, attacker, other))
    finally:
        server.stop()
    assert status == 200, answer
    assert len(answer["rejected"]) == FLOOD
    assert answer["accepted"] == 0
    assert max(latencies) < 2.0, latencies  # a statement per message once made this 43 s
    assert len(ids) == 6
    con = duckdb.connect(str(root / "events.duckdb"), read_only=True)
    stored = con.execute("SELECT event_id, count(*) FROM events WHERE source = 'app' GROUP BY 1").fetchall()
    quarantined = con.execute("SELECT count(*), count(DISTINCT \"row\") FROM quarantine WHERE source = 'flood'")
    assert quarantined.fetchall() == [(FLOOD, FLOOD)]
    con.close()
    assert sorted(stored) == sorted((i, 1) for i in ids)


@pytest.fixture
def site(tmp_path: Path, clock: Clock) -> Iterator[tuple[TestClient, str, str]]:
    root = tmp_path / "ws"
    attacker, other = _workspace(root, rate=2, rejected=5)
    with TestClient(create_app(root)) as client:
        yield client, attacker, other


def _send(client: TestClient, key: str, messages: list[Any]) -> Any:
    return client.post("/v1/batch", json={"batch": messages}, headers=_auth(key))


def test_regression_a_key_over_its_request_rate_gets_429_and_other_keys_do_not(
    site: tuple[TestClient, str, str], clock: Clock
) -> None:
    client, attacker, other = site
    # Two requests a second, bursts of four.
    assert [_send(client, attacker, [_track()]).status_code for _ in range(4)] == [200] * 4
    limited = _send(client, attacker, [_track("c-lost")])
    assert limited.status_code == 429
    assert limited.headers["Retry-After"] == "1"
    assert limited.json()["success"] is False
    assert "limit" in limited.json()["detail"]
    assert _send(client, other, [_track("c-other")]).status_code == 200
    clock.now += 0.5  # one request's worth of tokens
    assert _send(client, attacker, [_track()]).status_code == 200
    assert _send(client, attacker, [_track()]).status_code == 429
    clock.now += 10
    assert [_send(client, attacker, [_track()]).status_code for _ in range(4)] == [200] * 4
    with client.app.state.web.ws.events() as con:  # type: ignore[attr-defined]
        assert con.execute("SELECT count(*) FROM events WHERE customer_id = 'c-lost'").fetchall() == [(0,)]


def test_regression_a_key_over_its_message_rate_gets_429_and_other_keys_do_not(tmp_path: Path, clock: Clock) -> None:
    """The red team's finding: valid junk at 38,000 events a second from one public key made another key's
    events wait over 2 s; only requests and invalid messages were counted."""
    attacker, other = _workspace(tmp_path / "ws", events=10)  # ten a second, a bucket of twenty
    with TestClient(create_app(tmp_path / "ws")) as client:
        assert _send(client, attacker, [_track("c-junk") for _ in range(25)]).status_code == 200  # overdrawn once
        limited = _send(client, attacker, [_track("c-lost")])
        assert limited.status_code == 429
        assert limited.headers["Retry-After"] == "1"  # five owed, and one to send: 0.6 s, in whole seconds
        assert _send(client, other, [_track("c-other") for _ in range(15)]).status_code == 200
        clock.now += 1  # ten repaid: five in hand
        assert _send(client, attacker, [_track()]).status_code == 200
        with client.app.state.web.ws.events() as con:  # type: ignore[attr-defined]
            counts = dict(con.execute("SELECT customer_id, count(*) FROM events GROUP BY 1").fetchall())
    assert (counts["c-junk"], counts.get("c-lost", 0), counts["c-other"]) == (25, 0, 15)


def test_regression_a_key_over_its_rejected_limit_gets_429_until_the_minute_has_passed(
    site: tuple[TestClient, str, str], clock: Clock
) -> None:
    client, attacker, other = site
    bad = {"type": "track", "event": "no customer"}
    first = _send(client, attacker, [bad] * 3 + [_track()])
    assert first.status_code == 200
    assert len(first.json()["rejected"]) == 3
    clock.now += 1
    # Crossing the limit of 5: the valid message is stored, two bad ones quarantined, the other two refused.
    crossing = _send(client, attacker, [_track(), *[bad] * 4])
    assert crossing.status_code == 429
    assert int(crossing.headers["Retry-After"]) == 59
    body = crossing.json()
    assert (body["accepted"], [r["index"] for r in body["rejected"]], body["refused"]) == (1, [2, 3], 2)
    clock.now += 30
    later = _send(client, attacker, [_track("c-later")])
    assert later.status_code == 429
    assert later.headers["Retry-After"] == "29"
    assert _send(client, other, [_track("c-other"), bad]).status_code == 200
    clock.now += 30
    assert _send(client, attacker, [_track("c-later")]).json()["accepted"] == 1
    with client.app.state.web.ws.events() as con:  # type: ignore[attr-defined]
        counts = con.execute("SELECT source, count(*) FROM quarantine GROUP BY 1 ORDER BY 1").fetchall()
        assert counts == [("app", 1), ("flood", 5)]
        assert con.execute("SELECT count(*) FROM events WHERE source = 'flood'").fetchall() == [(3,)]


def test_key_limits_hold_a_bounded_number_of_keys() -> None:
    clock = Clock()
    limits = KeyLimits(clock=clock, max_keys=3)
    for key in ("a", "b", "c", "d"):
        assert limits.admit(key, 1, 10) is None
    assert limits.admit("b", 1, 10) is None  # b used last: a (least recently used) was dropped, not b
    assert limits.admit("a", 1, 10) is None  # a new entry with a full bucket
    assert limits.admit("b", 1, 10) == 1  # b's bucket (burst 2) is empty: it kept its count


def test_the_same_request_twice_in_one_commit_is_quarantined_once(tmp_path: Path) -> None:
    ws = touchlens.init(tmp_path / "ws")
    body = invalid_batch_body(20)
    messages = json.loads(body)["batch"]
    with ws.events() as con:
        writer = LiveWriter(con, ws.map_version, ws.map_or_empty)
        twice = [prepare("live", body, messages, 32 * 1024) for _ in range(2)]
        writer._commit(twice)  # one group, as when a client retries while the first is still queued
        rows = con.execute('SELECT count(*), count(DISTINCT "row"), min(raw) FROM quarantine').fetchall()
    assert rows == [(20, 20, '{"type": "track", "event": "e0"}')]
    assert [len(s.future.result().rejected) for s in twice] == [20, 20]


def test_regression_a_burst_of_floods_queued_before_the_limit_is_refused_unstaged(tmp_path: Path) -> None:
    # Floods queued before the first was counted: the one that crosses is quarantined up to the limit, the
    # others are refused whole before the writer stages them.
    ws = touchlens.init(tmp_path / "ws")
    limits = KeyLimits(clock=Clock())
    allowance = Allowance(
        take=lambda n: limits.allow_rejected("k", n, 50), blocked=lambda: limits.rejected_wait("k", 50) is not None
    )
    bodies = [invalid_batch_body(100).replace(b'"e', f'"b{n}e'.encode()) for n in range(5)]
    burst = [prepare("flood", b, json.loads(b)["batch"], 32 * 1024, allowance) for b in bodies]
    with ws.events() as con:
        writer = LiveWriter(con, ws.map_version, ws.map_or_empty)
        writer._commit(burst[:1])
        writer._commit(burst[1:])
        assert con.execute("SELECT count(*) FROM quarantine").fetchall() == [(50,)]
    first = burst[0].future.result()
    assert (len(first.rejected), first.refused) == (50, 50)
    for later in burst[1:]:
        with pytest.raises(OverLimit):
            later.future.result()
