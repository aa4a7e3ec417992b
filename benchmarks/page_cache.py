"""Page loads after a change (issue 19): a server has the pages warm; then someone edits a touchpoint's
description, or uploads a 4-row file, and reloads the same pages. Seconds per reload, through FastAPI's
in-process client, on the demo's benchmark events.

With TOUCHLENS_BENCH_CACHE_BEFORE=/path/to/an/older/checkout (a `git worktree` of an earlier commit), the
same steps also run on that checkout's touchlens, in the same run, on the same data: the caches before and after.
Size: TOUCHLENS_BENCH_CACHE_EVENTS (default 1000000); TOUCHLENS_BENCH_CACHE_SETTLE: seconds to wait before
the last round of reloads (default 10).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / ".data"
PAGES = ["/", "/touchpoints/product_page", "/canvas", "/api/scorecard", "/api/analyses/flows"]
UPLOAD = (
    "customer_id,ts,event\n"
    "bench-new-1,2026-11-30T10:00:00Z,homepage\nbench-new-1,2026-11-30T10:01:00Z,product_page\n"
    "bench-new-2,2026-11-30T11:00:00Z,homepage\nbench-new-2,2026-11-30T11:02:00Z,cart\n"
)


def _loads(client: Any) -> dict[str, float]:
    took = {}
    for page in PAGES:
        start = time.perf_counter()
        status = client.get(page).status_code
        took[page] = round(time.perf_counter() - start, 3) if status == 200 else float("nan")
    return took


def measure(n: int) -> dict[str, Any]:
    import pyarrow.parquet as pq
    from fastapi.testclient import TestClient

    import touchlens
    from touchlens.demo import benchmark_events
    from touchlens.store.users import add_user
    from touchlens.web.app import create_app

    DATA.mkdir(parents=True, exist_ok=True)
    path = DATA / f"flow_events_{n}.parquet"
    if not path.exists():
        pq.write_table(benchmark_events(n, seed=11), path)
    with tempfile.TemporaryDirectory(dir=DATA) as tmp:
        ws = touchlens.init(Path(tmp) / "ws")
        ws.import_map(ROOT / "examples" / "outdoor_retail.yaml")
        ws.ingest_events([path])
        add_user(ws.meta_engine(), "bench", "benchmark-password", "admin")
        token, _ = ws.users.issue_token("bench", ("read", "write"))
        with TestClient(create_app(ws.root), headers={"Authorization": f"Bearer {token}"}) as client:
            first = _loads(client)
            warm = _loads(client)
            edit = client.patch("/api/touchpoints/cart", json={"description": "Edited while the pages were warm"})
            assert edit.status_code == 200, edit.text
            after_edit = _loads(client)
            upload = client.post("/api/ingest/events", files={"file": ("new.csv", UPLOAD, "text/csv")})
            assert upload.status_code == 200, upload.text
            after_upload = _loads(client)
            time.sleep(float(os.environ.get("TOUCHLENS_BENCH_CACHE_SETTLE", "10")))
            settled = _loads(client)
    return {"events": n, "first": first, "warm": warm, "after_edit": after_edit, "after_upload": after_upload,
            "after_upload_settled": settled}  # fmt: skip


# Another checkout's touchlens in a fresh interpreter: the editable install's finder (which would load this
# checkout) is taken out and the other checkout goes first on the path.
BEFORE = """
import json, sys
sys.meta_path[:] = [f for f in sys.meta_path if "editable" not in repr(f)]
sys.path[:0] = [sys.argv[1]]
import runpy, touchlens
assert touchlens.__file__.startswith(sys.argv[1]), touchlens.__file__
measure = runpy.run_path(sys.argv[2])["measure"]
print(json.dumps(measure(int(sys.argv[3]))))
"""


def _before(checkout: str, n: int) -> dict[str, Any]:
    done = subprocess.run(
        [sys.executable, "-c", BEFORE, checkout, __file__, str(n)], capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


PHASES = ("first", "warm", "after_edit", "after_upload", "after_upload_settled")


def run() -> list[dict[str, Any]]:
    from benchmarks.common import write_results

    n = int(os.environ.get("TOUCHLENS_BENCH_CACHE_EVENTS", "1000000"))
    after = measure(n)
    checkout = os.environ.get("TOUCHLENS_BENCH_CACHE_BEFORE")
    before = _before(checkout, n) if checkout else None
    rows = []
    for phase in PHASES:
        row: dict[str, Any] = {
            "task": f"{phase}: {len(PAGES)} pages, {n:,} events",
            "seconds": round(sum(after[phase].values()), 2),
        }
        if before is not None:
            row["before_s"] = round(sum(before[phase].values()), 2)
        row["slowest_page"] = max(after[phase].items(), key=lambda kv: kv[1])[0]
        rows.append(row)
    write_results("page_cache", rows, "reloads after an edit and an upload; before_s: TOUCHLENS_BENCH_CACHE_BEFORE's")
    return rows


if __name__ == "__main__":
    print(json.dumps(measure(int(os.environ.get("TOUCHLENS_BENCH_CACHE_EVENTS", "1000000"))), indent=2))
