"""The journey layer: every customer's mapped touches in time order, sorted once at ingest so analyses need not.

`touches` holds one row per mapped event (an event a touchpoint claims) with its position in the customer's
journey (ties in time broken by event id, as everywhere), the touch before it and the two after it with their
times, and the customer's previous touch of the same touchpoint. Analyses read these columns instead of sorting
every customer's events again (`analytics/journeys.py` holds the same definition as an Ibis expression, for
engines and options the layer does not serve).

How it stays equal to a rebuild from the events, whatever is killed when:

- each ingest batch marks its customers in `touches_stale`, in the batch's own transaction;
- `refresh` recomputes the stale customers' touches and clears their marks, in one transaction;
- readers take the layer for customers not marked and recompute the marked ones from the events, so every
  answer is as if the layer were rebuilt, between a batch and its refresh too;
- `touches_state` says the layer was built once; a store from before the layer has none, and is read from the
  events until its first refresh builds it.

Only SQL of our own runs here: customer ids reach it through tables, never as text.
"""

from __future__ import annotations

import duckdb

from touchlens.store.events import scalar, transaction

COLUMNS = (
    "customer_id", "ts", "event_id", "touchpoint", "channel", "pos", "prev_touchpoint", "prev_ts", "prev_channel",
    "next_touchpoint", "next_ts", "next2_touchpoint", "next2_ts", "prev_same_ts",
)  # fmt: skip

# One query computes a set of customers' touches; {which} narrows it to the stale customers (or to all).
SELECT_SQL = """
SELECT customer_id, ts, event_id, touchpoint, channel,
  row_number() OVER w - 1,
  lag(touchpoint) OVER w, lag(ts) OVER w, lag(channel) OVER w,
  lead(touchpoint) OVER w, lead(ts) OVER w, lead(touchpoint, 2) OVER w, lead(ts, 2) OVER w,
  lag(ts) OVER (PARTITION BY customer_id, touchpoint ORDER BY ts, event_id)
FROM events
WHERE touchpoint IS NOT NULL {which}
WINDOW w AS (PARTITION BY customer_id ORDER BY ts, event_id)
"""
LAYER_SQL = "INSERT INTO touches " + SELECT_SQL
STALE = "AND customer_id IN (SELECT customer_id FROM _stale)"

# Past this share of the layer's customers, recomputing them one by one costs more than a rebuild.
REBUILD_SHARE = 0.3


def mark_stale(con: duckdb.DuckDBPyConnection, customers_sql: str) -> None:
    """Mark the customers a query of ours selects (one `customer_id` column), in the caller's transaction."""
    con.execute(f"INSERT INTO touches_stale SELECT DISTINCT customer_id FROM ({customers_sql})")  # noqa: S608


def built(con: duckdb.DuckDBPyConnection) -> bool:
    # Fetched to the end, so the connection is free for a relation read next (DuckDB 2 refuses one otherwise).
    return bool(con.execute("SELECT count(*) FROM touches_state").fetchall()[0][0])


def refresh(con: duckdb.DuckDBPyConnection) -> int:
    """Bring the layer up to date in one transaction: the stale customers' touches recomputed (or everything,
    when it was never built or most customers are stale). Returns how many customers were recomputed."""
    with transaction(con):
        return refresh_in(con)


def refresh_in(con: duckdb.DuckDBPyConnection) -> int:
    """`refresh` inside the caller's transaction."""
    if not built(con):
        return rebuild_in(con)
    con.execute("CREATE OR REPLACE TEMP TABLE _stale AS SELECT DISTINCT customer_id FROM touches_stale")
    stale = int(scalar(con, "SELECT count(*) FROM _stale") or 0)
    if stale == 0:
        return 0
    # Every customer the store knows, from its small customers table (counting the layer's would scan it).
    everyone = int(scalar(con, "SELECT count(*) FROM customers") or 0)
    if stale > REBUILD_SHARE * everyone:
        return rebuild_in(con)
    con.execute("DELETE FROM touches WHERE customer_id IN (SELECT customer_id FROM _stale)")
    con.execute(LAYER_SQL.format(which=STALE))
    con.execute("DELETE FROM touches_stale")
    con.execute("DROP TABLE _stale")
    return stale


def rebuild_in(con: duckdb.DuckDBPyConnection) -> int:
    """Every customer's touches from the events, in the caller's transaction."""
    con.execute("DELETE FROM touches")
    con.execute(LAYER_SQL.format(which=""))
    con.execute("DELETE FROM touches_stale")
    con.execute("DELETE FROM touches_state")
    con.execute("INSERT INTO touches_state VALUES (now())")
    return int(scalar(con, "SELECT count(DISTINCT customer_id) FROM touches") or 0)


def current_sql(con: duckdb.DuckDBPyConnection) -> str:
    """A query of the layer as a rebuild would give it now, without writing: the kept touches of customers not
    marked stale, and the marked customers' (or, before the first build, everyone's) from the events."""
    if not built(con):
        return SELECT_SQL.format(which="")
    marked = "SELECT customer_id FROM touches_stale"
    kept = f"SELECT {', '.join(COLUMNS)} FROM touches WHERE customer_id NOT IN ({marked})"  # noqa: S608
    return f"{kept} UNION ALL {SELECT_SQL.format(which=f'AND customer_id IN ({marked})')}"


def forget(con: duckdb.DuckDBPyConnection, stored_id: str) -> None:
    """An erased customer's touches gone now, in the caller's transaction; customers whose events carried the id
    as their anonymous id are marked, so the next refresh recomputes them without those events."""
    con.execute(
        "INSERT INTO touches_stale SELECT DISTINCT customer_id FROM events WHERE anonymous_id = $id "
        "AND customer_id <> $id",
        {"id": stored_id},
    )
    con.execute("DELETE FROM touches WHERE customer_id = $id", {"id": stored_id})
