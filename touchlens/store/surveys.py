"""The events store's side of survey links: whether a link was answered, whether its customer was erased, a
comment added to an answer, and the log row that tells caches an answer landed.

Answers themselves go in through the feedback pipeline (`ingest/feedback.py`) like any imported response,
under source `SOURCE` and the link's response id, so one link is one row.
"""

from __future__ import annotations

from datetime import datetime

import duckdb

from touchlens.store.erasure import customer_key
from touchlens.store.events import scalar, transaction

SOURCE = "survey"


def answered(con: duckdb.DuckDBPyConnection, response_id: str) -> bool:
    sql = "SELECT count(*) FROM feedback WHERE source = ? AND response_id = ?"
    return bool(scalar(con, sql, [SOURCE, response_id]))


def answers_for(con: duckdb.DuckDBPyConnection, touchpoint: str) -> int:
    return int(scalar(con, "SELECT count(*) FROM feedback WHERE source = ? AND touchpoint = ?", [SOURCE, touchpoint]))


def erased(con: duckdb.DuckDBPyConnection, stored_id: str, since: datetime) -> bool:
    """Whether the customer's later events are suppressed, or they were erased since `since` (the link's
    making): either way the link must not bring them back."""
    key = customer_key(stored_id)
    sql = (
        "SELECT (SELECT count(*) FROM suppressions WHERE customer_key = $k) "
        '+ (SELECT count(*) FROM erasures WHERE customer_key = $k AND "at" >= $since)'
    )
    row = con.execute(sql, {"k": key, "since": since}).fetchone()
    return bool(row and row[0])


def add_comment(
    con: duckdb.DuckDBPyConnection, response_id: str, comment: str, sentiment: float | None, now: datetime
) -> bool:
    """The comment on an answer that has none yet (a one-click rating, then its comment page); False when it
    has one already or is gone."""
    with transaction(con):
        row = con.execute(
            "UPDATE feedback SET comment = ?, sentiment = ? WHERE source = ? AND response_id = ? "
            "AND comment IS NULL RETURNING 1",
            [comment, sentiment, SOURCE, response_id],
        ).fetchall()
        if row:
            log(con, "survey comment", 0, now)
    return bool(row)


def log(con: duckdb.DuckDBPyConnection, what: str, accepted: int, now: datetime) -> None:
    """An ingest-log row for an answer or a comment, so the store's version (and every cache keyed by it)
    moves at once."""
    con.execute(
        "INSERT INTO ingest_log VALUES (?, 'feedback', ?, NULL, 1, ?, ?, 0, ?, ?)",
        [SOURCE, what, accepted, 1 - accepted, now, now],
    )


def reached(con: duckdb.DuckDBPyConnection, touchpoint: str, since: datetime) -> list[str]:
    """Customers (as stored) who met the touchpoint at or after `since`, in id order: a mail-merge's list."""
    rows = con.execute(
        "SELECT DISTINCT customer_id FROM events WHERE touchpoint = ? AND ts >= ? ORDER BY 1", [touchpoint, since]
    ).fetchall()
    return [r[0] for r in rows]
