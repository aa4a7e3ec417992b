"""The analytics engine: an Ibis connection over the events store (DuckDB by default).

Everything in `analytics/` builds Ibis expressions on `events(backend)` and never writes engine-specific SQL,
so another Ibis backend (Spark, in a later issue) can run the same code.
"""

from __future__ import annotations

from datetime import datetime, timedelta
from pathlib import Path

import duckdb
import ibis
import ibis.expr.types as ir
from ibis.backends.duckdb import Backend as DuckDBBackend

from touchlens.errors import BadOption
from touchlens.ingest.rules import json_path
from touchlens.store.events import connect as connect_store


def duckdb_backend(events_path: Path, memory_limit: str | None = None) -> DuckDBBackend:
    """An Ibis DuckDB backend reading the workspace's events store."""
    return backend_on(connect_store(events_path, read_only=events_path.exists(), memory_limit=memory_limit))


def backend_on(con: duckdb.DuckDBPyConnection) -> DuckDBBackend:
    """An Ibis DuckDB backend over an open connection (or a cursor of one)."""
    # Ibis 12 still writes list lambdas with the single arrow that DuckDB 2 deprecates.
    con.execute("SET lambda_syntax = 'ENABLE_SINGLE_ARROW'")
    return ibis.duckdb.from_connection(con)


def events(backend: ibis.BaseBackend) -> ibis.Table:
    return backend.table("events")


def mapped_events(backend: ibis.BaseBackend) -> ibis.Table:
    """Events a touchpoint claims: the ones journeys are made of."""
    t = events(backend)
    return t.filter(t.touchpoint.notnull())


# Microseconds since the epoch, under each engine's own name; DuckDB's DATE_DIFF (what Ibis's `delta` compiles
# to) is calendar-aware and about ten times slower than subtracting two epochs.
@ibis.udf.scalar.builtin(name="epoch_us")  # type: ignore[untyped-decorator]
def _duckdb_epoch_us(ts: datetime) -> int:  # type: ignore[empty-body]
    ...


@ibis.udf.scalar.builtin(name="unix_micros")  # type: ignore[untyped-decorator]
def _spark_epoch_us(ts: datetime) -> int:  # type: ignore[empty-body]
    ...


_EPOCH_US = {"duckdb": _duckdb_epoch_us, "pyspark": _spark_epoch_us}


def seconds_between(
    backend: ibis.BaseBackend, later: ir.TimestampValue, earlier: ir.TimestampValue
) -> ir.FloatingValue:
    """`later − earlier` in seconds (fractional), by the fastest route the backend has."""
    epoch_us = _EPOCH_US.get(backend.name)
    if epoch_us is None:
        return later.delta(earlier, unit="millisecond") / 1000.0
    return (epoch_us(later) - epoch_us(earlier)) / 1e6


def within(later: ir.TimestampValue, earlier: ir.TimestampValue, limit: timedelta) -> ir.BooleanValue:
    """True when `later` comes at most `limit` after `earlier` (a comparison every engine runs fast)."""
    return later <= earlier + ibis.interval(microseconds=int(limit / timedelta(microseconds=1)))


@ibis.udf.scalar.builtin(name="json_extract_string")  # type: ignore[untyped-decorator]
def _duckdb_json_text(doc: str, path: str) -> str:  # type: ignore[empty-body]
    ...


@ibis.udf.scalar.builtin(name="get_json_object")  # type: ignore[untyped-decorator]
def _spark_json_text(doc: str, path: str) -> str:  # type: ignore[empty-body]
    ...


def property_text(t: ibis.Table, name: str) -> ir.StringValue:
    """One top-level event property as text, as ingest's rules read it: strings unquoted, numbers and booleans as
    written, objects as JSON; missing → NULL. Stores keep `properties` as JSON text, which every engine parses."""
    text = t.properties.cast("string")
    engine = t.get_backend().name
    if engine == "duckdb":
        return _duckdb_json_text(text, json_path(name))
    if engine == "pyspark":
        # Spark's JSON paths quote a name in single quotes and have no escape for one inside it.
        if "'" in name or "]" in name:
            raise BadOption(f"property name {name!r}: the pyspark engine cannot address a name with ' or ]")
        return _spark_json_text(text, f"$['{name}']")
    return text.cast("json")[name].str
