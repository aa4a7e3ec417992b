"""Wait sketches: per pair of touchpoints, the waits from a touch to the next as a log-bucketed histogram (a
DDSketch), kept with the journey layer so medians and p90s of waits need no sort of the waits.

A wait of w > 0 seconds falls in bucket ⌈log_γ w⌉ with γ = (1 + α) / (1 − α); waits of 0 in a bucket of their own
(`ZERO`). A bucket i holds the values in (γ^(i−1), γ^i], and its estimate 2γ^i / (γ + 1) is within relative error α
of each of them (`analytics/sketches.py` reads the quantiles). One row per (source, target, bucket) with the count
of waits there; only touches with a next touch count. From a second to a month is about 740 buckets, so a pair
has at most a few hundred rows whatever the data's size. (Rows per day as well would allow a date range, but on
the demo's two years of 1M events they were 0.86 rows a wait: no smaller than the waits, and slower to read than
sorting them. The flows of a date range cut journeys at its ends anyway, which no per-day count can redo.)

Counts add, so merging sketches (of pairs, or of batches) is a SUM, and a customer's touches can be taken out as
exactly as they were put in: `refresh` in `store/journeys.py` subtracts the touches it rewrites as they were and adds
them as they are now, in the same transaction as it rewrites them, so the sketch always equals one rebuilt from the
layer's `touches`.
`pair_waits_state` holds a row once the sketch was built; a store from before it gets it built from the layer at
its next refresh, and is read exactly until then.
"""

from __future__ import annotations

import math
from typing import Any

import duckdb

from touchlens.store.events import scalar

ALPHA = 0.01  # the relative accuracy of every quantile read from the sketch
GAMMA = (1 + ALPHA) / (1 - ALPHA)
ZERO = -(2**31)  # the bucket of waits of 0 s (below every other: 1 µs falls in bucket −690)

# Each touch with a next touch, in its bucket; {which} narrows the touches of {table} (the layer's, or a table of
# the same columns) to some customers, or to none.
CONTRIBUTIONS_SQL = """
SELECT touchpoint AS source, next_touchpoint AS target,
  CASE WHEN wait = 0 THEN {zero} ELSE CAST(ceil(ln(wait) / {ln_gamma}) AS INTEGER) END AS bucket, count(*) AS n
FROM (SELECT ts, touchpoint, next_touchpoint, (epoch_us(next_ts) - epoch_us(ts)) / 1e6 AS wait
      FROM {table} WHERE next_touchpoint IS NOT NULL {which})
GROUP BY ALL
"""
KEY = ("source", "target", "bucket")
SAME_KEY = " AND ".join(f"p.{k} = d.{k}" for k in KEY)


def _contributions(which: str, table: str = "touches") -> str:
    return CONTRIBUTIONS_SQL.format(zero=ZERO, ln_gamma=repr(math.log(GAMMA)), which=which, table=table)


def built(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(scalar(con, "SELECT count(*) FROM pair_waits_state"))


def rebuild_in(con: duckdb.DuckDBPyConnection) -> None:
    """The sketch of every touch in the layer, in the caller's transaction."""
    con.execute("DELETE FROM pair_waits")
    con.execute("INSERT INTO pair_waits " + _contributions(""))
    con.execute("DELETE FROM pair_waits_state")
    con.execute("INSERT INTO pair_waits_state VALUES (now())")


def update(
    con: duckdb.DuckDBPyConnection, gone: str, fresh: str | None = None, which: str = "", params: Any = None
) -> None:
    """Take out the touches of `gone` (the layer's, or a temporary table or parenthesized query of ours with its
    columns) that `which` selects (SQL of ours, `AND …`), and put in all those of `fresh`, in the caller's
    transaction. Each bucket that
    changes is rewritten with its new count (gone at 0); a customer's touches that a batch left as they were come
    out and go back in the same buckets, and cancel before the sketch is touched."""
    keys = ", ".join(KEY)
    parts = [f"SELECT {keys}, -n AS n FROM ({_contributions(which, gone)})"]  # noqa: S608
    if fresh is not None:
        parts.append(f"SELECT {keys}, n FROM ({_contributions('', fresh)})")  # noqa: S608
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _wait_change AS SELECT {keys}, sum(n) AS n FROM "  # noqa: S608
        f"({' UNION ALL '.join(parts)}) GROUP BY ALL HAVING sum(n) <> 0",
        params,
    )
    con.execute(f"""
        CREATE OR REPLACE TEMP TABLE _wait_merged AS
        SELECT {keys}, sum(n)::BIGINT AS n FROM (
          SELECT p.* FROM pair_waits p SEMI JOIN _wait_change d ON {SAME_KEY}
          UNION ALL SELECT {keys}, n FROM _wait_change
        ) GROUP BY ALL HAVING sum(n) <> 0
    """)  # noqa: S608
    con.execute(f"DELETE FROM pair_waits p USING _wait_change d WHERE {SAME_KEY}")  # noqa: S608
    con.execute("INSERT INTO pair_waits SELECT * FROM _wait_merged")
    con.execute("DROP TABLE _wait_merged")
    con.execute("DROP TABLE _wait_change")
