"""Erasure on request: a customer's rows out of every table of the events store, the erasure recorded, and
their later events suppressed until the suppression is lifted.

Only a SHA-256 of the stored id is kept (in `suppressions` and `erasures`), so what remains names nobody.
"""

from __future__ import annotations

import hashlib
import json
import re
from datetime import UTC, datetime

import duckdb

from touchlens.store import journeys
from touchlens.store.events import transaction

# A quarantined record is raw text (a CSV line, a JSON message): the id counts where it stands as a whole token.
_WORD = r"A-Za-z0-9_@.\-"


# Other customers whose events carried the erased id as their anonymous id: those events go too, so their first
# and last seen (kept up from each batch's events, never recomputed by a live refresh) are taken from what is left.
SHARERS_SQL = "SELECT DISTINCT customer_id FROM events WHERE anonymous_id = $id AND customer_id <> $id"
RESEEN_SQL = """
UPDATE customers SET first_seen = s.f, last_seen = s.l FROM (
  SELECT i.id AS customer_id, min(e.ts) AS f, max(e.ts) AS l
  FROM (SELECT unnest($ids) AS id) i LEFT JOIN events e ON e.customer_id = i.id GROUP BY 1
) s WHERE customers.customer_id = s.customer_id
"""


def customer_key(stored_id: str) -> str:
    return hashlib.sha256(stored_id.encode()).hexdigest()


def _token(stored_id: str) -> str:
    return f"(^|[^{_WORD}]){re.escape(stored_id)}($|[^{_WORD}])"


def erase(con: duckdb.DuckDBPyConnection, stored_id: str, actor: str, suppress: bool = True) -> dict[str, int]:
    """Delete one customer everywhere in the events store; returns rows deleted per table."""
    pattern = _token(stored_id)
    statements = {
        "events": ("DELETE FROM events WHERE customer_id = $id OR anonymous_id = $id", {"id": stored_id}),
        "feedback": ("DELETE FROM feedback WHERE customer_id = $id", {"id": stored_id}),
        "customers": ("DELETE FROM customers WHERE customer_id = $id", {"id": stored_id}),
        "quarantine": (
            "DELETE FROM quarantine WHERE regexp_matches(COALESCE(raw, ''), $p) "
            "OR regexp_matches(COALESCE(detail, ''), $p)",
            {"p": pattern},
        ),
    }
    counts: dict[str, int] = {}
    key, now = customer_key(stored_id), datetime.now(UTC)
    with transaction(con):
        journeys.forget(con, stored_id)  # before the events go: it reads whose events carried the id
        sharers = con.execute(SHARERS_SQL, {"id": stored_id}).fetchall()
        for table, (sql, params) in statements.items():
            row = con.execute(sql, params).fetchone()
            counts[table] = int(row[0]) if row else 0
        if sharers:
            con.execute(RESEEN_SQL, {"ids": [r[0] for r in sharers]})
        con.execute("INSERT INTO erasures VALUES (?, ?, ?, ?)", [now, actor, key, json.dumps(counts)])
        if suppress:
            con.execute("INSERT INTO suppressions VALUES (?, ?) ON CONFLICT DO NOTHING", [key, now])
    return counts


def lift(con: duckdb.DuckDBPyConnection, stored_id: str) -> bool:
    """Let events for this customer in again; True when a suppression was lifted."""
    with transaction(con):
        row = con.execute(
            "DELETE FROM suppressions WHERE customer_key = ? RETURNING 1", [customer_key(stored_id)]
        ).fetchall()
    return bool(row)


def compact(con: duckdb.DuckDBPyConnection) -> None:
    """Write the deletions through to the file now, so the erased rows' blocks can be reused."""
    con.execute("FORCE CHECKPOINT")
