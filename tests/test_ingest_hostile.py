"""Awkward and hostile input: each becomes rows or quarantine entries with a reason, never a crash."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

import touchlens
from tests.conftest import write

MAP = """\
name: X
touchpoints:
  - {key: cafe, match: {event: visit, where: {"catégorie": café}}}
  - {key: cheap, match: {event: buy, where: {price: 1.0}}}
  - {key: web, match: {event: e, channel: web}}
"""


def _ws(cli: Any, tmp_path: Path) -> Path:
    ws = tmp_path / "ws"
    cli("init", ws)
    cli("-w", ws, "map", "import", write(tmp_path / "m.yaml", MAP))
    return ws


def _ingest(cli: Any, ws: Path, *args: str | Path) -> dict[str, Any]:
    result = cli("-w", ws, "ingest", *args, "--json")
    assert result.code == 0, result.err
    return json.loads(result.out)


def test_text_that_is_not_clean_utf8_still_lands(cli, tmp_path: Path) -> None:
    ws = _ws(cli, tmp_path)
    lone_surrogate = '{"customer_id": "a", "ts": "2024-01-01", "event": "e\\ud800x"}\n'
    jsonl = write(tmp_path / "e.jsonl", lone_surrogate + '{"customer_id": "b", "ts": "2024-01-01", "event": "f"}\n')
    assert _ingest(cli, ws, "events", jsonl)["accepted"] == 2
    latin1 = tmp_path / "e.csv"
    latin1.write_bytes(b"\xef\xbb\xbfcustomer_id,ts,event,note\nc1,2024-01-01,e,caf\xe9\nc2,2024-01-01,e,ok\n")
    assert _ingest(cli, ws, "events", latin1)["accepted"] == 2  # a BOM, then one Latin-1 byte


def test_rules_see_the_same_values_from_every_format_and_after_remap(cli, tmp_path: Path) -> None:
    ws = _ws(cli, tmp_path)
    csv_path = write(tmp_path / "e.csv", "customer_id,ts,event,catégorie\nc1,2024-01-01,visit,café\n")
    jsonl = write(
        tmp_path / "e.jsonl",
        json.dumps({"customer_id": "c2", "ts": "2024-01-01", "event": "visit", "catégorie": "café"}) + "\n",
    )
    parquet = tmp_path / "e.parquet"
    pq.write_table(pa.table({"customer_id": ["c3"], "ts": ["2024-01-01"], "event": ["buy"], "price": [1.0]}), parquet)
    assert _ingest(cli, ws, "events", csv_path)["by_touchpoint"] == {"cafe": 1}
    assert _ingest(cli, ws, "events", jsonl)["by_touchpoint"] == {"cafe": 1}
    assert _ingest(cli, ws, "events", parquet)["by_touchpoint"] == {"cheap": 1}
    remapped = json.loads(cli("-w", ws, "remap", "--json").out)
    assert remapped == {"by_touchpoint": {"cafe": 2, "cheap": 1}, "unmapped": 0}


def test_fingerprints_keep_different_rows_apart(cli, tmp_path: Path) -> None:
    ws = _ws(cli, tmp_path)
    rows = [
        {"customer_id": "a", "ts": "2024-01-01", "event": "e", "channel": "web"},
        {"customer_id": "a", "ts": "2024-01-01", "event": "e|web"},
    ]
    path = write(tmp_path / "e.jsonl", "".join(json.dumps(r) + "\n" for r in rows))
    assert _ingest(cli, ws, "events", path)["accepted"] == 2
    feedback = write(
        tmp_path / "f.csv",
        "customer_id,ts,metric,score,touchpoint\nc1,2024-01-01T10:00:00Z,csat,5,cafe\nc1,2024-01-01T10:00:00Z,csat,5,web\n",
    )
    assert _ingest(cli, ws, "feedback", feedback)["accepted"] == 2


def test_awkward_headers_and_batched_bad_messages(cli, tmp_path: Path) -> None:
    ws = _ws(cli, tmp_path)
    path = write(tmp_path / "e.csv", "customer_id,ts,event,x,x,\nc1,2024-01-01,e,1,2,3\n")
    assert _ingest(cli, ws, "events", path)["accepted"] == 1
    with touchlens.open(ws).events(read_only=True) as con:
        props = json.loads(con.execute("SELECT properties FROM events").fetchone()[0])
    assert props == {"x": "1", "x_2": "2", "column_6": "3"}
    good = [
        {"type": "track", "messageId": f"g{i}", "userId": "u", "event": "e", "timestamp": "2024-01-01"}
        for i in range(3)
    ]
    bad = [{"type": "track", "messageId": f"b{i}", "event": "e", "timestamp": "2024-01-01"} for i in range(3)]
    batch = write(tmp_path / "batch.json", json.dumps({"batch": good + bad}))
    report = _ingest(cli, ws, "events", batch, "--format", "segment")
    assert (report["accepted"], report["quarantined"]) == (3, 3)
    with touchlens.open(ws).events(read_only=True) as con:
        assert con.execute("SELECT count(*) FROM quarantine WHERE reason = 'no customer id'").fetchone() == (3,)


def test_customer_attributes_stay_text_and_bad_rows_are_quarantined(cli, tmp_path: Path) -> None:
    ws = _ws(cli, tmp_path)
    path = write(tmp_path / "c.csv", "customer_id,zip,vip\nc1,02134,true\nc2,1,2,3\n")
    counts = json.loads(cli("-w", ws, "ingest", "customers", path, "--json").out)
    assert (counts["read"], counts["updated"], counts["quarantined"]) == (2, 1, 1)
    with touchlens.open(ws).events(read_only=True) as con:
        attrs = json.loads(con.execute("SELECT attributes FROM customers WHERE customer_id = 'c1'").fetchone()[0])
    assert attrs == {"zip": "02134", "vip": "true"}
    only_ids = write(tmp_path / "ids.csv", "customer_id\nc9\n")
    assert json.loads(cli("-w", ws, "ingest", "customers", only_ids, "--json").out)["updated"] == 1


def test_an_unusable_memory_limit_is_a_clear_error(cli, tmp_path: Path, monkeypatch) -> None:
    ws = _ws(cli, tmp_path)
    monkeypatch.setenv("TOUCHLENS_STORE__MEMORY_LIMIT", "0GB")
    result = cli("-w", ws, "quarantine", "list")
    assert result.code == 1
    assert "store.memory_limit: '0GB' is out of range" in result.err


def test_empty_customer_cells_never_erase_known_values(cli, tmp_path: Path) -> None:
    ws = _ws(cli, tmp_path)
    cli("-w", ws, "ingest", "customers", write(tmp_path / "a.csv", "customer_id,plan,city\nc1,gold,Leeds\n"))
    cli("-w", ws, "ingest", "customers", write(tmp_path / "b.csv", "customer_id,plan,city\nc1,,York\n"))
    cli("-w", ws, "ingest", "customers", write(tmp_path / "c.csv", "customer_id\nc2\n"))
    with touchlens.open(ws).events(read_only=True) as con:
        rows = dict(con.execute("SELECT customer_id, attributes FROM customers ORDER BY 1").fetchall())
    assert json.loads(rows["c1"]) == {"plan": "gold", "city": "York"}
    assert json.loads(rows["c2"]) == {}
