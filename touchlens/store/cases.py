"""Follow-up cases in the metadata store, and the reads of the events store that find and follow them up.

A case is opened once per survey response (unique on source and response id), so scanning the same responses
again opens nothing twice. It keeps what the customer said (already scrubbed at ingest) and the customer's id
as stored, which is why erasure deletes a customer's cases too.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from datetime import datetime
from typing import Any

import duckdb
import pyarrow as pa
import sqlalchemy as sa

from touchlens.store.meta import cases

# A response that calls for a follow-up: a low score on its metric's scale, or a negative comment. The metrics'
# conventions are touchlens's everywhere: CSAT 1-2 of 5, an NPS detractor (0-6), CES 5-7 of 7 (more effort),
# a rating in the bottom quarter of its scale.
UNHAPPY_SQL = """
SELECT * FROM (
  SELECT source, response_id, touchpoint, customer_id, metric, score, scale_min, scale_max, comment, sentiment, ts,
    (metric = 'csat' AND score <= 2) OR (metric = 'nps' AND score <= 6) OR (metric = 'ces' AND score >= 5)
      OR (metric = 'rating' AND score - scale_min <= 0.25 * (scale_max - scale_min)) AS low,
    comment IS NOT NULL AND sentiment <= $negative AS negative
  FROM feedback
  WHERE ts >= $since AND NOT starts_with(customer_id, 'anon:')
)
WHERE low OR negative
ORDER BY ts, source, response_id
"""
# Whether each (customer, closed_at) had any event after it: did the followed-up customer come back.
CAME_BACK_SQL = """
SELECT c.id, EXISTS (SELECT 1 FROM events e WHERE e.customer_id = c.customer_id AND e.ts > c.closed_at)
FROM _closed c
"""
JOURNEY_SQL = """
SELECT ts, event, touchpoint, channel FROM events WHERE customer_id = $customer AND ts <= $until
ORDER BY ts DESC, event_id DESC LIMIT $limit
"""
SAID_SQL = """
SELECT ts, touchpoint, metric, score, comment FROM feedback WHERE customer_id = $customer
ORDER BY ts DESC LIMIT $limit
"""


def unhappy(con: duckdb.DuckDBPyConnection, since: datetime, negative: float) -> list[dict[str, Any]]:
    """Responses since `since` that call for a follow-up, oldest first."""
    cursor = con.execute(UNHAPPY_SQL, {"since": since, "negative": negative})
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def known(engine: sa.Engine) -> tuple[set[tuple[str, str]], set[tuple[str, str | None]]]:
    """The responses that have a case, and the (customer, touchpoint) pairs with a case not closed."""
    with engine.connect() as conn:
        rows = conn.execute(sa.select(cases.c.source, cases.c.response_id, cases.c.customer_id,
                                      cases.c.touchpoint, cases.c.status)).all()  # fmt: skip
    return {(r[0], r[1]) for r in rows}, {(r[2], r[3]) for r in rows if r[4] != "closed"}


def add(engine: sa.Engine, rows: Sequence[dict[str, Any]]) -> list[int]:
    """Insert new cases; their ids."""
    ids: list[int] = []
    with engine.begin() as conn:
        for row in rows:
            ids.append(int(conn.execute(sa.insert(cases).values(**row)).inserted_primary_key[0]))  # type: ignore[index]
    return ids


def listing(
    engine: sa.Engine, status: Iterable[str] | None = None, touchpoint: str | None = None
) -> list[dict[str, Any]]:
    """Cases, newest first, of the given statuses and touchpoint."""
    query = sa.select(cases).order_by(cases.c.opened_at.desc(), cases.c.id.desc())
    if status is not None:
        query = query.where(cases.c.status.in_(list(status)))
    if touchpoint is not None:
        query = query.where(cases.c.touchpoint == touchpoint)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]


def one(engine: sa.Engine, case_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(cases).where(cases.c.id == case_id)).first()
    return None if row is None else dict(row._mapping)


def update(engine: sa.Engine, case_id: int, values: dict[str, Any]) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(cases).where(cases.c.id == case_id).values(**values))


def comment(engine: sa.Engine, source: str, response_id: str, text: str, sentiment: float | None) -> None:
    """A comment that came after the score (a one-click rating's) onto the case that score opened."""
    where = (cases.c.source == source) & (cases.c.response_id == response_id) & cases.c.comment.is_(None)
    with engine.begin() as conn:
        conn.execute(sa.update(cases).where(where).values(comment=text, sentiment=sentiment))


def forget(engine: sa.Engine, customer_id: str) -> int:
    """Delete an erased customer's cases; how many."""
    with engine.begin() as conn:
        return int(conn.execute(sa.delete(cases).where(cases.c.customer_id == customer_id)).rowcount)


def came_back(con: duckdb.DuckDBPyConnection, closed: Sequence[tuple[int, str, datetime]]) -> dict[int, bool]:
    """For each closed case (id, customer, closed at): whether the customer had an event after it closed."""
    if not closed:
        return {}
    table = pa.table(
        {
            "id": pa.array([c[0] for c in closed], pa.int64()),
            "customer_id": pa.array([c[1] for c in closed], pa.string()),
            "closed_at": pa.array([c[2] for c in closed], pa.timestamp("us", tz="UTC")),
        }
    )
    con.register("_closed", table)
    try:
        return {int(i): bool(back) for i, back in con.execute(CAME_BACK_SQL).fetchall()}
    finally:
        con.unregister("_closed")


def journey(con: duckdb.DuckDBPyConnection, customer: str, until: datetime, limit: int) -> list[dict[str, Any]]:
    """The customer's latest events up to `until`, newest first."""
    cursor = con.execute(JOURNEY_SQL, {"customer": customer, "until": until, "limit": limit})
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]


def said(con: duckdb.DuckDBPyConnection, customer: str, limit: int) -> list[dict[str, Any]]:
    """The customer's latest survey answers, newest first."""
    cursor = con.execute(SAID_SQL, {"customer": customer, "limit": limit})
    names = [d[0] for d in cursor.description or []]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]
