"""Live ingestion under load: N clients on loopback send Segment batches to `touchlens serve` for a bounded
time, then the store is checked to hold exactly the acknowledged events (none lost, none doubled).

Reports sustained events/s (acknowledged events over the sending time) and p50/p99 latency of a batch, from
send to the 200 that follows the commit. Targets on a 2-core machine: >= 20,000 events/s with batches of 100,
p99 under 250 ms. Settings: TOUCHLENS_BENCH_LOAD_SECONDS (20), _CLIENTS (32), _BATCH (100).
"""

from __future__ import annotations

import asyncio
import os
import secrets
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import duckdb
import pyarrow as pa

from benchmarks.common import write_results
from benchmarks.liveclient import Connection, Server, batch_body

ROOT = Path(__file__).resolve().parent.parent


def _setting(name: str, default: int) -> int:
    return int(os.environ.get(f"TOUCHLENS_BENCH_LOAD_{name}", default))


async def _client(
    number: int, port: int, key: str, size: int, until: float, acked: list[str], lat: list[float], seq: int = 0
) -> None:
    conn = Connection(port, key)
    while time.perf_counter() < until:
        body, ids = batch_body(number, seq, size)
        started = time.perf_counter()
        status, answer = await conn.post("/v1/batch", body)
        if status == 200 and answer["accepted"] + answer["duplicates"] == size:
            lat.append(time.perf_counter() - started)
            acked.extend(ids)
        elif status != 503:  # 503 = busy: the same batch is sent again
            raise RuntimeError(f"unexpected answer {status}: {answer}")
        else:
            continue
        seq += 1
    conn.close()


async def _load(
    port: int, key: str, clients: int, size: int, seconds: float
) -> tuple[list[str], list[str], list[float], float]:
    """(ids acknowledged in the timed run, ids acknowledged in the warm-up, latencies, seconds)."""
    acked: list[str] = []
    latencies: list[float] = []
    # Warm-up, untimed: one batch from each client (the server's first requests import and compile lazily).
    warm = time.perf_counter() + 3
    warmed: list[str] = []
    await asyncio.gather(*(_client(n, port, key, size, warm, warmed, [], seq=1_000_000) for n in range(clients)))
    start = time.perf_counter()
    until = start + seconds
    await asyncio.gather(*(_client(n, port, key, size, until, acked, latencies) for n in range(clients)))
    return acked, warmed, latencies, time.perf_counter() - start


def _check(events_path: Path, acked: list[str]) -> tuple[int, int, int]:
    """(stored, lost, doubled): acknowledged ids missing from the store, and ids stored more than once."""
    con = duckdb.connect(str(events_path), read_only=True)
    con.register("acked", pa.table({"id": pa.array(acked, pa.string())}))
    stored, distinct = con.execute(
        "SELECT count(*), count(DISTINCT event_id) FROM events WHERE source = 'load'"
    ).fetchone() or (0, 0)
    lost = con.execute(
        "SELECT count(*) FROM acked WHERE id NOT IN (SELECT event_id FROM events WHERE source = 'load')"
    ).fetchone()
    con.close()
    return int(stored), int(lost[0] if lost else 0), int(stored - distinct)


def _measure(seconds: int, clients: int, size: int) -> dict[str, Any]:
    import touchlens
    from touchlens.store import keys as key_store
    from touchlens.store.users import add_user

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp) / "ws"
        ws = touchlens.init(root)
        ws.import_map(ROOT / "examples" / "outdoor_retail.yaml")
        # One key stands for a whole fleet of senders here: its request and message rates are not what is measured.
        settings = root / "touchlens.toml"
        text = settings.read_text().replace("requests_per_second = 100", "requests_per_second = 100000")
        settings.write_text(text.replace("events_per_second = 10000", "events_per_second = 10000000"))
        _, key = key_store.add_key(ws.meta_engine(), "ingest", "load", "load", "benchmark")
        add_user(ws.meta_engine(), "admin", secrets.token_urlsafe(16), "admin")  # serve needs one user
        server = Server(root)
        server.start()
        try:
            acked, warmed, latencies, elapsed = asyncio.run(_load(server.port, key, clients, size, seconds))
        finally:
            server.stop()
        stored, lost, doubled = _check(root / "events.duckdb", acked + warmed)
    quantiles = statistics.quantiles(latencies, n=1000)
    return {
        "task": f"live /v1/batch, {clients} clients, batches of {size}, {seconds} s",
        "events/s": round(len(acked) / elapsed),
        "p50 ms": round(quantiles[499] * 1000, 1),
        "p99 ms": round(quantiles[989] * 1000, 1),
        "p99.9 ms": round(quantiles[998] * 1000, 1),
        "max ms": round(max(latencies) * 1000, 1),
        "acknowledged": len(acked) + len(warmed),
        "stored": stored,
        "lost": lost,
        "doubled": doubled,
    }


def run() -> list[dict[str, Any]]:
    seconds, clients, size = _setting("SECONDS", 20), _setting("CLIENTS", 32), _setting("BATCH", 100)
    rows = [_measure(seconds, clients, size)]
    notes = (
        "N asyncio clients (keep-alive HTTP/1.1) on loopback against `touchlens serve` (one uvicorn process, "
        "one writer committing groups); latency from send to the 200 sent after commit; lost = acknowledged "
        "ids missing from the store; doubled = ids stored more than once. Targets: >= 20000 events/s, "
        "p99 < 250 ms."
    )
    write_results("load", rows, notes)
    return rows


if __name__ == "__main__":
    for row in run():
        print(row)
