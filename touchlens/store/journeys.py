"""The journey layer: every customer's mapped touches in time order, sorted once at ingest so analyses need not.

`touches` holds one row per mapped event (an event a touchpoint claims) with its position in the customer's
journey (ties in time broken by event id, as everywhere), the touch before it and the two after it with their
times, and the customer's previous touch of the same touchpoint. Analyses read these columns instead of sorting
every customer's events again (`analytics/journeys.py` holds the same definition as an Ibis expression, for
engines and options the layer does not serve).

Each touch also has its period: the conversions before it (the map's conversion outcome, counted over all the
customer's events), as attribution paths and drivers cut journeys; -1 for a touch that is a conversion itself.
The neighbours' periods say whether a neighbour is in the same period. The state records the conversion
predicate the periods were cut by; readers with another (the map changed) compute periods from the events, and
the next refresh given the new one rebuilds.

How it stays equal to a rebuild from the events, whatever is killed when:

- each ingest batch marks its customers in `touches_stale`, in the batch's own transaction;
- `refresh` recomputes the stale customers' touches and clears their marks, in one transaction;
- readers take the layer for customers not marked and recompute the marked ones from the events, so every
  answer is as if the layer were rebuilt, between a batch and its refresh too;
- the wait sketches (`store/waits.py`) and the periods (`store/periods.py`) change with the touches, in the same
  transactions;
- `touches_state` says the layer was built once; a store from before the layer has none, and is read from the
  events until its first refresh builds it.

Only SQL of our own runs here: customer ids reach it through tables, never as text; the map's values in the
conversion predicate are bound parameters.
"""

from __future__ import annotations

import json
from typing import Any

import duckdb

from touchlens.store import periods, waits
from touchlens.store.events import scalar, transaction

ORDER_COLUMNS = (
    "customer_id", "ts", "event_id", "touchpoint", "channel", "pos", "prev_touchpoint", "prev_ts", "prev_channel",
    "next_touchpoint", "next_ts", "next2_touchpoint", "next2_ts", "prev_same_ts",
)  # fmt: skip
PERIOD_COLUMNS = ("period", "prev_period", "next_period", "next2_period", "prev_same_period")
COLUMNS = ORDER_COLUMNS + PERIOD_COLUMNS

# A predicate over the `events` columns that picks the map's conversions, as SQL of ours (`ingest.rules.
# outcome_sql`) and the values bound to its `?`s: the periods are cut at these events.
Conversion = tuple[str, list[Any]]
NO_CONVERSION: Conversion = ("FALSE", [])

# One query computes a set of customers' touches; {which} narrows it to the stale customers (or to all). The
# periods count conversions over all the customer's events, mapped or not, so those come along until counted.
# Three sorts: the periods, then the previous touch of the same touchpoint while the rows are still narrow,
# then the neighbours. The same-touchpoint window last carried every neighbour column through its sort: 23%
# slower at 10M events, and twice the spill.
SELECT_SQL = """
WITH marked AS (
  SELECT customer_id, ts, event_id, touchpoint, channel, coalesce({conversion}, FALSE) AS conv
  FROM events WHERE TRUE {which}
), cut AS (
  SELECT customer_id, ts, event_id, touchpoint, channel,
    CASE WHEN conv THEN -1 ELSE (sum(conv::BIGINT) OVER (
      PARTITION BY customer_id ORDER BY ts, event_id ROWS UNBOUNDED PRECEDING) - conv::BIGINT)::BIGINT END AS period
  FROM marked WHERE touchpoint IS NOT NULL OR conv
), same AS (
  SELECT customer_id, ts, event_id, touchpoint, channel, period,
    lag(ts) OVER s AS prev_same_ts, lag(period) OVER s AS prev_same_period
  FROM cut
  WHERE touchpoint IS NOT NULL
  WINDOW s AS (PARTITION BY customer_id, touchpoint ORDER BY ts, event_id)
)
SELECT customer_id, ts, event_id, touchpoint, channel,
  row_number() OVER w - 1,
  lag(touchpoint) OVER w, lag(ts) OVER w, lag(channel) OVER w,
  lead(touchpoint) OVER w, lead(ts) OVER w, lead(touchpoint, 2) OVER w, lead(ts, 2) OVER w,
  prev_same_ts,
  period, lag(period) OVER w, lead(period) OVER w, lead(period, 2) OVER w, prev_same_period
FROM same
WINDOW w AS (PARTITION BY customer_id ORDER BY ts, event_id)
"""
STALE = "AND customer_id IN (SELECT customer_id FROM _stale)"
# The stale customers' touches as they were, with where they are (one scan finds them for the delete and the sketches).
GONE_SQL = f"""
CREATE OR REPLACE TEMP TABLE _gone AS SELECT rowid AS r, ts, touchpoint, next_touchpoint, next_ts FROM touches
WHERE TRUE {STALE}
"""  # noqa: S608

# Past this share of the layer's customers, recomputing them one by one costs more than a rebuild.
REBUILD_SHARE = 0.3


def conversion_key(conversion: Conversion) -> str:
    """How the state records a conversion predicate: JSON [sql, values] (readers compare theirs with it)."""
    return json.dumps([conversion[0], list(conversion[1])])


def mark_stale(con: duckdb.DuckDBPyConnection, customers_sql: str) -> None:
    """Mark the customers a query of ours selects (one `customer_id` column), in the caller's transaction."""
    con.execute(f"INSERT INTO touches_stale SELECT DISTINCT customer_id FROM ({customers_sql})")  # noqa: S608


def stored(con: duckdb.DuckDBPyConnection) -> Conversion | None:
    """The conversion predicate the layer was built with, or None when it was never built."""
    # Fetched to the end, so the connection is free for a relation read next (DuckDB 2 refuses one otherwise).
    rows = con.execute("SELECT conversion FROM touches_state").fetchall()
    if not rows:
        return None
    sql, params = json.loads(rows[0][0])
    return sql, params


def built(con: duckdb.DuckDBPyConnection) -> bool:
    return stored(con) is not None


def refresh(con: duckdb.DuckDBPyConnection, conversion: Conversion | None = None) -> int:
    """Bring the layer up to date in one transaction: the stale customers' touches recomputed (or everything,
    when it was never built, most customers are stale, or `conversion` differs from the one it was cut by).
    Returns how many customers were recomputed."""
    with transaction(con):
        return refresh_in(con, conversion)


def refresh_in(con: duckdb.DuckDBPyConnection, conversion: Conversion | None = None) -> int:
    """`refresh` inside the caller's transaction."""
    kept = stored(con)
    if kept is None or (conversion is not None and conversion_key(conversion) != conversion_key(kept)):
        return rebuild_in(con, conversion or kept or NO_CONVERSION)
    con.execute("CREATE OR REPLACE TEMP TABLE _stale AS SELECT DISTINCT customer_id FROM touches_stale")
    stale = int(scalar(con, "SELECT count(*) FROM _stale") or 0)
    # Every customer the store knows, from its small customers table (counting the layer's would scan it).
    everyone = int(scalar(con, "SELECT count(*) FROM customers") or 0)
    if stale > REBUILD_SHARE * everyone:
        return rebuild_in(con, kept)
    sketched = waits.built(con)  # a store from before the wait sketches has them built from the layer below
    with_periods = periods.built(con)  # likewise the periods
    if stale:
        # The stale customers' old and new touches, kept apart a moment: the sketches count them without a scan.
        con.execute(GONE_SQL)
        con.execute("DELETE FROM touches WHERE rowid IN (SELECT r FROM _gone)")
        con.execute("CREATE OR REPLACE TEMP TABLE _fresh AS SELECT * FROM touches LIMIT 0")
        _insert(con, kept, STALE, "_fresh")
        con.execute("INSERT INTO touches SELECT * FROM _fresh")
        if sketched:
            waits.update(con, "_gone", "_fresh")
        if with_periods:
            periods.replace_in(con, kept)
        con.execute("DROP TABLE _fresh")
        con.execute("DROP TABLE _gone")
        con.execute("DELETE FROM touches_stale")
    if not sketched:
        waits.rebuild_in(con)
    if not with_periods:
        periods.rebuild_in(con, kept)
    con.execute("DROP TABLE _stale")
    return stale


def rebuild_in(con: duckdb.DuckDBPyConnection, conversion: Conversion | None = None) -> int:
    """Every customer's touches from the events, in the caller's transaction, periods cut by `conversion` (by
    default the one the layer has)."""
    conversion = conversion or stored(con) or NO_CONVERSION
    con.execute("DELETE FROM touches")
    _insert(con, conversion, "")
    con.execute("DELETE FROM touches_stale")
    con.execute("DELETE FROM touches_state")
    con.execute("INSERT INTO touches_state VALUES (now(), ?)", [conversion_key(conversion)])
    waits.rebuild_in(con)
    periods.rebuild_in(con, conversion)
    return int(scalar(con, "SELECT count(DISTINCT customer_id) FROM touches") or 0)


def _insert(con: duckdb.DuckDBPyConnection, conversion: Conversion, which: str, into: str = "touches") -> None:
    sql, params = conversion
    con.execute(f"INSERT INTO {into} " + SELECT_SQL.format(conversion=sql, which=which), params)


def current_sql(con: duckdb.DuckDBPyConnection) -> tuple[str, list[Any]]:
    """A query of the layer as a rebuild would give it now, without writing (and its values): the kept touches of
    customers not marked stale, and the marked customers' (or, before the first build, everyone's) from the
    events."""
    kept_conversion = stored(con)
    if kept_conversion is None:
        return SELECT_SQL.format(conversion=NO_CONVERSION[0], which=""), []
    sql, params = kept_conversion
    marked = "SELECT customer_id FROM touches_stale"
    kept = f"SELECT {', '.join(COLUMNS)} FROM touches WHERE customer_id NOT IN ({marked})"  # noqa: S608
    fresh = SELECT_SQL.format(conversion=sql, which=f"AND customer_id IN ({marked})")
    return f"{kept} UNION ALL ({fresh})", params


def forget(con: duckdb.DuckDBPyConnection, stored_id: str) -> None:
    """An erased customer's touches gone now, in the caller's transaction; customers whose events carried the id
    as their anonymous id are marked, so the next refresh recomputes them without those events."""
    con.execute(
        "INSERT INTO touches_stale SELECT DISTINCT customer_id FROM events WHERE anonymous_id = $id "
        "AND customer_id <> $id",
        {"id": stored_id},
    )
    if waits.built(con):
        waits.update(con, "touches", which="AND customer_id = $id", params={"id": stored_id})
    con.execute("DELETE FROM touches WHERE customer_id = $id", {"id": stored_id})
    periods.forget(con, stored_id)
