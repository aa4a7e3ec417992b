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

- each ingest batch marks its customers in `touches_stale` with the earliest time of their new events (`since`),
  in the batch's own transaction;
- `refresh` recomputes the stale customers' touches from their `since` on and clears their marks, in one
  transaction: a touch before it keeps its position, period and previous touches (they depend only on what came
  before it), so only the later touches are recomputed and the last two before it get their new next touches.
  Positions and periods go on from the touches kept and the conversions before `since`. A late event recomputes
  its customer from that event on; a mark without `since` (erasure of a shared id, a store from before it)
  recomputes the whole journey;
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
from datetime import UTC, datetime
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

# A refresh recomputes each marked customer's journey from the earliest time its batches brought (`since`; NULL: the
# whole journey). Touches before it keep what they have — positions, periods, previous touches depend only on what
# came before them — except the last two, whose next touches may be new. The marks, one row per customer.
STALE_SQL = """
CREATE OR REPLACE TEMP TABLE _stale AS
SELECT customer_id, CASE WHEN count(since) = count(*) THEN min(since) END AS since FROM touches_stale GROUP BY ALL
"""
# Their touches as they are, narrow: where they are, what the sketches and the context need; `redo`: at or after
# `since`, so recomputed.
OLD_SQL = """
CREATE OR REPLACE TEMP TABLE _old AS
SELECT t.rowid AS r, t.customer_id, t.ts, t.touchpoint, t.pos, t.period, t.next_touchpoint, t.next_ts,
  s.since IS NULL OR t.ts >= s.since AS redo
FROM touches t JOIN _stale s USING (customer_id)
"""
# Their events from `since` on. Events come mostly in time order, so the store's per-block minimum and maximum
# times skip the blocks before the earliest `since` (a semi-join alone scanned every event's columns: 0.35 s at
# 10M events against 0.04 s).
MARKED_SQL = """
CREATE OR REPLACE TEMP TABLE _marked AS
SELECT e.* FROM (
  SELECT customer_id, ts, event_id, touchpoint, channel, coalesce({conversion}, FALSE) AS conv
  FROM events WHERE ts >= ?
) e JOIN _stale s ON e.customer_id = s.customer_id AND (s.since IS NULL OR e.ts >= s.since)
"""
# And their conversions before it, counted (the periods go on from there), from the layer's list of conversions.
BEFORE_SQL = """
CREATE OR REPLACE TEMP TABLE _before AS
SELECT s.customer_id, count(*) AS n FROM touches_conversions c JOIN _stale s ON c.customer_id = s.customer_id
WHERE c.ts < s.since
GROUP BY ALL
"""
# The conversions a rebuild lists: every one of the predicate's, over all events.
CONVERSIONS_SQL = (
    "INSERT INTO touches_conversions SELECT customer_id, ts FROM events WHERE coalesce({conversion}, FALSE)"
)
# Per customer: the touches kept (positions go on from there), the conversions before `since` (periods go on from
# there) and in all, and whether its periods take the new touches by a merge (no touch of it is recomputed: all its
# old touches are before `since`, so its periods' old touches keep their features).
BASE_SQL = """
CREATE OR REPLACE TEMP TABLE _base AS
SELECT s.customer_id, coalesce(k.kept, 0) AS kept, coalesce(c.before, 0) AS before,
  coalesce(c.before, 0) + coalesce(a.n, 0) AS conversions, coalesce(k.redone, 0) = 0 AS merge
FROM _stale s
LEFT JOIN (SELECT customer_id, count(*) FILTER (NOT redo) AS kept, count(*) FILTER (redo) AS redone FROM _old
           GROUP BY ALL) k USING (customer_id)
LEFT JOIN (SELECT customer_id, n AS before FROM _before) c USING (customer_id)
LEFT JOIN (SELECT customer_id, count(*) FILTER (conv) AS n FROM _marked GROUP BY ALL) a USING (customer_id)
"""
# The recomputed touches and the last two kept (their next touches relinked), as SELECT_SQL computes them: the
# windows take, as context, each touchpoint's last kept touch (its previous touch of the same touchpoint) and the
# last three kept touches (the neighbours); positions order the windows, as they order the touches.
FRESH_SQL = """
WITH cut AS (
  SELECT m.customer_id, m.ts, m.event_id, m.touchpoint, m.channel,
    CASE WHEN m.conv THEN -1 ELSE b.before + sum(m.conv::BIGINT) OVER w - m.conv::BIGINT END::BIGINT AS period,
    b.kept + count(m.touchpoint) OVER w - 1 AS pos
  FROM _marked m JOIN _base b USING (customer_id)
  WHERE m.touchpoint IS NOT NULL OR m.conv
  WINDOW w AS (PARTITION BY m.customer_id ORDER BY m.ts, m.event_id ROWS UNBOUNDED PRECEDING)
), same AS (
  SELECT *, lag(ts) OVER s AS prev_same_ts, lag(period) OVER s AS prev_same_period
  FROM (
    SELECT customer_id, ts, event_id, touchpoint, channel, period, pos, FALSE AS context
    FROM cut WHERE touchpoint IS NOT NULL
    UNION ALL
    SELECT customer_id, max_by(ts, pos), NULL, touchpoint, NULL, max_by(period, pos), max(pos), TRUE
    FROM _old WHERE NOT redo GROUP BY customer_id, touchpoint
  )
  WINDOW s AS (PARTITION BY customer_id, touchpoint ORDER BY pos)
), linked AS (
  SELECT customer_id, ts, event_id, touchpoint, channel, period, pos, prev_same_ts, prev_same_period, 0 AS kept
  FROM same WHERE NOT context
  UNION ALL
  SELECT customer_id, ts, event_id, touchpoint, channel, period, pos, prev_same_ts, prev_same_period, kept
  FROM _context
)
SELECT * EXCLUDE (kept) FROM (
  SELECT customer_id, ts, event_id, touchpoint, channel, pos,
    lag(touchpoint) OVER w, lag(ts) OVER w, lag(channel) OVER w,
    lead(touchpoint) OVER w, lead(ts) OVER w, lead(touchpoint, 2) OVER w, lead(ts, 2) OVER w,
    prev_same_ts,
    period, lag(period) OVER w, lead(period) OVER w, lead(period, 2) OVER w, prev_same_period, kept
  FROM linked
  WINDOW w AS (PARTITION BY customer_id ORDER BY pos)
) WHERE pos >= kept - 2
"""
# The touches the fresh ones replace (the recomputed, and the last two kept) and the last three kept (the first of
# them only as the others' previous touch), as `_old` has them, with what was kept.
TAIL_SQL = """
CREATE OR REPLACE TEMP TABLE _tail AS
SELECT o.*, b.kept FROM _old o JOIN _base b USING (customer_id) WHERE o.redo OR o.pos >= b.kept - 3
"""
GONE = "(SELECT * FROM _tail WHERE redo OR pos >= kept - 2)"
# The last three kept touches with the columns the windows read: those `_old` lacks read by row id. Rows read by row
# id are read column by column, and spread over the table (as a rebuild or real traffic leaves them) every column
# read costs a pass over most of its blocks, so the columns `_old` has are taken from there.
CONTEXT_SQL = """
CREATE OR REPLACE TEMP TABLE _context AS
SELECT c.customer_id, c.ts, t.event_id, c.touchpoint, t.channel, c.period, c.pos, t.prev_same_ts, t.prev_same_period,
  c.kept
FROM (SELECT rowid AS r, event_id, channel, prev_same_ts, prev_same_period FROM touches
      WHERE rowid IN (SELECT r FROM _tail WHERE NOT redo)) t
JOIN _tail c USING (r)
"""
# The touches of the periods a refresh can change, once the layer is updated, for the customers whose old touches
# were recomputed: those of each one's periods from `_base.before` on (the conversions before its `since`: earlier
# periods ended before it), the kept ones found by where they are; only the columns `periods.SELECT_SQL` reads (as
# the context above).
CHANGED_SQL = """
CREATE OR REPLACE TEMP TABLE _changed AS
SELECT customer_id, ts, touchpoint, channel, period, prev_ts, prev_channel, prev_period, prev_same_ts, prev_same_period
FROM touches WHERE rowid IN (
  SELECT o.r FROM _old o JOIN _base b USING (customer_id)
  WHERE NOT b.merge AND NOT o.redo AND o.pos < b.kept - 2 AND o.period >= b.before
)
UNION ALL
SELECT f.customer_id, f.ts, f.touchpoint, f.channel, f.period, f.prev_ts, f.prev_channel, f.prev_period, f.prev_same_ts,
  f.prev_same_period
FROM _fresh f JOIN _base b USING (customer_id) WHERE NOT b.merge AND f.period >= b.before
"""
# For the others, the new touches alone (their periods' rows take them by a merge): a query, not a table, as the
# periods read it twice, for its touchpoints and its rows, and a copy of its 19 columns cost more than both.
MERGING_SQL = "(SELECT f.* FROM _fresh f JOIN _base b USING (customer_id) WHERE b.merge AND f.pos >= b.kept)"

# Past this share of the layer's customers, recomputing them one by one costs more than a rebuild.
REBUILD_SHARE = 0.3


def conversion_key(conversion: Conversion) -> str:
    """How the state records a conversion predicate: JSON [sql, values] (readers compare theirs with it)."""
    return json.dumps([conversion[0], list(conversion[1])])


def mark_stale(con: duckdb.DuckDBPyConnection, events_sql: str) -> None:
    """Mark the customers of the new events a query of ours selects (`customer_id` and `ts` columns), each from the
    earliest of its events on, in the caller's transaction."""
    con.execute(f"INSERT INTO touches_stale SELECT customer_id, min(ts) FROM ({events_sql}) GROUP BY ALL")  # noqa: S608


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
    if not scalar(con, "SELECT bool_and(conversions_kept IS TRUE) FROM touches_state"):
        _list_conversions(con, kept)  # a layer from before the list
    con.execute(STALE_SQL)
    stale = int(scalar(con, "SELECT count(*) FROM _stale") or 0)
    # Every customer the store knows, from its small customers table (counting the layer's would scan it).
    everyone = int(scalar(con, "SELECT count(*) FROM customers") or 0)
    if stale > REBUILD_SHARE * everyone:
        return rebuild_in(con, kept)
    sketched = waits.built(con)  # a store from before the wait sketches has them built from the layer below
    with_periods = periods.current(con)  # likewise the periods, and those cut by other windows
    if stale:
        _recompute(con, kept)
        if sketched:
            waits.update(con, GONE, "_fresh")
        if with_periods:
            con.execute(CHANGED_SQL)
            periods.replace_in(con, "_changed", MERGING_SQL)
            con.execute("DROP TABLE _changed")
        for table in ("_fresh", "_tail", "_context", "_base", "_before", "_marked", "_old"):
            con.execute(f"DROP TABLE {table}")
        con.execute("DELETE FROM touches_stale")
    if not sketched:
        waits.rebuild_in(con)
    if not with_periods:
        periods.rebuild_in(con)
    con.execute("DROP TABLE _stale")
    return stale


def _recompute(con: duckdb.DuckDBPyConnection, conversion: Conversion) -> None:
    """The marked customers' touches from their `since` on recomputed in the layer; the old rows left in `_tail`
    (`GONE`), the new in `_fresh`, and per customer what was kept in `_base` (for the sketches and the periods)."""
    sql, params = conversion
    con.execute(OLD_SQL)
    # The earliest `since` as a value, so the scan can skip blocks by it (a subquery's result cannot).
    earliest = con.execute("SELECT CASE WHEN count(since) = count(*) THEN min(since) END FROM _stale").fetchall()[0][0]
    con.execute(MARKED_SQL.format(conversion=sql), [*params, earliest or datetime.min.replace(tzinfo=UTC)])
    con.execute(BEFORE_SQL)
    con.execute(BASE_SQL)
    con.execute(TAIL_SQL)
    con.execute(CONTEXT_SQL)
    con.execute(f"DELETE FROM touches WHERE rowid IN (SELECT r FROM {GONE})")  # noqa: S608
    con.execute("CREATE OR REPLACE TEMP TABLE _fresh AS SELECT * FROM touches LIMIT 0")
    con.execute("INSERT INTO _fresh " + FRESH_SQL)
    con.execute("INSERT INTO touches SELECT * FROM _fresh")
    con.execute(
        "DELETE FROM touches_conversions c USING _stale s "
        "WHERE c.customer_id = s.customer_id AND (s.since IS NULL OR c.ts >= s.since)"
    )
    con.execute("INSERT INTO touches_conversions SELECT customer_id, ts FROM _marked WHERE conv")


def rebuild_in(con: duckdb.DuckDBPyConnection, conversion: Conversion | None = None) -> int:
    """Every customer's touches from the events, in the caller's transaction, periods cut by `conversion` (by
    default the one the layer has)."""
    conversion = conversion or stored(con) or NO_CONVERSION
    con.execute("DELETE FROM touches")
    _insert(con, conversion, "")
    con.execute("DELETE FROM touches_stale")
    con.execute("DELETE FROM touches_state")
    con.execute("INSERT INTO touches_state VALUES (now(), ?, FALSE)", [conversion_key(conversion)])
    _list_conversions(con, conversion)
    waits.rebuild_in(con)
    periods.rebuild_in(con)
    return int(scalar(con, "SELECT count(DISTINCT customer_id) FROM touches") or 0)


def _list_conversions(con: duckdb.DuckDBPyConnection, conversion: Conversion) -> None:
    sql, params = conversion
    con.execute("DELETE FROM touches_conversions")
    con.execute(CONVERSIONS_SQL.format(conversion=sql), params)
    con.execute("UPDATE touches_state SET conversions_kept = TRUE")


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
        "INSERT INTO touches_stale (customer_id) SELECT DISTINCT customer_id FROM events WHERE anonymous_id = $id "
        "AND customer_id <> $id",
        {"id": stored_id},
    )
    if waits.built(con):
        waits.update(con, "touches", which="AND customer_id = $id", params={"id": stored_id})
    con.execute("DELETE FROM touches WHERE customer_id = $id", {"id": stored_id})
    con.execute("DELETE FROM touches_conversions WHERE customer_id = $id", {"id": stored_id})
    periods.forget(con, stored_id)
