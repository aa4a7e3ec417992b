"""Pages while live events flow: `touchlens serve` on a workspace of demo events takes the load benchmark's live
load (N clients sending Segment batches) while one reader, logged in as a person, loads every page and API GET
in turn, round after round. Per page: p50 and p95 of the load time, and how far behind its numbers were (the
`Age` header the server sends with an answer computed from older data; none means the answer was current).

The reader's first round runs before the load starts (the cold first loads are `benchmarks/web.py`'s); what is
reported is the rounds during the load. Targets (issue 20): every page's p95 under 1 s and its numbers at most
5 s behind, at 20,000 events/s. Settings: TOUCHLENS_BENCH_LIVEPAGES_EVENTS (store size before the load,
1,000,000), _SECONDS (load time, 120), _CLIENTS (32), _BATCH (100).
"""

from __future__ import annotations

import asyncio
import os
import re
import secrets
import statistics
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_results
from benchmarks.liveclient import Server
from benchmarks.load import _load
from benchmarks.web import DATA, EXTRA, QUERIES

ROOT = Path(__file__).resolve().parent.parent
SKIP = ("/login", "/api/docs", "/api/openapi.json", "/logout", "/docs/oauth2-redirect", "/vendor/")


def _setting(name: str, default: int) -> int:
    return int(os.environ.get(f"TOUCHLENS_BENCH_LIVEPAGES_{name}", default))


def _pages() -> list[str]:
    """Every GET page and API route without a path parameter (from an app on an empty workspace: an app holds
    its store open, and the server must open the measured one)."""
    import touchlens
    from touchlens.web.app import create_app, routes

    with tempfile.TemporaryDirectory() as tmp:
        app = create_app(touchlens.init(Path(tmp) / "ws").root)
        paths = sorted(p for m, p in routes(app) if m == "GET" and "{" not in p and not p.startswith(SKIP))
    return [p + QUERIES.get(p, "") for p in paths] + EXTRA


class Reader(threading.Thread):
    """A person's browser: logged in, loading `pages` one after another until `stop` is set."""

    def __init__(self, port: int, password: str, pages: list[str]) -> None:
        super().__init__(daemon=True)
        import httpx

        self.client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=120)
        page = self.client.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None, "no login form"
        self.client.post("/login", data={"name": "reader", "password": password, "csrf": csrf.group(1)})
        self.pages, self.stop, self.measuring = pages, threading.Event(), threading.Event()
        self.first_round = threading.Event()
        self.status: dict[str, int] = {}  # each page's first answer
        self.dropped = 0  # connections the server closed under a request
        self.seen: dict[str, list[tuple[float, int, int]]] = {p: [] for p in pages}
        self.rounds = 0

    def run(self) -> None:
        while not self.stop.is_set():
            for p in self.pages:
                if self.stop.is_set():
                    return
                counted = self.measuring.is_set()
                start = time.perf_counter()
                status, age = self._load(p)
                took = time.perf_counter() - start
                self.status.setdefault(p, status)
                if counted and self.measuring.is_set():  # only loads wholly within the live load count
                    self.seen[p].append((took, age, status))
            if not self.first_round.is_set():  # routes that need a parameter to answer (4xx) are left out
                self.pages = [p for p in self.pages if self.status.get(p, 200) < 400]
            self.rounds += self.measuring.is_set()
            self.first_round.set()

    def _load(self, page: str) -> tuple[int, int]:
        """(status, age) of one load; a dropped connection is an error (599) and the next load reconnects, as a
        browser would."""
        import httpx

        try:
            answer = self.client.get(page)
        except httpx.TransportError:
            self.dropped += 1
            return 599, 0
        return answer.status_code, int(answer.headers.get("age", 0))


def _workspace(root: Path, events: int, password: str) -> str:
    """A workspace of `events` demo events with the retail map, a person to read as and an ingest key."""
    import pyarrow.parquet as pq

    import touchlens
    from touchlens.demo import benchmark_events
    from touchlens.store import keys as key_store
    from touchlens.store.users import add_user

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"flow_events_{events}.parquet"
    if not path.exists():
        pq.write_table(benchmark_events(events, seed=11), path)
    ws = touchlens.init(root)
    ws.import_map(ROOT / "examples" / "outdoor_retail.yaml")
    ws.ingest_events([path])
    settings = root / "touchlens.toml"  # one key stands for a fleet of senders: its rate limits are not measured
    text = settings.read_text().replace("requests_per_second = 100", "requests_per_second = 100000")
    settings.write_text(text.replace("events_per_second = 10000", "events_per_second = 10000000"))
    add_user(ws.meta_engine(), "reader", password, "admin")  # every page, admin ones too
    return key_store.add_key(ws.meta_engine(), "ingest", "load", "load", "benchmark")[1]


def _rows(reader: Reader) -> list[dict[str, Any]]:
    rows = []
    for page, seen in reader.seen.items():
        if not seen:
            continue
        times = sorted(t for t, _, _ in seen)
        rows.append({
            "page": page,
            "loads": len(seen),
            "p50 ms": round(1000 * statistics.median(times)),
            "p95 ms": round(1000 * times[min(len(times) - 1, int(0.95 * len(times)))]),
            "max behind s": max(a for _, a, _ in seen),
            "errors": sum(s >= 400 for _, _, s in seen),
        })  # fmt: skip
    return rows


def _measure(events: int, seconds: int, clients: int, size: int) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    password = secrets.token_urlsafe(16)
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        root = Path(tmp) / "ws"
        key = _workspace(root, events, password)
        pages = _pages()
        server = Server(root)
        server.start(timeout=300)
        try:
            reader = Reader(server.port, password, pages)
            reader.start()
            reader.first_round.wait(900)  # a first round before the load: the pages' answers warm
            reader.measuring.set()
            acked, _, latencies, elapsed = asyncio.run(_load(server.port, key, clients, size, seconds))
            reader.measuring.clear()
            reader.stop.set()
            reader.join(300)
        finally:
            server.stop()
    quantiles = statistics.quantiles(latencies, n=100)
    load = {"events before": events, "events/s during": round(len(acked) / elapsed), "batch p99 ms":
            round(quantiles[98] * 1000), "rounds of every page": reader.rounds, "dropped": reader.dropped}  # fmt: skip
    return _rows(reader), load


def run() -> list[dict[str, Any]]:
    events, seconds = _setting("EVENTS", 1_000_000), _setting("SECONDS", 120)
    clients, size = _setting("CLIENTS", 32), _setting("BATCH", 100)
    rows, load = _measure(events, seconds, clients, size)
    rows.sort(key=lambda r: -r["p95 ms"])
    every = {"page": f"(every page: {len(rows)}, {sum(r['p95 ms'] < 1000 for r in rows)} with p95 under 1 s)",
             "loads": sum(r["loads"] for r in rows), "p50 ms": statistics.median(r["p50 ms"] for r in rows),
             "p95 ms": max((r["p95 ms"] for r in rows), default=0),
             "max behind s": max((r["max behind s"] for r in rows), default=0),
             "errors": sum(r["errors"] for r in rows)}  # fmt: skip
    live = {"page": f"(live load: {load['events/s during']:,} events/s onto {events:,}, batch p99 "
            f"{load['batch p99 ms']} ms, {load['rounds of every page']} rounds, {load['dropped']} dropped)",
            "loads": 0, "p50 ms": 0, "p95 ms": 0, "max behind s": 0, "errors": 0}  # fmt: skip
    notes = (
        "touchlens serve with a live load of N clients x batches of 100 on loopback; one logged-in reader loads "
        "every GET page and API route in turn during the load (its first round, before the load, not counted). "
        "behind = the Age header (seconds since the answer's data was current). Targets: p95 < 1 s, behind <= 5 s."
    )
    write_results("live_pages", [every, live, *rows], notes)
    return [every, live, *rows]


if __name__ == "__main__":
    for row in run():
        print(row)
