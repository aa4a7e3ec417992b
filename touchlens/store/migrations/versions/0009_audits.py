"""Walkthrough audits: a journey walked touchpoint by touchpoint, each step recorded.

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0009"
down_revision = "0008"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "audits",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("journey", sa.String(120), nullable=False),
        sa.Column("auditor", sa.String(200), nullable=False),
        sa.Column("nonce", sa.String(40), nullable=False),
        sa.Column("created_by", sa.String(200), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("finished_at", sa.DateTime(timezone=True)),
    )
    op.create_table(
        "audit_steps",
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


def downgrade() -> None:
    op.drop_table("audit_steps")
    op.drop_table("audits")
