"""API tokens get a public id (to list and revoke them one by one) and an expiry.

Tokens made before this revision get a random id and expire 90 days (the default `[web] token_days`) after the
upgrade, so none lasts for ever and none stops working the moment touchlens is upgraded.

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10
"""

from __future__ import annotations

import secrets
from datetime import UTC, datetime, timedelta

import sqlalchemy as sa
from alembic import op

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None
EXISTING_TOKEN_DAYS = 90


def upgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.add_column(sa.Column("id", sa.String(16), nullable=True))
        batch.add_column(sa.Column("expires_at", sa.DateTime(timezone=True), nullable=True))
    _fill_existing()
    with op.batch_alter_table("api_tokens") as batch:
        batch.alter_column("id", existing_type=sa.String(16), nullable=False)
        batch.alter_column("expires_at", existing_type=sa.DateTime(timezone=True), nullable=False)
        batch.create_index("ix_api_tokens_id", ["id"], unique=True)


def _fill_existing() -> None:
    """Each existing token: a random public id, and an expiry EXISTING_TOKEN_DAYS from now."""
    tokens = sa.table(
        "api_tokens",
        sa.column("token_hash", sa.String),
        sa.column("id", sa.String),
        sa.column("expires_at", sa.DateTime(timezone=True)),
    )
    conn = op.get_bind()
    expires = datetime.now(UTC) + timedelta(days=EXISTING_TOKEN_DAYS)
    for digest in conn.execute(sa.select(tokens.c.token_hash)).scalars().all():
        conn.execute(
            sa.update(tokens).where(tokens.c.token_hash == digest).values(id=secrets.token_hex(6), expires_at=expires)
        )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_index("ix_api_tokens_id")
        batch.drop_column("expires_at")
        batch.drop_column("id")
