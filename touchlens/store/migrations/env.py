"""Alembic environment: migrations run on the connection touchlens hands over, or on sqlalchemy.url."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from touchlens.store.meta import metadata


def _run(connection: sa.Connection) -> None:
    # Batch mode lets later migrations alter tables on SQLite, which lacks most ALTER TABLE forms.
    context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
    with context.begin_transaction():
        context.run_migrations()


connection = context.config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    engine = sa.create_engine(context.config.get_main_option("sqlalchemy.url") or "sqlite://")
    with engine.begin() as conn:
        _run(conn)
