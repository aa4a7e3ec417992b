"""Alert rules and the alerts they raised, in the metadata store; and the small reads of the events store the
rules judge (CSAT per touchpoint in a recent window and the four weeks before it, answers per touchpoint)."""

from __future__ import annotations

from datetime import datetime, timedelta
from typing import Any

import duckdb
import sqlalchemy as sa

from touchlens.store.meta import alert_events, alert_rules, utc

CSAT_SQL = """
SELECT touchpoint,
  count(*) FILTER (WHERE ts >= $recent) AS recent_n,
  count(*) FILTER (WHERE ts >= $recent AND score >= 4) AS recent_satisfied,
  count(*) FILTER (WHERE ts < $recent) AS base_n,
  count(*) FILTER (WHERE ts < $recent AND score >= 4) AS base_satisfied
FROM feedback
WHERE metric = 'csat' AND touchpoint IS NOT NULL AND ts >= $base AND ts <= $now
GROUP BY touchpoint ORDER BY touchpoint
"""
VOLUME_SQL = """
SELECT touchpoint, count(*) FROM feedback WHERE touchpoint IS NOT NULL AND ts >= $since AND ts <= $now
GROUP BY touchpoint
"""


def csat_windows(
    con: duckdb.DuckDBPyConnection, now: datetime, window: timedelta, baseline: timedelta
) -> list[tuple[str, int, int, int, int]]:
    """(touchpoint, recent answers, recent satisfied, baseline answers, baseline satisfied) for CSAT."""
    params = {"recent": now - window, "base": now - window - baseline, "now": now}
    return [tuple(r) for r in con.execute(CSAT_SQL, params).fetchall()]


def volumes(con: duckdb.DuckDBPyConnection, now: datetime, window: timedelta) -> dict[str, int]:
    """Answers per touchpoint in the window up to now."""
    return {tp: int(n) for tp, n in con.execute(VOLUME_SQL, {"since": now - window, "now": now}).fetchall()}


def add_rule(engine: sa.Engine, values: dict[str, Any]) -> int:
    with engine.begin() as conn:
        return int(conn.execute(sa.insert(alert_rules).values(**values)).inserted_primary_key[0])  # type: ignore[index]


def rules(engine: sa.Engine) -> list[dict[str, Any]]:
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(sa.select(alert_rules).order_by(alert_rules.c.id))]


def remove_rule(engine: sa.Engine, rule_id: int) -> bool:
    with engine.begin() as conn:
        conn.execute(sa.delete(alert_events).where(alert_events.c.rule_id == rule_id))
        return bool(conn.execute(sa.delete(alert_rules).where(alert_rules.c.id == rule_id)).rowcount)


def open_events(engine: sa.Engine, rule_id: int) -> dict[str, dict[str, Any]]:
    """The rule's alerts not cleared, by subject."""
    query = sa.select(alert_events).where((alert_events.c.rule_id == rule_id) & alert_events.c.cleared_at.is_(None))
    with engine.connect() as conn:
        return {r.subject: dict(r._mapping) for r in conn.execute(query)}


def fire(engine: sa.Engine, rule_id: int, subject: str, message: str, now: datetime) -> int:
    values = {"rule_id": rule_id, "subject": subject, "message": message, "fired_at": now, "delivery": {}}
    with engine.begin() as conn:
        return int(conn.execute(sa.insert(alert_events).values(**values)).inserted_primary_key[0])  # type: ignore[index]


def clear(engine: sa.Engine, event_ids: list[int], now: datetime) -> None:
    if event_ids:
        with engine.begin() as conn:
            conn.execute(sa.update(alert_events).where(alert_events.c.id.in_(event_ids)).values(cleared_at=now))


def delivered(engine: sa.Engine, event_id: int, delivery: dict[str, str], sent_at: datetime | None) -> None:
    """Record what each channel answered for an alert, and when a channel first delivered it (None: none yet)."""
    with engine.begin() as conn:
        conn.execute(
            sa.update(alert_events).where(alert_events.c.id == event_id).values(sent_at=sent_at, delivery=delivery)
        )


def history(engine: sa.Engine, limit: int) -> list[dict[str, Any]]:
    """The latest alerts, newest first, with their rule's name."""
    query = (
        sa.select(alert_events, alert_rules.c.name.label("rule"))
        .join(alert_rules, alert_rules.c.id == alert_events.c.rule_id)
        .order_by(alert_events.c.fired_at.desc(), alert_events.c.id.desc())
        .limit(max(1, limit))
    )
    with engine.connect() as conn:  # times in UTC, as stored (SQLite hands them back without their zone)
        return [
            {k: utc(v) if isinstance(v, datetime) else v for k, v in r._mapping.items()} for r in conn.execute(query)
        ]
