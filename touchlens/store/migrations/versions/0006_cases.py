"""Follow-up cases: a low score or a negative comment opens one for the touchpoint's owner.

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "cases",
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
        sa.Column("owner", sa.String(500)),
        sa.Column("assignee", sa.String(200)),
        sa.Column("status", sa.String(20), nullable=False, index=True),
        sa.Column("due", sa.DateTime(timezone=True), nullable=False),
        sa.Column("first_action_at", sa.DateTime(timezone=True)),
        sa.Column("closed_at", sa.DateTime(timezone=True)),
        sa.Column("note", sa.Text),
        sa.UniqueConstraint("source", "response_id", name="uq_cases_response"),
    )


def downgrade() -> None:
    op.drop_table("cases")
