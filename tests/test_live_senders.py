"""The official senders, unchanged, pointed at /v1 as docs/live.md invites: Segment's Python library (plain JSON)
and RudderStack's (gzip bodies by default). Each event they send is stored once, and an error reaches them in
the shape they read (`code`, `message`), not as a `KeyError` in their log."""

from __future__ import annotations

import gzip
import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn
from rudderstack.analytics.client import Client as RudderClient
from rudderstack.analytics.request import APIError as RudderError
from segment.analytics.client import Client as SegmentClient
from segment.analytics.request import APIError as SegmentError

import touchlens
from tests.conftest import EXAMPLES
from touchlens.store import keys as key_store
from touchlens.web.app import create_app

pytestmark = pytest.mark.slow  # a real server on a port, as the libraries need


class Served:
    def __init__(self, url: str, key: str, app: Any) -> None:
        self.url, self.key, self.app = url, key, app

    def events(self) -> list[tuple[Any, ...]]:
        with self.app.state.web.ws.events() as con:
            return con.execute("SELECT customer_id, event, source FROM events ORDER BY customer_id").fetchall()


@pytest.fixture
def served(tmp_path: Path) -> Iterator[Served]:
    root = tmp_path / "ws"
    ws = touchlens.init(root)
    ws.import_map(EXAMPLES / "outdoor_retail.yaml")
    _, key = key_store.add_key(ws.meta_engine(), "ingest", "test", "app", "test")
    app = create_app(root)
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=0, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.02)
    port = server.servers[0].sockets[0].getsockname()[1]
    yield Served(f"http://127.0.0.1:{port}", key, app)
    server.should_exit = True
    thread.join(10)


def test_segments_library_stores_each_event_once(served: Served) -> None:
    client = SegmentClient(served.key, host=served.url, sync_mode=True, max_retries=0)
    client.track("ann", "product_viewed", {"sku": "tent-1"})
    client.track("bob", "product_viewed", {"sku": "tent-2"}, message_id="m-bob")
    client.track("bob", "product_viewed", {"sku": "tent-2"}, message_id="m-bob")  # a retry: stored once
    assert served.events() == [("ann", "product_viewed", "app"), ("bob", "product_viewed", "app")]


def test_rudderstacks_library_sends_gzip_and_each_event_is_stored_once(served: Served) -> None:
    client = RudderClient(served.key, host=served.url, sync_mode=True, max_retries=0)
    assert client.gzip  # its default: the bodies that were refused before
    client.track("cy", "product_viewed", {"sku": "tent-3"}, message_id="m-cy")
    client.track("cy", "product_viewed", {"sku": "tent-3"}, message_id="m-cy")
    assert served.events() == [("cy", "product_viewed", "app")]


@pytest.mark.parametrize(("client_class", "error"), [(SegmentClient, SegmentError), (RudderClient, RudderError)])
def test_a_refusal_reaches_the_library_with_its_code_and_reason(served: Served, client_class: Any, error: Any) -> None:
    client = client_class("tlw_not_a_key", host=served.url, sync_mode=True, max_retries=0)
    with pytest.raises(error) as refused:
        client.track("ann", "product_viewed")
    assert refused.value.status == 401
    assert refused.value.code == "unauthorized"
    assert "write key" in refused.value.message
    assert served.events() == []


def _post(served: Served, body: bytes, encoding: str) -> httpx.Response:
    headers = {"Content-Encoding": encoding, "Content-Type": "application/json"}
    return httpx.post(f"{served.url}/v1/batch", content=body, headers=headers, auth=(served.key, ""))


def test_gzip_is_bounded_by_the_decompressed_size_and_other_encodings_are_refused(served: Served) -> None:
    # 600 KB of one repeated byte compresses to under 1 KB: the limit (500 KB) is the inflated size's.
    bomb = gzip.compress(b'{"batch": [' + b" " * 600_000 + b"]}")
    assert len(bomb) < 2_000
    answer = _post(served, bomb, "gzip")
    assert (answer.status_code, answer.json()["code"]) == (400, "too_large")
    assert "500 KB" in answer.json()["message"]
    broken = _post(served, b"not gzip at all", "gzip")
    assert (broken.status_code, broken.json()["code"]) == (400, "invalid_gzip")
    truncated = _post(served, gzip.compress(json.dumps({"batch": []}).encode())[:-6], "gzip")
    assert truncated.json()["code"] == "invalid_gzip"
    brotli = _post(served, b"...", "br")
    assert (brotli.status_code, brotli.json()["code"]) == (415, "unsupported_encoding")
    assert served.events() == []
