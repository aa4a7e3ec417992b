"""Web pages' speed: the first load (cache cold) and p50/p95 of repeated loads (cached) of every page and API
GET, on workspaces of 1M and 10M demo events, through FastAPI's in-process client.

Sizes: TOUCHLENS_BENCH_WEB_SIZES (default "1000000,10000000"). Targets: cached p95 under 300 ms at 10M
events, first load under 3 s.
"""

from __future__ import annotations

import os
import re
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from benchmarks.common import write_results

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / ".data"
REPEAT = 20
# Queries for the routes that need one, and pages with a path parameter, on the outdoor-retail map.
QUERIES = {
    "/api/funnel": "?steps=homepage,product_page,cart,checkout&window=7d",
    "/funnel": "?steps=homepage,product_page,cart,checkout&window=7d",
    "/api/paths": "?from_=cart",
    "/audits/compare": "?journey=first_kit",
}
EXTRA = ["/touchpoints/product_page", "/api/touchpoints/product_page"]


def _paths(app: Any) -> list[str]:
    """Every GET page and API route without path parameters."""
    skip = ("/login", "/api/docs", "/api/openapi.json", "/logout", "/docs/oauth2-redirect")
    from touchlens.web.app import routes

    return sorted(p for method, p in routes(app) if method == "GET" and "{" not in p and not p.startswith(skip))


def _measure(n: int) -> list[dict[str, Any]]:
    import pyarrow.parquet as pq
    from fastapi.testclient import TestClient

    import touchlens
    from touchlens.demo import benchmark_events
    from touchlens.store.users import add_user
    from touchlens.web.app import create_app

    path = DATA / f"flow_events_{n}.parquet"
    if not path.exists():
        pq.write_table(benchmark_events(n, seed=11), path)
    rows = []
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        ws = touchlens.init(Path(tmp) / "ws")
        ws.import_map(ROOT / "examples" / "outdoor_retail.yaml")
        ws.ingest_events([path])
        add_user(ws.meta_engine(), "bench", "benchmark-password", "admin")
        client = TestClient(create_app(ws.root))
        page = client.get("/login").text
        csrf = re.search(r'name="csrf" value="([^"]+)"', page)
        assert csrf is not None
        # Not following the login's redirect to the overview: that would load `/` unmeasured, and its measured
        # "first" load would be a cached one.
        login = {"name": "bench", "password": "benchmark-password", "csrf": csrf.group(1)}
        signed_in = client.post("/login", data=login, follow_redirects=False)
        assert signed_in.headers.get("location") == "/", "the benchmark's user could not sign in"
        for p in [path + QUERIES.get(path, "") for path in _paths(client.app)] + EXTRA:
            start = time.perf_counter()
            status = client.get(p).status_code
            first = time.perf_counter() - start
            times = []
            for _ in range(REPEAT):
                start = time.perf_counter()
                client.get(p)
                times.append(time.perf_counter() - start)
            times.sort()
            rows.append({"events": n, "path": p, "status": status, "first_s": round(first, 3),
                         "cached_p50_ms": round(1000 * statistics.median(times), 1),
                         "cached_p95_ms": round(1000 * times[int(0.95 * (REPEAT - 1))], 1)})  # fmt: skip
    return rows


def run() -> list[dict[str, Any]]:
    DATA.mkdir(parents=True, exist_ok=True)
    sizes = [int(s) for s in os.environ.get("TOUCHLENS_BENCH_WEB_SIZES", "1000000,10000000").split(",")]
    rows = [r for n in sizes for r in _measure(n)]
    write_results("web", rows, "first load with a cold cache; cached = repeat loads; targets p95 < 300 ms, first < 3 s")
    return rows
