"""The journey layer's periods: one row per customer's period (between conversions) with the touch features drivers
and insights read, kept with the layer so their read is a scan of small rows, not a grouping of every touch.

A row: the period's touches, whether it ends in a conversion (the customer converted more often than its number),
and its touch features as bit masks — per touchpoint, seen in the period, repeated within `REPEAT_WINDOW`,
reached after a wait of more than `WAIT`, reached by switching channel within `SWITCH_WINDOW` (as
`analytics/drivers.py` defines them, windows in `model/periods.py`) — one struct per word of `BITS` touchpoints
it has any of: `word` w holds the touchpoints coded BITS·w to BITS·w + BITS − 1 in `touchpoint_codes`, bit b the
one coded BITS·w + b. Codes are only ever added: a touchpoint seen for the first time (by a refresh or a
rebuild) gets the next number, and no code changes meaning, so masks already stored stay true and a reader who
read the codes before a rebuild still reads the rebuilt masks right (a rebuild that renumbered them, between a
reader's read of the codes and of the periods, gave one touchpoint's features to another). `periods_state`
records the windows and word size the masks were cut by; a reader with others groups the touches itself.

It is written from the layer's touches in the same transactions as they are (`store/journeys.py`): rebuilt with
them, and for the customers a refresh recomputes, their rows from the first period the refresh can change on
replaced (earlier periods ended at a conversion before the customer's new events). Whether a period ends in a
conversion counts the layer's list of conversions (`touches_conversions`). `periods_state` has a row once built; a
store from before the table gets it built from the layer at its next refresh and is read as before until then.
Only SQL of ours runs here; no value reaches it as text.
"""

from __future__ import annotations

import duckdb

from touchlens.model import periods as features
from touchlens.store.events import scalar

# The touches of each period with their flags, then one row per period and word, then the period's row; {table}
# holds the layer's columns (the layer, or the periods a refresh recomputes), {conversions} each customer's
# conversions (`customer_id`, `n`), {words} the words of the rows (COUNTED, or MERGED with stored rows).
SELECT_SQL = """
WITH flagged AS (
  SELECT t.customer_id, t.period, c.code // {bits} AS word, 1::BIGINT << (c.code % {bits}) AS bit,
    coalesce(t.prev_same_period = t.period AND epoch_us(t.ts) - epoch_us(t.prev_same_ts) <= {repeat}, FALSE)
      AS repeated,
    coalesce(t.prev_period = t.period AND epoch_us(t.ts) - epoch_us(t.prev_ts) > {wait}, FALSE) AS waited,
    coalesce(t.prev_period = t.period AND epoch_us(t.ts) - epoch_us(t.prev_ts) <= {switch}
      AND t.channel <> t.prev_channel, FALSE) AS switched
  FROM {table} t JOIN touchpoint_codes c ON c.touchpoint = t.touchpoint
  WHERE t.period >= 0
), counted AS (
  SELECT customer_id, period, word, count(*) AS touches, bit_or(bit) AS seen,
    bit_or(CASE WHEN repeated THEN bit ELSE 0 END) AS repeated,
    bit_or(CASE WHEN waited THEN bit ELSE 0 END) AS waited,
    bit_or(CASE WHEN switched THEN bit ELSE 0 END) AS switched
  FROM flagged GROUP BY customer_id, period, word
), words AS ({words}), conversions AS ({conversions})
SELECT w.customer_id, w.period, sum(w.touches)::BIGINT, w.period < coalesce(any_value(c.n), 0),
  list({{'word': w.word, 'seen': w.seen, 'repeated': w.repeated, 'waited': w.waited, 'switched': w.switched}})
FROM words w LEFT JOIN conversions c ON c.customer_id = w.customer_id
GROUP BY w.customer_id, w.period
"""
COUNTED = "SELECT * FROM counted"
# The words of new touches merged into the stored rows of their periods (a period's count on its first word): masks
# are unions and counts add, so a period whose old touches all stay as they were takes only the new ones' words.
MERGED = """
SELECT customer_id, period, word, sum(touches) AS touches, bit_or(seen) AS seen, bit_or(repeated) AS repeated,
  bit_or(waited) AS waited, bit_or(switched) AS switched
FROM (
  SELECT * FROM counted
  UNION ALL
  SELECT customer_id, period, w.word, CASE WHEN i = 1 THEN touches ELSE 0 END, w.seen, w.repeated, w.waited,
    w.switched
  FROM (
    SELECT p.customer_id, p.period, p.touches, unnest(p.words) AS w, generate_subscripts(p.words, 1) AS i
    FROM periods p JOIN _base b USING (customer_id) WHERE b.merge AND p.period >= b.before
  )
)
GROUP BY customer_id, period, word
"""
# Each customer's conversions, from the layer's list of them (`store/journeys.py` keeps it with the touches).
CONVERSIONS_SQL = "SELECT customer_id, count(*) AS n FROM touches_conversions GROUP BY ALL"
# Touchpoints of the recomputed touches with no code yet, numbered after the last one, in sorted order.
NEW_CODES_SQL = """
INSERT INTO touchpoint_codes
SELECT touchpoint, (SELECT coalesce(max(code), -1) FROM touchpoint_codes) + row_number() OVER (ORDER BY touchpoint)
FROM (SELECT DISTINCT touchpoint FROM {table}) WHERE touchpoint NOT IN (SELECT touchpoint FROM touchpoint_codes)
"""


def built(con: duckdb.DuckDBPyConnection) -> bool:
    return bool(scalar(con, "SELECT count(*) FROM periods_state"))


def current(con: duckdb.DuckDBPyConnection) -> bool:
    """Built, and cut by this code's windows and word size: a refresh may only add to rows cut the same way (a
    refresh merges new touches into stored rows)."""
    kept = con.execute("SELECT repeat_us, wait_us, switch_us, bits FROM periods_state").fetchall()
    return kept == [(*_windows().values(), features.BITS)]


def rebuild_in(con: duckdb.DuckDBPyConnection) -> None:
    """Every period of the layer's touches and conversions, in the caller's transaction (touchpoints keep their
    codes; new ones get the next)."""
    con.execute("DELETE FROM periods")
    con.execute(NEW_CODES_SQL.format(table="touches"))
    con.execute("INSERT INTO periods " + _select("touches", CONVERSIONS_SQL, COUNTED))
    con.execute("DELETE FROM periods_state")
    con.execute("INSERT INTO periods_state VALUES (now(), ?, ?, ?, ?)", [*_windows().values(), features.BITS])


def replace_in(con: duckdb.DuckDBPyConnection, changed: str, merged: str) -> None:
    """The periods a refresh changed replaced, in the caller's transaction: per recomputed customer (temporary table
    `_base`), those from `_base.before` on, by the periods of `changed` (the layer's columns: every touch of those
    periods, for the customers whose old touches changed) and, for the customers only given new touches
    (`_base.merge`), by their stored rows with the new touches of `merged` added. Each is a table or a parenthesized
    query of ours."""
    for table in (changed, merged):
        con.execute(NEW_CODES_SQL.format(table=table))
    conversions = "SELECT customer_id, conversions AS n FROM _base"
    con.execute(
        f"CREATE OR REPLACE TEMP TABLE _periods AS ({_select(changed, conversions, COUNTED)}) "
        f"UNION ALL ({_select(merged, conversions, MERGED)})"
    )
    con.execute("DELETE FROM periods p USING _base b WHERE p.customer_id = b.customer_id AND p.period >= b.before")
    con.execute("INSERT INTO periods SELECT * FROM _periods")
    con.execute("DROP TABLE _periods")


def forget(con: duckdb.DuckDBPyConnection, stored_id: str) -> None:
    """An erased customer's periods gone, in the caller's transaction (a touchpoint's code names nobody)."""
    con.execute("DELETE FROM periods WHERE customer_id = $id", {"id": stored_id})


def _select(table: str, conversions: str, words: str) -> str:
    return SELECT_SQL.format(table=table, conversions=conversions, words=words, bits=features.BITS, **_windows())


def _windows() -> dict[str, int]:
    """The features' windows in microseconds (readers compare theirs with them: `analytics.journeys.
    stored_periods`)."""
    us = features.microseconds
    return {"repeat": us(features.REPEAT_WINDOW), "wait": us(features.WAIT), "switch": us(features.SWITCH_WINDOW)}
