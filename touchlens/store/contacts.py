"""The proactive contacts a running rule sent or withheld, and when each rule started (metadata store)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from touchlens.store.meta import proactive_contacts, proactive_runs, utc


def started(engine: sa.Engine, rule: str, now: datetime) -> datetime:
    """When the rule started running; now, the first time it is asked (contacts due before are history)."""
    with engine.begin() as conn:
        found = conn.execute(sa.select(proactive_runs.c.started_at).where(proactive_runs.c.rule == rule)).scalar()
        if found is None:
            conn.execute(sa.insert(proactive_runs).values(rule=rule, started_at=now))
            return now
    return utc(found)


def recorded(engine: sa.Engine, rule: str) -> set[tuple[str, datetime]]:
    """(customer, trigger time) of the rule's contacts already sent or withheld."""
    query = sa.select(proactive_contacts.c.customer_id, proactive_contacts.c.trigger_at).where(
        proactive_contacts.c.rule == rule
    )
    with engine.connect() as conn:
        return {(c, utc(t)) for c, t in conn.execute(query)}


def sent_times(engine: sa.Engine) -> dict[str, list[datetime]]:
    """Every customer's proactive contacts sent by any rule (for the contact cap)."""
    query = sa.select(proactive_contacts.c.customer_id, proactive_contacts.c.sent_at).where(
        proactive_contacts.c.status == "sent"
    )
    found: dict[str, list[datetime]] = {}
    with engine.connect() as conn:
        for customer, at in conn.execute(query):
            found.setdefault(customer, []).append(utc(at))
    return found


def record(engine: sa.Engine, rows: list[dict[str, Any]]) -> None:
    if rows:
        with engine.begin() as conn:
            conn.execute(sa.insert(proactive_contacts), rows)


def contacts(engine: sa.Engine, rule: str) -> list[dict[str, Any]]:
    query = (
        sa.select(proactive_contacts)
        .where(proactive_contacts.c.rule == rule)
        .order_by(proactive_contacts.c.due_at, proactive_contacts.c.id)
    )
    with engine.connect() as conn:
        return [
            {k: utc(v) if isinstance(v, datetime) else v for k, v in r._mapping.items()} for r in conn.execute(query)
        ]


def forget(engine: sa.Engine, customer_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(proactive_contacts).where(proactive_contacts.c.customer_id == customer_id))
