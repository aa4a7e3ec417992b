"""Event ingest: touchlens (rules, dedupe and quarantine included) against a plain DuckDB load of the same file.

Each run is a fresh child process under a small wrapper, so its peak RSS is its own (RUSAGE_CHILDREN of the
wrapper). The input is generated once and cached under benchmarks/.data/. Size: TOUCHLENS_BENCH_EVENTS
(default 10,000,000).
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

from benchmarks.common import write_results

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / ".data"
MAP = ROOT / "examples" / "outdoor_retail.yaml"

PLAIN = """
import duckdb, sys, time
con = duckdb.connect(sys.argv[1])
con.execute("SET enable_progress_bar = false")
reader = {"parquet": "read_parquet", "csv": "read_csv"}[sys.argv[3]]
start = time.perf_counter()
con.execute(f"CREATE TABLE t AS SELECT * FROM {reader}(?)", [sys.argv[2]])
print(time.perf_counter() - start)
"""


def input_files(n: int) -> dict[str, Path]:
    """The benchmark's Parquet and CSV files of `n` demo events, generated on first use."""
    import pyarrow.csv as pa_csv
    import pyarrow.parquet as pq

    from touchlens.demo import benchmark_events

    DATA.mkdir(parents=True, exist_ok=True)
    files = {"parquet": DATA / f"events_{n}.parquet", "csv": DATA / f"events_{n}.csv"}
    if not all(p.exists() for p in files.values()):
        table = benchmark_events(n, seed=7)
        pq.write_table(table, files["parquet"])
        pa_csv.write_csv(table, files["csv"])
    return files


# A wrapper whose only child is the measured command, so RUSAGE_CHILDREN is that command's peak RSS alone.
WRAPPER = """
import resource, subprocess, sys
done = subprocess.run(sys.argv[1:], capture_output=True, text=True)
sys.stdout.write(done.stdout)
sys.stderr.write(done.stderr)
sys.stderr.write(f"\\nmaxrss_kib={resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss}\\n")
sys.exit(done.returncode)
"""


def _child(args: list[str]) -> tuple[str, float, float]:
    """Run a command to completion: (stdout, wall seconds, peak RSS in MiB)."""
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRAPPER, *args], capture_output=True, text=True, check=False)
    wall = time.perf_counter() - start
    if done.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {done.stderr[-2000:]}")
    kib = next(line for line in done.stderr.splitlines()[::-1] if line.startswith("maxrss_kib="))
    return done.stdout, wall, int(kib.split("=")[1]) / 1024


def _touchlens(path: Path, work: Path) -> dict[str, Any]:
    exe = str(Path(sys.executable).parent / "touchlens")
    ws = work / "ws"
    subprocess.run([exe, "init", str(ws)], check=True, capture_output=True)
    subprocess.run([exe, "-w", str(ws), "map", "import", str(MAP)], check=True, capture_output=True)
    out, wall, rss = _child([exe, "-w", str(ws), "ingest", "events", str(path), "--json"])
    report = json.loads(out)
    return {"seconds": report["seconds"], "wall": wall, "rss_mib": rss, "accepted": report["accepted"]}


def _plain(path: Path, kind: str, work: Path) -> dict[str, Any]:
    out, wall, rss = _child([sys.executable, "-c", PLAIN, str(work / "plain.duckdb"), str(path), kind])
    return {"seconds": float(out.strip().splitlines()[-1]), "wall": wall, "rss_mib": rss}


def run() -> list[dict[str, Any]]:
    n = int(os.environ.get("TOUCHLENS_BENCH_EVENTS", "10000000"))
    rows = []
    for kind, path in input_files(n).items():
        with tempfile.TemporaryDirectory(dir=DATA) as a, tempfile.TemporaryDirectory(dir=DATA) as b:
            ours = _touchlens(path, Path(a))
            plain = _plain(path, kind, Path(b))
        rows.append(
            {
                "task": f"ingest {n:,} events from {kind}",
                "touchlens_s": round(ours["seconds"], 2),
                "touchlens_events_per_s": round(n / ours["seconds"]),
                "touchlens_peak_rss_mib": round(ours["rss_mib"]),
                "peer": f"duckdb CREATE TABLE AS {kind} scan",
                "peer_s": round(plain["seconds"], 2),
                "peer_peak_rss_mib": round(plain["rss_mib"]),
                "ratio": round(plain["seconds"] / ours["seconds"], 2),
            }
        )
    write_results(
        "ingest",
        rows,
        "ratio = plain DuckDB load time / touchlens ingest time (target >= 0.5); touchlens maps every event to a "
        "touchpoint, dedupes on (source, event_id), validates and quarantines, then brings the customers and the "
        "journey layer up to date (the report's seconds cover the whole call since 2026-12-07; before, only the "
        "batches); RSS = each child's own peak",
    )
    return rows
