"""The proactive contacts a running rule sent or withheld, and when each rule started (metadata store)."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from touchlens.store.meta import proactive_contacts, proactive_runs, utc

QUEUED = "queued"  # waiting for the messaging tool to fetch and confirm it


def started(engine: sa.Engine, rule: str, now: datetime) -> datetime:
    """When the rule started running; now, the first time it is asked (contacts due before are history)."""
    with engine.begin() as conn:
        found = conn.execute(sa.select(proactive_runs.c.started_at).where(proactive_runs.c.rule == rule)).scalar()
        if found is None:
            conn.execute(sa.insert(proactive_runs).values(rule=rule, started_at=now))
            return now
    return utc(found)


def started_at(engine: sa.Engine, rule: str) -> datetime | None:
    """When the rule started running; None while it never ran."""
    with engine.connect() as conn:
        found = conn.execute(sa.select(proactive_runs.c.started_at).where(proactive_runs.c.rule == rule)).scalar()
    return None if found is None else utc(found)


def recorded(engine: sa.Engine, rule: str) -> set[tuple[str, datetime]]:
    """(customer, trigger time) of the rule's contacts already sent or withheld."""
    query = sa.select(proactive_contacts.c.customer_id, proactive_contacts.c.trigger_at).where(
        proactive_contacts.c.rule == rule
    )
    with engine.connect() as conn:
        return {(c, utc(t)) for c, t in conn.execute(query)}


def sent_times(engine: sa.Engine) -> dict[str, list[datetime]]:
    """Every customer's proactive contacts sent by any rule, or queued for the messaging tool (at their due time:
    they are about to be sent), for the contact cap."""
    at = sa.func.coalesce(proactive_contacts.c.sent_at, proactive_contacts.c.due_at)
    query = sa.select(proactive_contacts.c.customer_id, at).where(proactive_contacts.c.status.in_(("sent", QUEUED)))
    found: dict[str, list[datetime]] = {}
    with engine.connect() as conn:
        for customer, at in conn.execute(query):
            found.setdefault(customer, []).append(utc(at))
    return found


def held_times(engine: sa.Engine, rule: str) -> dict[str, list[datetime]]:
    """The rule's withheld contacts, at their due time: against the rule's own cap they count as if sent."""
    query = sa.select(proactive_contacts.c.customer_id, proactive_contacts.c.due_at).where(
        proactive_contacts.c.rule == rule, proactive_contacts.c.status == "held_out"
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
    return _rows(engine, proactive_contacts.c.rule == rule)


def queued(engine: sa.Engine, rule: str | None) -> list[dict[str, Any]]:
    """The contacts waiting for the messaging tool, oldest due first (one rule's, or every rule's)."""
    where = proactive_contacts.c.status == QUEUED
    return _rows(engine, where if rule is None else sa.and_(where, proactive_contacts.c.rule == rule))


def by_ids(engine: sa.Engine, ids: list[int]) -> dict[int, dict[str, Any]]:
    return {r["id"]: r for r in _rows(engine, proactive_contacts.c.id.in_(ids))} if ids else {}


def mark_sent(engine: sa.Engine, sent: list[tuple[int, datetime]]) -> None:
    """Queued contacts the messaging tool confirmed, with when it sent them."""
    with engine.begin() as conn:
        for contact_id, at in sent:
            conn.execute(
                sa.update(proactive_contacts)
                .where(proactive_contacts.c.id == contact_id, proactive_contacts.c.status == QUEUED)
                .values(status="sent", sent_at=at)
            )


def _rows(engine: sa.Engine, where: sa.ColumnElement[bool]) -> list[dict[str, Any]]:
    query = sa.select(proactive_contacts).where(where).order_by(proactive_contacts.c.due_at, proactive_contacts.c.id)
    with engine.connect() as conn:
        return [
            {k: utc(v) if isinstance(v, datetime) else v for k, v in r._mapping.items()} for r in conn.execute(query)
        ]


def forget(engine: sa.Engine, customer_id: str) -> None:
    with engine.begin() as conn:
        conn.execute(sa.delete(proactive_contacts).where(proactive_contacts.c.customer_id == customer_id))
