"""Walkthrough audits and their steps in the metadata store."""

from __future__ import annotations

from datetime import datetime
from typing import Any

import sqlalchemy as sa

from touchlens.store.meta import audit_steps, audits, utc


def add(engine: sa.Engine, values: dict[str, Any]) -> int:
    with engine.begin() as conn:
        return int(conn.execute(sa.insert(audits).values(**values)).inserted_primary_key[0])  # type: ignore[index]


def one(engine: sa.Engine, audit_id: int) -> dict[str, Any] | None:
    with engine.connect() as conn:
        row = conn.execute(sa.select(audits).where(audits.c.id == audit_id)).first()
    return None if row is None else _times(dict(row._mapping))


def every(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audits).order_by(audits.c.created_at.desc(), audits.c.id.desc())).all()
    return [_times(dict(r._mapping)) for r in rows]


def steps(engine: sa.Engine, audit_id: int) -> dict[str, dict[str, Any]]:
    with engine.connect() as conn:
        rows = conn.execute(sa.select(audit_steps).where(audit_steps.c.audit_id == audit_id)).all()
    return {r.touchpoint: _times(dict(r._mapping)) for r in rows}


def save_step(engine: sa.Engine, values: dict[str, Any]) -> None:
    """A step recorded, or recorded again (the latest answer stands)."""
    key = (audit_steps.c.audit_id == values["audit_id"]) & (audit_steps.c.touchpoint == values["touchpoint"])
    with engine.begin() as conn:
        conn.execute(sa.delete(audit_steps).where(key))
        conn.execute(sa.insert(audit_steps).values(**values))


def finish(engine: sa.Engine, audit_id: int, at: datetime) -> None:
    with engine.begin() as conn:
        conn.execute(sa.update(audits).where(audits.c.id == audit_id).values(finished_at=at))


def _times(row: dict[str, Any]) -> dict[str, Any]:
    return {k: utc(v) if isinstance(v, datetime) else v for k, v in row.items()}
