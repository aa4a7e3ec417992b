"""Scale (issue 8): touchlens on 100 million events read from a Parquet lake, and Spark against DuckDB on one lake.

Part duckdb: 100M demo events as a hive-partitioned lake (events/date=YYYY-MM-DD/part-*.parquet, generated in
5M-event chunks and cached under benchmarks/.data/), then a plain DuckDB scan of the files (the floor), a plain
DuckDB CREATE TABLE AS, `touchlens ingest events` of every file in one call, and `analyze flows`, a 4-step
`analyze funnel`, Markov `analyze attribution`, `analyze drivers` and `analyze insights` on the store, with
`[store] memory_limit = "8GB"`.
Part spark: 10M events ingested and written out with `touchlens export parquet --lake`, then the same three
analyses on two workspaces reading that lake, `[engine] backend = "duckdb"` and `"pyspark"`; a tiny lake gives
the fixed cost of starting the JVM and the Spark session. It skips itself when that command is not there yet.

Each step is a fresh child process under a wrapper, so its peak RSS is its own: the larger of RUSAGE_CHILDREN
and the sampled RSS of its whole process tree (Spark's JVM is a grandchild). Seconds are the child's wall time.
Sizes: TOUCHLENS_SCALE_EVENTS (default 100,000,000), TOUCHLENS_SCALE_SPARK_EVENTS (default 10,000,000); parts:
TOUCHLENS_SCALE_PARTS (default "duckdb,spark"); TOUCHLENS_SCALE_STEP_TIMEOUT seconds a step (default 7200);
TOUCHLENS_SCALE_KEEP=1 keeps the workspaces under benchmarks/.data/, and TOUCHLENS_SCALE_REUSE=1 then reuses the
kept 100M store and its ingest figures (the ingest alone takes ten minutes on two cores).
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from benchmarks.common import RESULTS, write_results

ROOT = Path(__file__).resolve().parent.parent
DATA = Path(__file__).parent / ".data"
MAP = ROOT / "examples" / "outdoor_retail.yaml"
EXE = str(Path(sys.executable).parent / "touchlens")
CHUNK = 5_000_000
TINY = 20_000
MEMORY = "8GB"
STEPS = ["product_page", "cart", "checkout", "order_placed_page"]
ANALYSES = {
    "flows": ["analyze", "flows", "--json"],
    "funnel": ["analyze", "funnel", "--steps", ",".join(STEPS), "--json"],
    "markov attribution": ["analyze", "attribution", "--model", "markov", "--json"],
}
# On the store only (issue 20: every first load at 100M under 30 s within 8 GB, insights and drivers included).
STORE_ONLY = {
    "drivers": ["analyze", "drivers", "--json"],
    "insights": ["analyze", "insights", "--json"],
}
SLOW = 1800

# The measured command's only ancestor below us: RUSAGE_CHILDREN is its own peak, and /proc is sampled for the
# whole tree (a JVM started by PySpark is never waited for, so rusage misses it). The disk it fills (DuckDB's spill
# files, the store) is watched too: past the spill limit, or past the time limit, the step is killed.
WRAPPER = r"""
import os, resource, shutil, signal, subprocess, sys, threading
limit, watch, most = float(sys.argv[1]), sys.argv[2], float(sys.argv[3]) * 2**30
def tree_kib(root):
    parent, rss = {}, {}
    for name in os.listdir("/proc"):
        if name.isdigit():
            try:
                with open(f"/proc/{name}/stat") as f:
                    fields = f.read().rsplit(")", 1)[1].split()
            except OSError:
                continue
            parent[int(name)], rss[int(name)] = int(fields[1]), int(fields[21])
    total, todo = 0, [root]
    while todo:
        pid = todo.pop()
        total += rss.get(pid, 0)
        todo += [p for p, pp in parent.items() if pp == pid]
    return total * os.sysconf("SC_PAGE_SIZE") // 1024
free = shutil.disk_usage(watch).free
proc = subprocess.Popen(sys.argv[4:], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                        start_new_session=True)
peak, filled, killed, done = [0], [0], [], threading.Event()
def sample():
    while not done.wait(0.5):
        peak[0] = max(peak[0], tree_kib(proc.pid))
        filled[0] = max(filled[0], free - shutil.disk_usage(watch).free)
        if filled[0] > most and not killed:
            killed.append(f"killed: it had filled {filled[0] / 2**30:.1f} GiB of disk (limit {most / 2**30:g} GiB)")
            os.killpg(proc.pid, signal.SIGKILL)
threading.Thread(target=sample, daemon=True).start()
try:
    out, err = proc.communicate(timeout=limit)
    code = 125 if killed else proc.returncode
except subprocess.TimeoutExpired:
    os.killpg(proc.pid, signal.SIGKILL)
    out, err = proc.communicate()
    killed.append(f"timed out after {limit:.0f} s")
    code = 124
done.set()
sys.stdout.write(out)
sys.stderr.write(err + "".join(f"\n{k}\n" for k in killed))
own = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss
sys.stderr.write(f"\nmaxrss_kib={max(own, peak[0])}\ndisk_kib={max(0, filled[0]) // 1024}\n")
sys.exit(code)
"""

FLOOR = """
import duckdb, json, sys
con = duckdb.connect(config={"memory_limit": sys.argv[2]})
con.execute("SET enable_progress_bar = false")
row = con.execute(
    "SELECT count(*), min(ts)::VARCHAR, max(ts)::VARCHAR, "
    "bit_xor(hash(event_id, customer_id, ts, event, channel, page_type, template, revenue)) "
    "FROM read_parquet(?, hive_partitioning = true)", [sys.argv[1]]).fetchone()
print(json.dumps(dict(zip(["events", "first", "last", "hash"], row))))
"""

CTAS = """
import duckdb, sys
con = duckdb.connect(sys.argv[2], config={"memory_limit": sys.argv[3]})
con.execute("SET enable_progress_bar = false")
con.execute("CREATE TABLE t AS SELECT * FROM read_parquet(?, hive_partitioning = true)", [sys.argv[1]])
print(con.execute("SELECT count(*) FROM t").fetchone()[0])
"""


@dataclass
class Step:
    """One child process run to its end (or its limit): what it printed, its wall time, peak RSS and the most
    disk it had filled at once (DuckDB's spill files and what it wrote)."""

    out: str
    seconds: float
    rss_mib: float
    error: str | None
    disk_gib: float | None = None

    def json(self) -> Any:
        if self.error:
            raise RuntimeError(self.error)
        return json.loads(self.out)


def step(args: list[str]) -> Step:
    limits = [os.environ.get("TOUCHLENS_SCALE_STEP_TIMEOUT", "7200"), str(DATA)]
    limits.append(os.environ.get("TOUCHLENS_SCALE_MAX_DISK_GB", "40"))
    start = time.perf_counter()
    done = subprocess.run([sys.executable, "-c", WRAPPER, *limits, *args], capture_output=True, text=True)
    wall = time.perf_counter() - start
    lines = done.stderr.splitlines()
    figures = {k: int(v) for k, _, v in (x.partition("=") for x in lines if x.startswith(("maxrss_kib=", "disk_kib=")))}
    error = None
    if done.returncode != 0:
        tail = "\n".join(x for x in lines if x.strip() and not x.startswith(("maxrss_kib=", "disk_kib=")))[-1500:]
        error = f"{' '.join(args[:6])} … exited {done.returncode} after {wall:.0f} s: {tail}"
    rss, disk = figures.get("maxrss_kib", 0) / 1024, figures.get("disk_kib", 0) / 2**20
    return Step(done.stdout, wall, rss, error, disk)


# -- the lake -----------------------------------------------------------------------------------------------


def lake(n: int) -> tuple[Path, dict[str, Any]]:
    """The cached lake of `n` demo events (built in a child process on first use) and how it was built."""
    root = DATA / f"scale_lake_{n}"
    if not (root / "lake.json").exists():
        shutil.rmtree(root, ignore_errors=True)
        code = f"from benchmarks.scale import build_lake; build_lake({n}, {str(root)!r})"
        built = step([sys.executable, "-c", code])
        if built.error:
            raise RuntimeError(built.error)
        info = json.loads((root / "lake.json").read_text())
        info.update(seconds=built.seconds, rss_mib=built.rss_mib, cached=False)
        (root / "lake.json").write_text(json.dumps(info))
        return root, info
    return root, {**json.loads((root / "lake.json").read_text()), "cached": True}


def build_lake(n: int, root: str) -> None:
    """Write `n` events under root/events/date=…/, a month of chunks at a time so memory stays bounded."""
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.dataset as ds

    staging, events = Path(root) / "staging", Path(root) / "events"
    schema = _chunk(0, 20).schema
    ds.write_dataset(_chunks(n), staging, schema=schema, format="parquet",
                     partitioning=["month"], partitioning_flavor="hive")  # fmt: skip
    for month in sorted(staging.iterdir()):
        table = ds.dataset(month, format="parquet").to_table().sort_by("ts")
        table = table.append_column("date", pc.cast(table["ts"], pa.date32()))
        ds.write_dataset(table, events, format="parquet", partitioning=["date"], partitioning_flavor="hive",
                         basename_template="part-{i}.parquet", existing_data_behavior="overwrite_or_ignore",
                         file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"))  # fmt: skip
        shutil.rmtree(month)
    staging.rmdir()
    files = sorted(events.glob("*/*.parquet"))
    info = {"events": n, "files": len(files), "bytes": sum(f.stat().st_size for f in files)}
    (Path(root) / "lake.json").write_text(json.dumps(info))


def _chunks(n: int) -> Any:
    for i, start in enumerate(range(0, n, CHUNK)):
        yield from _chunk(i, min(CHUNK, n - start)).to_batches()


def _chunk(i: int, size: int) -> Any:
    """`size` demo events whose customer and event ids are disjoint from every other chunk's, with a month."""
    import pyarrow.compute as pc

    from touchlens.demo import benchmark_events

    table = benchmark_events(size, seed=1000 + i)
    for col, prefix in (("event_id", f"e{i:03d}-"), ("customer_id", f"c{i:03d}-")):
        ids = pc.binary_join_element_wise(prefix, pc.utf8_slice_codeunits(table[col], 1), "")
        table = table.set_column(table.schema.get_field_index(col), col, ids)
    return table.append_column("month", pc.strftime(table["ts"], "%Y-%m"))


def files_of(root: Path) -> list[str]:
    return [str(p) for p in sorted((root / "events").glob("*/*.parquet"))]


# -- workspaces ---------------------------------------------------------------------------------------------


def workspace(path: Path, settings: dict[str, dict[str, str]]) -> Path:
    """A new workspace at `path` with the outdoor-retail map and `settings` (TOML values) in touchlens.toml."""
    shutil.rmtree(path, ignore_errors=True)
    subprocess.run([EXE, "init", str(path)], check=True, capture_output=True)
    toml = path / "touchlens.toml"
    text = toml.read_text()
    for section, values in settings.items():
        for key, value in values.items():
            text = _set(text, section, key, value)
    toml.write_text(text)
    subprocess.run([EXE, "-w", str(path), "map", "import", str(MAP)], check=True, capture_output=True)
    return path


def _set(text: str, section: str, key: str, value: str) -> str:
    """`key = value` in `[section]` of a TOML text: the line replaced, or added (with the section if need be)."""
    head = re.search(rf"^\[{re.escape(section)}\]\s*$", text, re.M)
    if head is None:
        return text.rstrip("\n") + f"\n\n[{section}]\n{key} = {value}\n"
    end = re.compile(r"^\[", re.M).search(text, head.end())
    body = text[head.end() : end.start() if end else len(text)]
    line = re.compile(rf"^{re.escape(key)}\s*=.*$", re.M)
    body = line.sub(lambda _: f"{key} = {value}", body, 1) if line.search(body) else f"\n{key} = {value}" + body
    return text[: head.end()] + body + (text[end.start() :] if end else "")


def _bytes(path: Path) -> int:
    return sum(p.stat().st_size for p in path.rglob("*") if p.is_file())


def _gib(n: int) -> str:
    return f"{n / 2**30:.2f} GiB"


def _row(  # one row of the table, all rows alike
    part: str, task: str, engine: str, n: int, s: Step | None, base: float | None, vs: str, note: str
) -> dict[str, Any]:
    """One row of the table; a failed step keeps its RSS and says why in the note."""
    seconds = None if s is None or s.error else round(s.seconds, 2)
    ratio = round(seconds / base, 2) if seconds and base else None
    note = (f"FAILED: {s.error[-300:]}" if s is not None and s.error else note).replace("\n", " ")
    disk = round(s.disk_gib, 1) if s is not None and s.disk_gib is not None else None
    return {"part": part, "task": task, "engine": engine, "events": n, "seconds": seconds,
            "peak_rss_mib": round(s.rss_mib) if s else None, "disk_gib": disk, "ratio": ratio, "vs": vs,
            "note": note}  # fmt: skip


def _slow(s: Step, note: str) -> str:
    return f"SLOW (over {SLOW // 60} min); {note}" if s.seconds > SLOW and not s.error else note


# -- part 1: the store, at 100M -----------------------------------------------------------------------------


def duckdb_part(n: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Floor, CTAS, ingest and the three analyses on `n` events; the rows and what failed."""
    part, (root, info) = f"duckdb: {n:,} events", lake(n)
    glob = str(root / "events" / "*" / "*.parquet")
    built = Step("", info["seconds"], info["rss_mib"], None)
    made = f"{info['files']} files, {_gib(info['bytes'])} zstd{' (cached)' if info['cached'] else ''}; not measured"
    rows = [_row(part, "generate the lake", "numpy + pyarrow", n, built, None, "", made)]
    floor = step([sys.executable, "-c", FLOOR, glob, MEMORY])
    scan = floor.json()
    _check(scan["events"] == n, f"the floor scan counted {scan['events']:,} events, not {n:,}")
    rows.append(_row(part, "floor: DuckDB scan of every column", "duckdb", n, floor, floor.seconds, "floor", ""))
    ctas = _ctas(glob, n)
    rows.append(_row(part, "plain DuckDB CREATE TABLE AS", "duckdb", n, ctas[0], floor.seconds, "floor", ctas[1]))
    ws, ingest, reused = _ingested(n, files_of(root))
    if ingest.error:
        return [*rows, _row(part, "touchlens ingest events", "duckdb", n, ingest, None, "floor", "")], [ingest.error]
    report = ingest.json()
    _check(report["accepted"] == n and report["quarantined"] == 0, f"ingest accepted {report['accepted']:,} of {n:,}")
    vs_ctas = f"{ingest.seconds / ctas[0].seconds:.2f}x the CTAS" if not ctas[0].error else "CTAS failed"
    note = (
        f"{len(files_of(root))} files in one call; accepted {report['accepted']:,}, unmapped "
        f"{report['unmapped']:,}; {vs_ctas}; store {_gib(_bytes(ws))}; own timer {report['seconds']:.0f} s{reused}"
    )
    rows.append(_row(part, "touchlens ingest events", "duckdb", n, ingest, floor.seconds, "floor", _slow(ingest, note)))
    expect = {"mapped": report["accepted"] - report["unmapped"], "customers": n // 20}  # the generator's 20 a customer
    failures = []
    for name, args in {**ANALYSES, **STORE_ONLY}.items():
        s = step([EXE, "-w", str(ws), *args])
        failures += [s.error] if s.error else []
        note = "" if s.error else _slow(s, _sane(name, s.json(), expect))
        rows.append(_row(part, f"touchlens {' '.join(args[:2])}", "duckdb", n, s, floor.seconds, "floor", note))
    if os.environ.get("TOUCHLENS_SCALE_KEEP") != "1":
        shutil.rmtree(ws)
    return rows, failures


def _ingested(n: int, files: list[str]) -> tuple[Path, Step, str]:
    """The workspace of `n` events and its ingest: measured now, or with TOUCHLENS_SCALE_REUSE=1 the one kept by
    an earlier run (TOUCHLENS_SCALE_KEEP=1), its figures from the file that run wrote beside it."""
    ws, figures = DATA / f"scale_ws_{n}", DATA / f"scale_ws_{n}.ingest.json"
    if os.environ.get("TOUCHLENS_SCALE_REUSE") == "1" and figures.exists() and ws.is_dir():
        return ws, Step(**json.loads(figures.read_text())), "; figures of the earlier run that built this store"
    figures.unlink(missing_ok=True)
    workspace(ws, {"store": {"memory_limit": f'"{MEMORY}"'}})
    ingest = step([EXE, "-w", str(ws), "ingest", "events", *files, "--json"])
    if not ingest.error:
        figures.write_text(json.dumps(ingest.__dict__))
    return ws, ingest, ""


def _ctas(glob: str, n: int) -> tuple[Step, str]:
    target = DATA / f"scale_ctas_{n}.duckdb"
    target.unlink(missing_ok=True)
    s = step([sys.executable, "-c", CTAS, glob, str(target), MEMORY])
    _check(s.error is not None or int(s.out) == n, f"the CTAS stored {s.out.strip()} rows, not {n:,}")
    note = f"DuckDB file {_gib(target.stat().st_size)}" if target.exists() else ""
    for leftover in DATA.glob(f"scale_ctas_{n}.duckdb*"):
        leftover.unlink()
    return s, note


def _check(ok: bool, message: str) -> None:
    if not ok:
        raise RuntimeError(f"scale benchmark: {message}")


def _sane(name: str, out: dict[str, Any], expect: dict[str, int]) -> str:
    """Check an analysis' JSON against what the data must give; a short summary of it for the note."""
    customers = expect["customers"]
    if name == "flows":
        edges, starts = sum(e["count"] for e in out["edges"]), sum(out["start"].values())
        _check(edges + starts == expect["mapped"], f"flows: {edges:,} edges + {starts:,} starts != mapped events")
        _check(0.99 * customers <= starts <= customers, f"flows: {starts:,} journeys for {customers:,} customers")
        return f"{len(out['edges'])} edges, {edges:,} transitions, {starts:,} journeys"
    if name == "funnel":
        counts = [s["count"] for s in out["steps"]]
        _check(0 < counts[0] <= customers and counts == sorted(counts, reverse=True), f"funnel counts {counts}")
        return "customers " + " > ".join(f"{c:,}" for c in counts)
    if name == "drivers":
        found = {o["outcome"]: o for o in out["outcomes"]}
        _check("conversion" in found and found["conversion"]["message"] is None, "drivers: no conversion drivers")
        return "; ".join(f"{k}: {len(o['drivers'])} factors over {o['periods']:,} periods" for k, o in found.items())
    if name == "insights":
        _check(isinstance(out.get("problems"), list), "insights: no problems list")
        return f"{len(out['problems'])} problems, {len(out['strengths'])} strengths, {len(out['gaps'])} gaps"
    total, credited = out["total_conversions"], sum(r["conversions"] for r in out["results"])
    _check(0 < total <= customers and abs(credited - total) <= 1e-6 * total, f"markov: {credited} of {total}")
    return f"{total:,.0f} conversions credited to {sum(r['conversions'] > 0 for r in out['results'])} touchpoints"


# -- part 2: Spark against DuckDB on one lake ---------------------------------------------------------------


def spark_part(n: int) -> tuple[list[dict[str, Any]], list[str]]:
    """Flows, funnel and Markov on pyspark and duckdb reading the same exported lake, and Spark's start-up."""
    part = f"spark: {n:,} events"
    missing = _lake_missing()
    if missing:
        return [_row(part, "flows, funnel, markov on a lake", "pyspark", n, None, None, "", f"skipped: {missing}")], []
    root, made = store_lake(n)
    ingest, export = Step(**made["ingest"]), Step(**made["export"])
    rows = [
        _row(part, "ingest events (to export)", "duckdb", n, ingest, None, "", f"{made['files']} files in one call"),
        _row(part, "export parquet --lake", "duckdb", n, export, None, "", f"lake {_gib(_bytes(root))}"),
    ]
    failures: list[str] = []
    for size, analyses in ((TINY, {"flows": ANALYSES["flows"]}), (n, ANALYSES)):
        where = store_lake(size)[0]
        spaces = {b: engine_workspace(b, where) for b in ("duckdb", "pyspark")}
        expect = _lake_expect(where)
        for name, args in analyses.items():
            runs = {b: step([EXE, "-w", str(ws), *args]) for b, ws in spaces.items()}
            failures += [r.error for r in runs.values() if r.error]
            task = f"start-up: flows on a {TINY:,}-event lake" if size == TINY else f"touchlens {' '.join(args[:2])}"
            rows += _engine_rows(part, task, size, name, runs, expect)
        if os.environ.get("TOUCHLENS_SCALE_KEEP") != "1":
            for ws in spaces.values():
                shutil.rmtree(ws)
    return rows, failures


def store_lake(n: int) -> tuple[Path, dict[str, Any]]:
    """The lake `touchlens export parquet --lake` writes from a store of `n` demo events (built once, cached),
    and how long its ingest and export took."""
    root, marker = DATA / f"scale_export_{n}", DATA / f"scale_export_{n}.json"
    if not marker.exists():
        src = files_of(lake(n)[0]) if n > TINY else [_one_file(lake(n)[0])]
        ws = workspace(DATA / f"scale_ws_export_{n}", {"store": {"memory_limit": f'"{MEMORY}"'}})
        ingest = step([EXE, "-w", str(ws), "ingest", "events", *src, "--json"])
        _check(ingest.json()["accepted"] == n, f"ingest of {n:,} events for the lake")
        shutil.rmtree(root, ignore_errors=True)
        export = step([EXE, "-w", str(ws), "export", "parquet", "--lake", str(root)])
        _check(export.error is None, export.error or "")
        shutil.rmtree(ws)
        steps = {k: {**s.__dict__, "out": ""} for k, s in (("ingest", ingest), ("export", export))}
        marker.write_text(json.dumps({**steps, "files": len(src)}))
    return root, json.loads(marker.read_text())


def _one_file(root: Path) -> str:
    """The lake as one Parquet file (a tiny lake's many files would make its ingest slow for nothing)."""
    import pyarrow.dataset as ds
    import pyarrow.parquet as pq

    path = root / "all.parquet"
    pq.write_table(ds.dataset(root / "events", format="parquet", partitioning="hive").to_table(), path)
    return str(path)


def engine_workspace(backend: str, root: Path) -> Path:
    """A workspace whose analyses read the lake at `root` on `backend`; Spark's driver gets the same 8 GB."""
    engine = {"backend": f'"{backend}"', "lake": json.dumps(str(root))}
    if backend == "pyspark":
        engine["spark_conf"] = '{ "spark.driver.memory" = "8g" }'
    settings = {"store": {"memory_limit": f'"{MEMORY}"'}, "engine": engine}
    return workspace(DATA / f"scale_ws_{backend}_{root.name}", settings)


def _lake_expect(root: Path) -> dict[str, int]:
    import duckdb

    sql = "SELECT count(touchpoint), count(DISTINCT customer_id) FROM read_parquet(?, hive_partitioning = true)"
    mapped, customers = duckdb.execute(sql, [str(root / "events" / "*" / "*.parquet")]).fetchone() or (0, 0)
    return {"mapped": mapped, "customers": customers}


def _engine_rows(part: str, task: str, n: int, name: str, runs: dict[str, Step], expect: dict[str, int]) -> list[Any]:
    d, p = runs["duckdb"], runs["pyspark"]
    outs = {b: (None if r.error else r.json()) for b, r in runs.items()}
    notes = {b: _sane(name, out, expect) for b, out in outs.items() if out is not None}
    if outs["duckdb"] is not None and outs["pyspark"] is not None:
        notes["pyspark"] += "; " + _same(name, outs["duckdb"], outs["pyspark"]) + "; JVM and session start included"
    base = None if d.error else d.seconds
    return [
        _row(part, task, "duckdb", n, d, base, "duckdb", notes.get("duckdb", "")),
        _row(part, task, "pyspark", n, p, base, "duckdb", notes.get("pyspark", "")),
    ]


def _same(name: str, a: dict[str, Any], b: dict[str, Any]) -> str:
    """Whether the pyspark result `b` matches the duckdb result `a` (counts exactly, credit closely)."""
    if name == "flows":
        edges = [{(e["source"], e["target"], e["count"]) for e in x["edges"]} for x in (a, b)]
        same = edges[0] == edges[1] and (a["start"], a["end"]) == (b["start"], b["end"])
        return "same counts as duckdb" if same else "COUNTS DIFFER from duckdb"
    if name == "funnel":
        same = [s["count"] for s in a["steps"]] == [s["count"] for s in b["steps"]]
        return "same counts as duckdb" if same else "COUNTS DIFFER from duckdb"
    credit = {r["key"]: r["conversions"] for r in a["results"]}
    gap = max((abs(r["conversions"] - credit.get(r["key"], 0)) for r in b["results"]), default=0.0)
    return f"credit within {gap:.2g} of duckdb" if gap <= 1e-6 * a["total_conversions"] else "CREDIT DIFFERS"


def _lake_missing() -> str | None:
    """Why the Spark part cannot run yet (None: it can)."""
    helped = subprocess.run([EXE, "export", "parquet", "--help"], capture_output=True, text=True).stdout
    if "--lake" not in helped:
        return "`touchlens export parquet --lake` is not available yet"
    from touchlens.store import settings

    if "engine" not in settings.Settings.model_fields:
        return "the [engine] settings (backend, lake) are not available yet"
    return None


# -- the run ------------------------------------------------------------------------------------------------

NOTES = (
    "seconds = wall time of a fresh child process (interpreter start included); peak_rss_mib = its own peak, "
    "the whole process tree sampled (Spark's JVM included); ratio = seconds / the seconds of `vs` (floor: a plain "
    "DuckDB scan of every column of the same Parquet files); [store] memory_limit = 8GB everywhere (DuckDB spills "
    "beyond it), spark.driver.memory = 8g; the lake: hive partitions by UTC day, zstd, 20 events a customer"
)


def run() -> list[dict[str, Any]]:
    DATA.mkdir(parents=True, exist_ok=True)
    parts = os.environ.get("TOUCHLENS_SCALE_PARTS", "duckdb,spark").split(",")
    sizes = {"duckdb": ("TOUCHLENS_SCALE_EVENTS", "100000000"), "spark": ("TOUCHLENS_SCALE_SPARK_EVENTS", "10000000")}
    measure = {"duckdb": duckdb_part, "spark": spark_part}
    rows: list[dict[str, Any]] = []
    failures: list[str] = []
    for part in parts:
        got, failed = measure[part](int(os.environ.get(*sizes[part])))
        rows, failures = rows + got, failures + failed
    rows = _with_earlier_rows(rows, set(parts))
    write_results("scale", rows, NOTES)
    if failures:
        raise RuntimeError("scale benchmark: steps failed (the rows say which):\n" + "\n".join(failures))
    return rows


def _with_earlier_rows(rows: list[dict[str, Any]], parts: set[str]) -> list[dict[str, Any]]:
    """`rows` and those of the parts not run this time, from the last results file (so one part can be rerun
    alone), in part order, every row with this version's columns."""
    path = RESULTS / "scale.json"
    earlier = json.loads(path.read_text())["rows"] if path.exists() else []
    rows = [r for r in earlier if r["part"].split(":")[0] not in parts] + rows
    rows.sort(key=lambda r: ["duckdb", "spark"].index(r["part"].split(":")[0]))
    columns = list(_row("", "", "", 0, None, None, "", ""))
    return [{c: r.get(c) for c in columns} for r in rows]
