"""The touchpoint map: map_info, channels, personas, journeys, stages, touchpoints, opportunities.

Revision ID: 0001
Revises:
Create Date: 2026-11-25
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def _item_table(name: str, *columns: sa.Column) -> None:  # type: ignore[type-arg]
    op.create_table(
        name,
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        *columns,
        sa.Column("doc", sa.JSON, nullable=False),
    )


def upgrade() -> None:
    op.create_table(
        "map_info",
        sa.Column("id", sa.Integer, primary_key=True),
        sa.Column("name", sa.String(500), nullable=False),
        sa.Column("doc", sa.JSON, nullable=False),
        sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )
    _item_table("channels", sa.Column("kind", sa.String(20)))
    _item_table("personas")
    _item_table("journeys", sa.Column("persona", sa.String(120)))
    _item_table(
        "touchpoints",
        sa.Column("stage", sa.String(120)),
        sa.Column("channel", sa.String(120)),
        sa.Column("phase", sa.String(20)),
        sa.Column("owner", sa.String(500)),
    )
    op.create_index("ix_touchpoints_stage", "touchpoints", ["stage"])
    op.create_index("ix_touchpoints_channel", "touchpoints", ["channel"])
    _item_table(
        "opportunities",
        sa.Column("horizon", sa.String(10)),
        sa.Column("status", sa.String(20)),
        sa.Column("source", sa.String(20)),
    )
    op.create_table(
        "stages",
        sa.Column("journey", sa.String(120), sa.ForeignKey("journeys.key", ondelete="CASCADE"), primary_key=True),
        sa.Column("key", sa.String(120), primary_key=True),
        sa.Column("position", sa.Integer, nullable=False),
        sa.Column("emotion", sa.Integer),
        sa.Column("doc", sa.JSON, nullable=False),
    )


def downgrade() -> None:
    for table in ("stages", "opportunities", "touchpoints", "journeys", "personas", "channels", "map_info"):
        op.drop_table(table)
