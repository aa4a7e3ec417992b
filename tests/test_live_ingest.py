"""The live ingestion endpoint: Segment's message shapes in, write keys only, limits, dedupe, quarantine."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

import touchlens
from tests.conftest import EXAMPLES
from touchlens.store import keys as key_store
from touchlens.store import users as user_store
from touchlens.web.app import create_app

SALT = "a-long-random-secret-for-tests"


@pytest.fixture
def site(tmp_path: Path) -> Iterator[tuple[TestClient, str, Path]]:
    root = tmp_path / "ws"
    ws = touchlens.init(root)
    ws.import_map(EXAMPLES / "outdoor_retail.yaml")
    _, key = key_store.add_key(ws.meta_engine(), "ingest", "test", "segment-live", "test")
    with TestClient(create_app(root)) as client:
        yield client, key, root


def track(customer: str = "c1", event: str = "product_viewed", **extra: Any) -> dict[str, Any]:
    return {
        "type": "track",
        "messageId": str(uuid.uuid4()),
        "userId": customer,
        "event": event,
        "timestamp": "2026-11-01T10:00:00Z",
        "properties": {"sku": "tent-1"},
        **extra,
    }


def basic(key: str) -> dict[str, str]:
    return {"Authorization": "Basic " + base64.b64encode(f"{key}:".encode()).decode()}


def stored(client: TestClient, sql: str) -> list[tuple[Any, ...]]:
    """What the store holds, read through the app's own connection (one process holds one)."""
    with client.app.state.web.ws.events() as con:  # type: ignore[attr-defined]
        return con.execute(sql).fetchall()


def test_a_batch_is_stored_once_however_often_it_is_sent(tmp_path: Path) -> None:
    root = tmp_path / "ws"
    ws = touchlens.init(root)
    ws.import_map(EXAMPLES / "outdoor_retail.yaml")
    _, key = key_store.add_key(ws.meta_engine(), "ingest", "t", "segment-live", "t")
    messages = [track(f"c{i % 7}") for i in range(50)]
    with TestClient(create_app(root)) as client:
        first = client.post("/v1/batch", json={"batch": messages}, headers=basic(key))
        again = client.post("/v1/batch", json={"batch": messages}, headers={"Authorization": f"Bearer {key}"})
    assert first.status_code == again.status_code == 200
    assert (first.json()["accepted"], first.json()["duplicates"]) == (50, 0)
    assert (again.json()["accepted"], again.json()["duplicates"]) == (0, 50)
    rows = stored(client, "SELECT event_id, count(*) FROM events WHERE source = 'segment-live' GROUP BY 1")
    assert sorted(r[0] for r in rows) == sorted(m["messageId"] for m in messages)
    assert all(n == 1 for _, n in rows)
    customers = stored(client, "SELECT count(*) FROM customers WHERE first_seen IS NOT NULL")
    assert customers == [(7,)]


def test_bad_messages_are_quarantined_and_the_good_ones_kept(site: tuple[TestClient, str, Path]) -> None:
    client, key, _root = site
    good = track("c1")
    messages = [good, {**track("c2"), "timestamp": "not a time"}, "not an object", {**track(), "type": "alias"}]
    answer = client.post("/v1/batch", json={"batch": messages}, headers=basic(key))
    assert answer.status_code == 200
    body = answer.json()
    assert body["accepted"] == 1
    assert [(r["index"], r["reason"]) for r in body["rejected"]] == [
        (2, "unparseable timestamp"),
        (3, "not a JSON object"),
        (4, "unsupported message type 'alias'"),
    ]
    assert body["rejected"][0]["messageId"] == messages[1]["messageId"]
    # The same request again: its bad messages are not quarantined twice.
    client.post("/v1/batch", json={"batch": messages}, headers=basic(key))
    assert stored(client, "SELECT count(*) FROM quarantine") == [(3,)]


def test_single_message_endpoints_take_segment_shapes(site: tuple[TestClient, str, Path]) -> None:
    client, key, _root = site
    page = {"messageId": "p1", "anonymousId": "anon-1", "name": "Home", "timestamp": "2026-11-01T10:00:00Z"}
    ident = {"messageId": "i1", "userId": "c9", "traits": {"plan": "gold"}, "timestamp": "2026-11-01T10:00:00Z"}
    one = {k: v for k, v in track("c9").items() if k != "type"}
    for path, body in (("/v1/page", page), ("/v1/identify", ident), ("/v1/track", one)):
        answer = client.post(path, json=body, headers=basic(key))
        assert answer.status_code == 200, answer.text
        assert answer.json()["accepted"] == 1
    assert stored(client, "SELECT event FROM events ORDER BY event") == [("page_viewed",), ("product_viewed",)]
    assert stored(client, "SELECT attributes->>'plan' FROM customers WHERE customer_id = 'c9'") == [("gold",)]


def test_limits_answer_400_with_the_reason_and_store_nothing(site: tuple[TestClient, str, Path]) -> None:
    client, key, _root = site
    huge = track("c1", properties={"blob": "x" * 33_000})
    answer = client.post("/v1/batch", json={"batch": [huge, track("c2")]}, headers=basic(key))
    assert answer.status_code == 200
    assert answer.json()["rejected"][0]["reason"] == "message larger than 32 KB"
    assert answer.json()["accepted"] == 1
    too_big = {"batch": [track(f"c{i}", properties={"pad": "y" * 20_000}) for i in range(30)]}
    answer = client.post("/v1/batch", json=too_big, headers=basic(key))
    assert answer.status_code == 400
    assert "500 KB" in answer.json()["detail"]
    for body in (b"{not json", b'{"no": "batch"}', b"[1, 2]"):
        answer = client.post("/v1/batch", content=body, headers={**basic(key), "Content-Type": "application/json"})
        assert answer.status_code == 400, body
        assert answer.json()["success"] is False
    assert stored(client, "SELECT count(*) FROM events") == [(1,)]


def test_only_a_write_key_may_send(site: tuple[TestClient, str, Path]) -> None:
    client, key, root = site
    ws = touchlens.open(root)
    user_store.add_user(ws.meta_engine(), "ann", "correct horse", "admin")
    token = user_store.add_token(ws.meta_engine(), "ann", ("read", "write"))
    body = {"batch": [track()]}
    for headers in ({}, {"Authorization": f"Bearer {token}"}, basic("tlw_wrong"), {"Authorization": "Basic %%%"}):
        answer = client.post("/v1/batch", json=body, headers=headers)
        assert answer.status_code == 401
    key_id = key_store.list_keys(ws.meta_engine())[0].id
    key_store.revoke_key(ws.meta_engine(), key_id)
    fresh = TestClient(create_app(root))  # a new app: no key remembered from before the revocation
    assert fresh.post("/v1/batch", json=body, headers=basic(key)).status_code == 401
    # The key reads nothing.
    for path in ("/api/touchpoints", "/api/scorecard", "/api/me", "/"):
        assert client.get(path, headers={"Authorization": f"Bearer {key}"}, follow_redirects=False).status_code in (
            401,
            303,
            403,
        )


def test_pseudonymised_ids_are_the_salted_hmac_and_forget_finds_them(tmp_path: Path, cli) -> None:
    root = tmp_path / "ws"
    ws = touchlens.init(root)
    settings = root / "touchlens.toml"
    settings.write_text(
        settings.read_text()
        .replace("pseudonymise = false", "pseudonymise = true")
        .replace('salt = ""', f'salt = "{SALT}"')
    )
    ws = touchlens.open(root)
    _, key = key_store.add_key(ws.meta_engine(), "ingest", "t", "live", "t")
    with TestClient(create_app(root)) as client:
        answer = client.post(
            "/v1/batch", json={"batch": [track("alice@example.com"), track("bob")]}, headers=basic(key)
        )
        assert answer.json()["accepted"] == 2
    expected = hmac.new(SALT.encode(), b"alice@example.com", hashlib.sha256).hexdigest()
    ids = {r[0] for r in stored(client, "SELECT customer_id FROM events")}
    assert expected in ids
    assert "alice@example.com" not in ids
    result = cli("-w", root, "forget", "alice@example.com", "--json")
    assert result.code == 0, result.err
    assert json.loads(result.out)[0]["rows"]["events"] == 1
    assert stored(client, "SELECT count(*) FROM events") == [(1,)]


def test_dedupe_looks_back_seven_days_of_received_events(site: tuple[TestClient, str, Path]) -> None:
    client, key, _ = site
    old, recent = track("c1"), track("c2")
    for message in (old, recent):
        assert client.post("/v1/batch", json={"batch": [message]}, headers=basic(key)).json()["accepted"] == 1
    with client.app.state.web.ws.events() as con:  # type: ignore[attr-defined]
        con.execute(
            "UPDATE events SET received_at = received_at - INTERVAL 8 DAY WHERE event_id = ?", [old["messageId"]]
        )
    again = client.post("/v1/batch", json={"batch": [old, recent]}, headers=basic(key)).json()
    assert (again["accepted"], again["duplicates"]) == (1, 1)


def test_first_and_last_seen_follow_each_commit_as_a_recompute_from_the_events_would(
    site: tuple[TestClient, str, Path],
) -> None:
    # Kept up from each batch's stored events (no scan of the store): late events, repeats, an identify call and
    # a suppressed-free mix must leave what a recompute from all events gives; identify alone is no stored event.
    client, key, _root = site
    batches = [
        [track("ann", timestamp="2026-11-05T10:00:00Z"), track("bob", timestamp="2026-11-03T08:00:00Z")],
        [track("ann", timestamp="2026-11-01T09:00:00Z"), track("ann", timestamp="2026-11-09T12:00:00Z")],  # late
        [{"type": "identify", "messageId": "i1", "userId": "cy", "timestamp": "2026-10-01T00:00:00Z",
          "traits": {"plan": "pro"}},
         {"type": "identify", "messageId": "i2", "userId": "bob", "timestamp": "2026-12-01T00:00:00Z",
          "traits": {"plan": "free"}}],
    ]  # fmt: skip
    batches.append(batches[1])  # sent again: duplicates change nothing
    for batch in batches:
        assert client.post("/v1/batch", json={"batch": batch}, headers=basic(key)).status_code == 200
    seen = stored(client, "SELECT customer_id, first_seen, last_seen FROM customers ORDER BY 1")
    recomputed = stored(client, "SELECT customer_id, min(ts), max(ts) FROM events GROUP BY 1 ORDER BY 1")
    assert [r for r in seen if r[0] != "cy"] == recomputed
    assert [r[0] for r in recomputed] == ["ann", "bob"]
    assert recomputed[0][1].isoformat().startswith("2026-11-01T09:00")
    assert ("cy", None, None) in seen
    assert stored(client, "SELECT attributes FROM customers WHERE customer_id = 'bob'") == [('{"plan":"free"}',)]


def test_a_customer_known_only_from_identify_in_an_older_store_takes_its_first_event_as_first_seen(
    tmp_path: Path,
) -> None:
    # A store from before the change gave such a customer the identify's time; the writer's start clears it.
    root = tmp_path / "ws"
    ws = touchlens.init(root)
    ws.import_map(EXAMPLES / "outdoor_retail.yaml")
    _, key = key_store.add_key(ws.meta_engine(), "ingest", "t", "segment-live", "t")
    with ws.events() as con:
        con.execute(
            "INSERT INTO customers (customer_id, attributes, first_seen, last_seen) "
            "VALUES ('old', '{}', TIMESTAMPTZ '2026-01-01 00:00:00+00', TIMESTAMPTZ '2026-01-01 00:00:00+00')"
        )
    with TestClient(create_app(root)) as client:
        batch = [track("old", timestamp="2026-11-08T10:00:00Z")]
        assert client.post("/v1/batch", json={"batch": batch}, headers=basic(key)).status_code == 200
        seen = stored(client, "SELECT first_seen, last_seen FROM customers WHERE customer_id = 'old'")
    assert seen == stored(client, "SELECT min(ts), max(ts) FROM events WHERE customer_id = 'old'")
    assert seen[0][0].isoformat().startswith("2026-11-08T10:00")
