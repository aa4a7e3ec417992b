"""The audit log: who signed in, changed the map or the roadmap, ingested data, created a key or erased a customer,
and when.

Entries are only ever added. `detail` holds counts and names, never a password, a token or an erased id.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from touchlens.store.meta import audit_log
from touchlens.vocabulary import ACTIONS


def record(engine: sa.Engine, actor: str, action: str, target: str = "", **detail: Any) -> None:
    """Add one entry; `action` is one of ACTIONS."""
    if action not in ACTIONS:
        raise ValueError(f"unknown audit action '{action}'")
    with engine.begin() as conn:
        conn.execute(
            sa.insert(audit_log).values(
                at=datetime.now(UTC), actor=_text(actor, 200), action=action, target=_text(target, 500), detail=detail
            )
        )


def _text(value: str, length: int) -> str:
    """PostgreSQL's text holds no NUL (a failed sign-in's name may carry one); SQLite's would, so both drop it."""
    return value.replace("\x00", "")[:length]


def entries(engine: sa.Engine, limit: int = 100, action: str | None = None) -> list[dict[str, Any]]:
    """The newest `limit` entries (of one action), newest first."""
    query = sa.select(audit_log).order_by(audit_log.c.id.desc()).limit(limit)
    if action is not None:
        query = query.where(audit_log.c.action == action)
    with engine.connect() as conn:
        rows = [dict(r._mapping) for r in conn.execute(query)]
    for row in rows:
        when: datetime = row["at"]
        row["at"] = (when if when.tzinfo else when.replace(tzinfo=UTC)).isoformat()
    return rows
