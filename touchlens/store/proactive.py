"""The events store's side of replaying a proactive rule: trigger and cancelling times per customer, earlier
proactive contacts, and, for the contacts that would have gone out, their outcomes and overlapping touchpoints.

Predicates are ours: a trigger is `touchpoint = ?` or `event = ?`, an outcome the SQL `ingest.rules` makes from
the map; every value is bound. Customers and times travel as Arrow tables, never as text.
"""

from __future__ import annotations

from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

import duckdb
import pyarrow as pa

Times = dict[str, list[datetime]]


def times(con: duckdb.DuckDBPyConnection, column: str, values: Sequence[str], persona: str | None = None) -> Times:
    """Each customer's event times where `column` (touchpoint or event) is one of `values`."""
    assert column in ("touchpoint", "event")
    sql = f"SELECT customer_id, ts FROM events WHERE {column} IN (SELECT unnest($values::VARCHAR[]))"  # noqa: S608
    params: dict[str, Any] = {"values": list(values)}
    if persona is not None:
        sql += " AND customer_id IN (SELECT customer_id FROM customers WHERE persona = $persona)"
        params["persona"] = persona
    found: Times = {}
    for customer, ts in con.execute(sql + " ORDER BY customer_id, ts", params).fetchall():
        found.setdefault(customer, []).append(ts)
    return found


def history_end(con: duckdb.DuckDBPyConnection) -> datetime | None:
    # Fetched to the end: DuckDB 2 refuses the next registration on a connection with an unfinished result.
    rows = con.execute("SELECT max(ts) FROM events").fetchall()
    return rows[0][0] if rows else None


def outcome_hits(
    con: duckdb.DuckDBPyConnection,
    due: Sequence[tuple[str, datetime]],
    outcome: tuple[str, list[Any]],
    within: timedelta,
) -> list[bool]:
    """For each (customer, due time): whether an outcome event followed within `within`."""
    sql, params = outcome
    query = f"""
    SELECT s.i, EXISTS (SELECT 1 FROM events e WHERE e.customer_id = s.customer_id AND e.ts > s.due
                        AND e.ts <= s.due + to_microseconds(?) AND ({sql}))
    FROM _due s ORDER BY s.i"""  # noqa: S608
    return _per_row(con, due, query, [int(within.total_seconds() * 1e6), *params])


def stayed(con: duckdb.DuckDBPyConnection, due: Sequence[tuple[str, datetime]], inactive: timedelta) -> list[bool]:
    """For each (customer, due time): whether the customer did anything within `inactive` after it. The contacts
    proactive rules sent (source `proactive`) are ours, not the customer's doing: they do not count."""
    query = """
    SELECT s.i, EXISTS (SELECT 1 FROM events e WHERE e.customer_id = s.customer_id AND e.ts > s.due
                        AND e.ts <= s.due + to_microseconds(?) AND e.source <> 'proactive')
    FROM _due s ORDER BY s.i"""
    return _per_row(con, due, query, [int(inactive.total_seconds() * 1e6)])


def overlaps(
    con: duckdb.DuckDBPyConnection, due: Sequence[tuple[str, datetime]], around: timedelta, own: str | None
) -> dict[str, int]:
    """Touchpoint → how many of the contacts came within `around` of one of its events for the same customer."""
    query = """
    SELECT e.touchpoint, count(DISTINCT s.i) FROM _due s JOIN events e ON e.customer_id = s.customer_id
    WHERE e.touchpoint IS NOT NULL AND e.touchpoint IS DISTINCT FROM ? AND abs(epoch(e.ts) - epoch(s.due)) <= ?
    GROUP BY 1 ORDER BY 2 DESC, 1"""
    _register(con, due)
    try:
        rows = con.execute(query, [own, around.total_seconds()]).fetchall()
    finally:
        con.unregister("_due")
    return {tp: int(n) for tp, n in rows}


def _per_row(
    con: duckdb.DuckDBPyConnection, due: Sequence[tuple[str, datetime]], query: str, params: list[Any]
) -> list[bool]:
    if not due:
        return []
    _register(con, due)
    try:
        return [bool(hit) for _, hit in con.execute(query, params).fetchall()]
    finally:
        con.unregister("_due")


def _register(con: duckdb.DuckDBPyConnection, due: Sequence[tuple[str, datetime]]) -> None:
    table = pa.table(
        {
            "i": pa.array(range(len(due)), pa.int64()),
            "customer_id": pa.array([c for c, _ in due], pa.string()),
            "due": pa.array([t for _, t in due], pa.timestamp("us", tz="UTC")),
        }
    )
    con.register("_due", table)


def log_events(con: duckdb.DuckDBPyConnection, source: str, what: str, accepted: int, now: datetime) -> None:
    """An ingest-log row for events stored without a file, so the store's version (and caches) move at once."""
    con.execute(
        "INSERT INTO ingest_log VALUES (?, 'events', ?, NULL, ?, ?, 0, 0, ?, ?)",
        [source, what, accepted, accepted, now, now],
    )
