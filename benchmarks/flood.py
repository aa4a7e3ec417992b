"""A flood of invalid messages against the live endpoint (issue 16): one write key sends a batch of 10,000
invalid messages (329 KB) while another key sends one valid event every 0.1 s.

Reports the flood's time from send to answer (its messages quarantined in one statement), a same-run peer (a
batch of 10,000 valid messages), the pre-issue-16 cost (10,000 quarantine inserts of a statement each, run on
a DuckDB store here: the attack measured 43 s), and the latency of the other key's events during the flood
(target: under 2 s). Settings: TOUCHLENS_BENCH_FLOOD_RUNS (3).
"""

from __future__ import annotations

import asyncio
import json
import os
import secrets
import statistics
import tempfile
import time
from collections.abc import Callable, Coroutine
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from benchmarks.common import write_results
from benchmarks.liveclient import Connection, Server, batch_body, invalid_batch_body

ROOT = Path(__file__).resolve().parent.parent
T = TypeVar("T")
SIZE = 10_000
BURST = 20  # concurrent floods from one key
# The statement each rejected message cost before issue 16.
PER_ROW_SQL = (
    "INSERT INTO quarantine SELECT ?, 'events', ?, ?, ?, ?, ?, ?, ? WHERE NOT EXISTS "
    "(SELECT 1 FROM quarantine WHERE kind = 'events' AND source = ? AND file = ? AND \"row\" = ? AND reason = ?)"
)


def _workspace(root: Path, rejected_per_minute: int) -> tuple[str, str]:
    """The flood's limit raised (so that it is processed, not refused: what is measured is the writer's time),
    or left at its default for the burst."""
    import touchlens
    from touchlens.store import keys as key_store
    from touchlens.store.users import add_user

    ws = touchlens.init(root)
    ws.import_map(ROOT / "examples" / "outdoor_retail.yaml")
    settings = root / "touchlens.toml"
    text = settings.read_text().replace("rejected_per_minute = 1000", f"rejected_per_minute = {rejected_per_minute}")
    settings.write_text(text.replace("max_batch_kb = 500", "max_batch_kb = 8192"))
    _, attacker = key_store.add_key(ws.meta_engine(), "ingest", "leaked", "flood", "benchmark")
    _, other = key_store.add_key(ws.meta_engine(), "ingest", "app", "app", "benchmark")
    add_user(ws.meta_engine(), "admin", secrets.token_urlsafe(16), "admin")  # serve needs one user
    return attacker, other


async def _timed(conn: Connection, body: bytes) -> tuple[float, dict[str, Any]]:
    started = time.perf_counter()
    status, answer = await conn.post("/v1/batch", body, timeout=300)
    if status != 200:
        raise RuntimeError(f"unexpected answer {status}: {answer}")
    return time.perf_counter() - started, answer


async def _flood(port: int, attacker: str, other: str, run: int) -> tuple[float, int, list[float]]:
    """(flood seconds, messages quarantined, latencies of the other key's events sent meanwhile)."""
    body = invalid_batch_body(SIZE).replace(b'"e', f'"r{run}e'.encode())  # a new request each run
    flood = asyncio.create_task(_timed(Connection(port, attacker), body))
    conn, latencies, seq = Connection(port, other), list[float](), 0
    while not flood.done() or not latencies:
        await asyncio.sleep(0.1)
        seconds, _ = await _timed(conn, batch_body(run, seq, 1)[0])
        latencies.append(seconds)
        seq += 1
    conn.close()
    seconds, answer = await flood
    return seconds, len(answer["rejected"]), latencies


async def _burst(port: int, attacker: str, other: str) -> tuple[list[float], list[int]]:
    """BURST floods from one key at once, at the default limits, while the other key sends every 0.1 s:
    (the other key's latencies, the floods' statuses)."""
    bodies = [invalid_batch_body(SIZE).replace(b'"e', f'"z{n}e'.encode()) for n in range(BURST)]
    floods = [asyncio.create_task(Connection(port, attacker).post("/v1/batch", b, timeout=300)) for b in bodies]
    conn, latencies, seq = Connection(port, other), list[float](), 0
    while not all(f.done() for f in floods) or not latencies:
        await asyncio.sleep(0.1)
        latencies.append((await _timed(conn, batch_body(500, seq, 1)[0]))[0])
        seq += 1
    conn.close()
    return latencies, [status for status, _ in await asyncio.gather(*floods)]


async def _measure(port: int, attacker: str, other: str, runs: int) -> dict[str, list[float]]:
    conn = Connection(port, other)
    await _timed(conn, batch_body(99, 0, 10)[0])  # warm-up: the server's first requests import lazily
    found: dict[str, list[float]] = {"flood": [], "valid": [], "latency": [], "quarantined": []}
    for run in range(runs):
        seconds, quarantined, latencies = await _flood(port, attacker, other, run)
        found["flood"].append(seconds)
        found["quarantined"].append(quarantined)
        found["latency"].extend(latencies)
        found["valid"].append((await _timed(conn, batch_body(100 + run, 0, SIZE)[0]))[0])
    conn.close()
    return found


def _per_row(root: Path) -> float:
    """Seconds for the quarantine inserts of a 10,000-message flood the way they ran before, in one transaction."""
    from touchlens.store.events import connect

    con = connect(root / "per_row.duckdb")
    now, file = datetime.now(UTC), "live:flood:0123456789abcdef"
    started = time.perf_counter()
    con.execute("BEGIN")
    for row in range(1, SIZE + 1):
        key = ["flood", file, row, "no customer id"]
        con.execute(PER_ROW_SQL, [*key[:3], "customer_id", key[3], None, json.dumps({"event": f"e{row}"}), now, *key])
    con.execute("COMMIT")
    seconds = time.perf_counter() - started
    con.close()
    return seconds


def _row(task: str, seconds: float | str, latencies: list[float] | None, messages: int) -> dict[str, Any]:
    p50 = round(statistics.median(latencies) * 1000, 1) if latencies else "-"
    worst = round(max(latencies) * 1000, 1) if latencies else "-"
    return {"task": task, "seconds": seconds, "p50 ms": p50, "max ms": worst, "messages": messages}


def _served(tmp: Path, rejected_per_minute: int, work: Callable[[int, str, str], Coroutine[Any, Any, T]]) -> T:
    """`work(port, attacker key, other key)` against `touchlens serve` on a new workspace."""
    root = tmp / f"ws{rejected_per_minute}"
    attacker, other = _workspace(root, rejected_per_minute)
    server = Server(root)
    server.start()
    try:
        return asyncio.run(work(server.port, attacker, other))
    finally:
        server.stop()


def run() -> list[dict[str, Any]]:
    runs = int(os.environ.get("TOUCHLENS_BENCH_FLOOD_RUNS", 3))
    with tempfile.TemporaryDirectory() as tmp:
        found = _served(Path(tmp), 100_000_000, lambda port, attacker, other: _measure(port, attacker, other, runs))
        burst, statuses = _served(Path(tmp), 1000, _burst)
        per_row = _per_row(Path(tmp))
    assert all(q == SIZE for q in found["quarantined"]), found["quarantined"]
    rows = [
        _row("10,000 invalid messages (329 KB) in one request, send to answer", _median(found["flood"]), None, SIZE),
        _row("peer: 10,000 valid messages in one request, same server", _median(found["valid"]), None, SIZE),
        _row("before: 10,000 quarantine inserts of a statement each (attack: 43 s)", round(per_row, 2), None, SIZE),
        _row("another key's valid event, sent every 0.1 s during the flood", "-", found["latency"], 1),
        _row(
            f"the same during {BURST} concurrent floods of one key, default limits "
            f"({statuses.count(429)} answered 429, {statuses.count(200)} 200)",
            "-",
            burst,
            1,
        ),
    ]
    notes = (
        f"{runs} runs; seconds are medians. `touchlens serve` on loopback, one writer; the flood's key has its "
        "invalid-message limit raised so that the flood is processed, not refused (the burst row keeps the "
        "default, 1000 a minute). The pre-issue-16 row runs the old per-message statement on a DuckDB store "
        "directly. Target: the other key's events answered in < 2 s."
    )
    write_results("flood", rows, notes)
    return rows


def _median(values: list[float]) -> float:
    return round(statistics.median(values), 2)


if __name__ == "__main__":
    for row in run():
        print(row)
