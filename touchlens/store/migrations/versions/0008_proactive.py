"""Proactive rules run by the server: when each started, and the contacts it sent or withheld.

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-06
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0008"
down_revision = "0007"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "proactive_runs",
        sa.Column("rule", sa.String(120), primary_key=True),
        sa.Column("started_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "proactive_contacts",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        sa.Column("rule", sa.String(120), nullable=False),
        sa.Column("customer_id", sa.String(500), nullable=False),
        sa.Column("trigger_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("due_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("status", sa.String(20), nullable=False),
        sa.Column("sent_at", sa.DateTime(timezone=True)),
        sa.UniqueConstraint("rule", "customer_id", "trigger_at", name="uq_proactive_contact"),
    )
    op.create_index("ix_proactive_contacts_rule", "proactive_contacts", ["rule"])
    op.create_index("ix_proactive_contacts_customer_id", "proactive_contacts", ["customer_id"])


def downgrade() -> None:
    op.drop_index("ix_proactive_contacts_customer_id", "proactive_contacts")
    op.drop_index("ix_proactive_contacts_rule", "proactive_contacts")
    op.drop_table("proactive_contacts")
    op.drop_table("proactive_runs")
