"""The analytics engine: an Ibis connection over the events store (DuckDB by default).

Everything in `analytics/` builds Ibis expressions on `events(backend)` and never writes engine-specific SQL,
so another Ibis backend (Spark, in a later issue) can run the same code.
"""

from __future__ import annotations

from pathlib import Path

import ibis
from ibis.backends.duckdb import Backend as DuckDBBackend

from touchlens.store.events import connect as connect_store


def duckdb_backend(events_path: Path, memory_limit: str | None = None) -> DuckDBBackend:
    """An Ibis DuckDB backend reading the workspace's events store."""
    con = connect_store(events_path, read_only=events_path.exists(), memory_limit=memory_limit)
    # Ibis 12 still writes list lambdas with the single arrow that DuckDB 2 deprecates.
    con.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")
    return ibis.duckdb.from_connection(con)


def events(backend: ibis.BaseBackend) -> ibis.Table:
    return backend.table("events")


def mapped_events(backend: ibis.BaseBackend) -> ibis.Table:
    """Events a touchpoint claims: the ones journeys are made of."""
    t = events(backend)
    return t.filter(t.touchpoint.notnull())
