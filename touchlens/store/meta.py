"""The metadata store: the map, the roadmap, users and their credentials in SQL through SQLAlchemy.

Each item keeps its full document as JSON, so what goes in comes back exactly; the columns beside it
(stage, channel, owner, …) are there to filter and join on. Schema changes go through Alembic migrations.
"""

from __future__ import annotations

from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from touchlens.model.map import STORED, Journey, TouchpointMap

metadata = sa.MetaData()
FREE_TEXT = 500  # length of the filter columns holding free text (the map's name, a touchpoint's owner)

map_info = sa.Table(
    "map_info",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True),
    sa.Column("name", sa.String(FREE_TEXT), nullable=False),
    sa.Column("doc", sa.JSON, nullable=False),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)


def _item_table(name: str, *columns: sa.Column[Any]) -> sa.Table:
    return sa.Table(
        name,
        metadata,
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        *columns,
        sa.Column("doc", sa.JSON, nullable=False),
    )


channels = _item_table("channels", sa.Column("kind", sa.String(20)))
personas = _item_table("personas")
journeys = _item_table("journeys", sa.Column("persona", sa.String(120)))
touchpoints = _item_table(
    "touchpoints",
    sa.Column("stage", sa.String(120), index=True),
    sa.Column("channel", sa.String(120), index=True),
    sa.Column("phase", sa.String(20)),
    sa.Column("owner", sa.String(FREE_TEXT)),
)
opportunities = _item_table(
    "opportunities",
    sa.Column("horizon", sa.String(10)),
    sa.Column("status", sa.String(20)),
    sa.Column("source", sa.String(20)),
)
stages = sa.Table(
    "stages",
    metadata,
    sa.Column("journey", sa.String(120), sa.ForeignKey("journeys.key", ondelete="CASCADE"), primary_key=True),
    sa.Column("key", sa.String(120), primary_key=True),
    sa.Column("position", sa.Integer, nullable=False),
    sa.Column("emotion", sa.Integer),
    sa.Column("doc", sa.JSON, nullable=False),
)

changes = sa.Table(
    "changes",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("touchpoint", sa.String(120), nullable=False, index=True),
    sa.Column("date", sa.Date, nullable=False),
    sa.Column("note", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)

users = sa.Table(
    "users",
    metadata,
    sa.Column("name", sa.String(120), primary_key=True),
    sa.Column("password_hash", sa.String(200), nullable=False),
    sa.Column("role", sa.String(20), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
sessions = sa.Table(
    "sessions",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user", sa.String(120), sa.ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    sa.Column("csrf", sa.String(64), nullable=False),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)
api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("token_hash", sa.String(64), primary_key=True),
    sa.Column("user", sa.String(120), sa.ForeignKey("users.name", ondelete="CASCADE"), nullable=False),
    sa.Column("scopes", sa.String(100), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    # A public id that names the token in `tokens list` and `tokens revoke`; it is no part of the secret.
    sa.Column("id", sa.String(16), nullable=False, index=True, unique=True),
    sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
)

audit_log = sa.Table(
    "audit_log",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False, index=True),
    sa.Column("actor", sa.String(200), nullable=False),
    sa.Column("action", sa.String(60), nullable=False, index=True),
    sa.Column("target", sa.String(500), nullable=False),
    sa.Column("detail", sa.JSON, nullable=False),
)
write_keys = sa.Table(
    "write_keys",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("key_hash", sa.String(64), nullable=False, unique=True),
    sa.Column("scope", sa.String(20), nullable=False),
    sa.Column("label", sa.String(200), nullable=False),
    sa.Column("source", sa.String(120), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("revoked_at", sa.DateTime(timezone=True)),
)

# Follow-up cases: a low score or a negative comment, for the touchpoint's owner to act on (store/cases.py).
cases = sa.Table(
    "cases",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("source", sa.String(120), nullable=False),
    sa.Column("response_id", sa.String(500), nullable=False),
    sa.Column("touchpoint", sa.String(120), index=True),
    sa.Column("customer_id", sa.String(500), nullable=False, index=True),
    sa.Column("metric", sa.String(20), nullable=False),
    sa.Column("score", sa.Float, nullable=False),
    sa.Column("comment", sa.Text),
    sa.Column("sentiment", sa.Float),
    sa.Column("reason", sa.String(200), nullable=False),
    sa.Column("answered_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("opened_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("owner", sa.String(FREE_TEXT)),
    sa.Column("assignee", sa.String(200)),
    sa.Column("status", sa.String(20), nullable=False, index=True),
    sa.Column("due", sa.DateTime(timezone=True), nullable=False),
    sa.Column("first_action_at", sa.DateTime(timezone=True)),
    sa.Column("closed_at", sa.DateTime(timezone=True)),
    sa.Column("note", sa.Text),
    sa.UniqueConstraint("source", "response_id", name="uq_cases_response"),
)

# Alert rules and what they raised (touchlens/alerts.py): each alert is sent once until it clears.
alert_rules = sa.Table(
    "alert_rules",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("name", sa.String(200), nullable=False),
    sa.Column("kind", sa.String(40), nullable=False),
    sa.Column("scope", sa.String(200), nullable=False),
    sa.Column("threshold", sa.Float),
    sa.Column("window_hours", sa.Float, nullable=False),
    sa.Column("webhook", sa.String(2000)),
    sa.Column("emails", sa.JSON, nullable=False),
    sa.Column("quiet", sa.String(20)),
    sa.Column("timezone", sa.String(60), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)
alert_events = sa.Table(
    "alert_events",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rule_id", sa.Integer, sa.ForeignKey("alert_rules.id", ondelete="CASCADE"), nullable=False, index=True),
    sa.Column("subject", sa.String(200), nullable=False),
    sa.Column("message", sa.Text, nullable=False),
    sa.Column("fired_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("cleared_at", sa.DateTime(timezone=True)),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.Column("delivery", sa.JSON, nullable=False),
)

# Proactive rules run by the server (touchlens/contacts.py): when each started, and every contact it handed to
# the messaging tool or withheld for the holdout, once per rule, customer and trigger.
proactive_runs = sa.Table(
    "proactive_runs",
    metadata,
    sa.Column("rule", sa.String(120), primary_key=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
)
proactive_contacts = sa.Table(
    "proactive_contacts",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("rule", sa.String(120), nullable=False, index=True),
    sa.Column("customer_id", sa.String(500), nullable=False, index=True),
    sa.Column("trigger_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("status", sa.String(20), nullable=False),
    sa.Column("sent_at", sa.DateTime(timezone=True)),
    sa.UniqueConstraint("rule", "customer_id", "trigger_at", name="uq_proactive_contact"),
)

# Walkthrough audits (touchlens/audits.py): someone walks a journey touchpoint by touchpoint and records it.
audits = sa.Table(
    "audits",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("journey", sa.String(120), nullable=False),
    sa.Column("auditor", sa.String(200), nullable=False),
    sa.Column("nonce", sa.String(40), nullable=False),
    sa.Column("created_by", sa.String(200), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("finished_at", sa.DateTime(timezone=True)),
)
audit_steps = sa.Table(
    "audit_steps",
    metadata,
    sa.Column("audit_id", sa.Integer, sa.ForeignKey("audits.id", ondelete="CASCADE"), primary_key=True),
    sa.Column("touchpoint", sa.String(120), primary_key=True),
    sa.Column("met", sa.Boolean),
    sa.Column("annoyances", sa.Text),
    sa.Column("think", sa.Text),
    sa.Column("did", sa.Text),
    sa.Column("feel", sa.Text),
    sa.Column("emotion", sa.Integer),
    sa.Column("photo", sa.String(200)),
    sa.Column("at", sa.DateTime(timezone=True), nullable=False),
)

_ITEM_TABLES = {
    "channels": channels,
    "personas": personas,
    "touchpoints": touchpoints,
    "opportunities": opportunities,
}
_INDEX_COLUMNS = {
    "channels": ("kind",),
    "touchpoints": ("stage", "channel", "phase", "owner"),
    "opportunities": ("horizon", "status", "source"),
}

MIGRATIONS = Path(__file__).parent / "migrations"


# The newest migration's revision, so that opening an up-to-date store reads one row and loads no Alembic
# (a tenth of a second of every command); tests/test_workspace.py keeps it equal to Alembic's head.
HEAD = "0009"


def migrate(engine: sa.Engine) -> None:
    """Bring the schema to the newest migration; quick when it is already there."""
    with engine.begin() as conn:
        if _revision(conn) == HEAD:
            return
        from alembic import command
        from alembic.config import Config

        cfg = Config()
        cfg.set_main_option("script_location", str(MIGRATIONS))
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, "head")


def _revision(conn: sa.Connection) -> str | None:
    """The store's migration revision as Alembic records it, None for a new store."""
    if not sa.inspect(conn).has_table("alembic_version"):
        return None
    return conn.execute(sa.text("SELECT version_num FROM alembic_version")).scalar()


def utc(when: datetime) -> datetime:
    """A stored time in UTC: PostgreSQL hands back aware times, SQLite naive ones (written in UTC)."""
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def _doc(item: Any, *exclude: str) -> dict[str, Any]:
    data: dict[str, Any] = item.model_dump(mode="json", by_alias=True, exclude_defaults=True, exclude=set(exclude))
    return data


def _plain(value: Any) -> Any:
    return getattr(value, "value", value)


def _indexed(value: str | None) -> str | None:
    """Free text as a filter column holds it: PostgreSQL's text has no NUL and its columns have a length (SQLite
    checks neither). The document beside it keeps the text exactly."""
    return None if value is None else value.replace("\x00", "")[:FREE_TEXT]


def save_map(engine: sa.Engine, m: TouchpointMap) -> None:
    """Replace the stored map with `m`, all or nothing."""
    head = _doc(m, "channels", "personas", "journeys", "touchpoints", "opportunities")
    with engine.begin() as conn:
        for table in (stages, journeys, *_ITEM_TABLES.values(), map_info):
            conn.execute(table.delete())
        # An explicit time (SQLite's now() has whole seconds): the web cache keys on it.
        name = _indexed(m.name)
        conn.execute(map_info.insert().values(id=1, name=name, doc=head, updated_at=datetime.now(UTC)))
        for section, table in _ITEM_TABLES.items():
            rows = [_item_row(section, pos, item) for pos, item in enumerate(getattr(m, section))]
            if rows:
                conn.execute(table.insert(), rows)
        _save_journeys(conn, m.journeys)


def map_version(engine: sa.Engine) -> str | None:
    """When the map was last saved; None before the first import."""
    with engine.connect() as conn:
        found = conn.execute(sa.select(map_info.c.updated_at)).scalar()
    return None if found is None else utc(found).isoformat()


def _item_row(section: str, position: int, item: Any) -> dict[str, Any]:
    row = {"key": item.key, "position": position, "doc": _doc(item)}
    row.update({col: _plain(getattr(item, col)) for col in _INDEX_COLUMNS.get(section, ())})
    if "owner" in row:
        row["owner"] = _indexed(row["owner"])
    return row


def _save_journeys(conn: sa.Connection, items: list[Journey]) -> None:
    for pos, journey in enumerate(items):
        conn.execute(
            journeys.insert().values(
                key=journey.key, position=pos, persona=journey.persona, doc=_doc(journey, "stages")
            )
        )
        rows = [
            {"journey": journey.key, "key": s.key, "position": i, "emotion": s.emotion, "doc": _doc(s)}
            for i, s in enumerate(journey.stages)
        ]
        if rows:
            conn.execute(stages.insert(), rows)


def load_map(engine: sa.Engine) -> TouchpointMap | None:
    """The stored map, or None when none was imported yet."""
    with engine.connect() as conn:
        head = conn.execute(sa.select(map_info.c.doc).where(map_info.c.id == 1)).scalar_one_or_none()
        if head is None:
            return None
        data: dict[str, Any] = dict(head)
        for section, table in _ITEM_TABLES.items():
            data[section] = list(conn.execute(sa.select(table.c.doc).order_by(table.c.position)).scalars())
        stage_rows = conn.execute(sa.select(stages.c.journey, stages.c.doc).order_by(stages.c.position))
        by_journey: dict[str, list[Any]] = {}
        for journey_key, doc in stage_rows:
            by_journey.setdefault(journey_key, []).append(doc)
        data["journeys"] = [
            {**doc, "stages": by_journey.get(key, [])}
            for key, doc in conn.execute(sa.select(journeys.c.key, journeys.c.doc).order_by(journeys.c.position))
        ]
    return TouchpointMap.model_validate(data, context=STORED)


def add_change(engine: sa.Engine, touchpoint: str, when: date, note: str) -> int:
    """Record a change made to a touchpoint; returns its id."""
    with engine.begin() as conn:
        # PostgreSQL's text holds no NUL; a NUL in a note is never meant, so it is dropped on every backend.
        result = conn.execute(
            sa.insert(changes).values(touchpoint=touchpoint, date=when, note=note.replace("\x00", ""))
        )
        key = result.inserted_primary_key
        return int(key[0]) if key else 0


def list_changes(engine: sa.Engine, touchpoint: str | None = None) -> list[dict[str, Any]]:
    """Every recorded change (of one touchpoint), oldest first."""
    query = sa.select(changes.c.id, changes.c.touchpoint, changes.c.date, changes.c.note).order_by(
        changes.c.date, changes.c.id
    )
    if touchpoint is not None:
        query = query.where(changes.c.touchpoint == touchpoint)
    with engine.connect() as conn:
        return [dict(r._mapping) for r in conn.execute(query)]
