"""Expressions every analysis builds on: the events tables, timing and JSON helpers, quantiles.

Everything in `analytics/` builds Ibis expressions on `events(backend)` and never writes engine-specific SQL,
so another Ibis backend (Spark, through `[engine]` settings: docs/scale.md) runs the same code.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

import ibis
import ibis.expr.types as ir

from touchlens.errors import BadOption
from touchlens.ingest.rules import json_pointer, property_name


def events(backend: ibis.BaseBackend) -> ibis.Table:
    return backend.table("events")


def arrow(backend: ibis.BaseBackend, expr: ir.Expr) -> Any:
    """`backend.to_pyarrow(expr)` (a table, a column or a scalar), through DuckDB's own Arrow result on DuckDB:
    Ibis's DuckDB converter loads pandas, a quarter of a second of every command that fetches a result."""
    if backend.name != "duckdb":
        return backend.to_pyarrow(expr)
    backend._run_pre_execute_hooks(expr)  # registers in-memory tables (memtable)
    table = expr.as_table()
    found = backend.con.sql(backend.compile(table)).to_arrow_table()
    wanted = table.schema().to_pyarrow()
    if found.schema != wanted:
        found = found.cast(wanted)
    if isinstance(expr, ir.Scalar):
        return found.column(0)[0]
    if isinstance(expr, ir.Column):
        return found.column(0)
    return found


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


# DuckDB's integer division (its `//`), exact on 64-bit integers; Ibis's `//` divides as floating point.
@ibis.udf.scalar.builtin(name="divide")  # type: ignore[untyped-decorator]
def _duckdb_divide(a: int, b: int) -> int:  # type: ignore[empty-body]
    ...


DAY_US = 86_400_000_000
# Days from 0001-01-01 to 1970-01-01: shifted by these, every timestamp's epoch is positive, so integer division
# (which truncates toward zero) is floor division.
_EPOCH_SHIFT_DAYS = 719_528


def utc_days(backend: ibis.BaseBackend, ts: ir.TimestampValue) -> ir.IntegerValue | None:
    """Whole days from 1970-01-01 (UTC) to each timestamp, by integer arithmetic on the epoch, on DuckDB (None
    elsewhere). DuckDB truncates a timestamp with time zone to its day or week through its calendar: by week over
    10M touches, 1.3 s against 0.24 s for this."""
    if backend.name != "duckdb":
        return None
    shifted = _duckdb_epoch_us(ts) + _EPOCH_SHIFT_DAYS * DAY_US
    return _duckdb_divide(shifted, DAY_US) - _EPOCH_SHIFT_DAYS


def utc_weeks(days: ir.IntegerValue) -> ir.IntegerValue:
    """The week (from Monday, as ISO and DuckDB's `date_trunc` count them) of each of `utc_days`' numbers: weeks
    from Monday 1969-12-29 (1970-01-01 was a Thursday)."""
    shift = -(-_EPOCH_SHIFT_DAYS // 7)
    return _duckdb_divide(days + 3 + 7 * shift, 7) - shift


def day_date(days: ir.IntegerValue) -> ir.DateValue:
    """The date `days` after 1970-01-01. (DuckDB adds days to a date as a timestamp, which Ibis types as a date:
    cast through a timestamp, so the SQL's column is a DATE too.)"""
    return (ibis.date(1970, 1, 1) + days.as_interval("D")).cast("timestamp").cast("date")


def seconds_between(
    backend: ibis.BaseBackend, later: ir.TimestampValue, earlier: ir.TimestampValue
) -> ir.FloatingValue:
    """`later − earlier` in seconds (fractional), by the fastest route the backend has."""
    epoch_us = _EPOCH_US.get(backend.name)
    if epoch_us is None:
        return later.delta(earlier, unit="millisecond") / 1000.0
    return (epoch_us(later) - epoch_us(earlier)) / 1e6


def at_most_apart(
    backend: ibis.BaseBackend, later: ir.TimestampValue, earlier: ir.TimestampValue, limit: timedelta
) -> ir.BooleanValue:
    """`within(later, earlier, limit)` by subtracting epochs where the backend can: DuckDB adds an interval to a
    timestamp with time zone through its calendar, ten times slower (2 s a flag over 10M touches). For flags
    and filters; a join's condition keeps `within`, which range joins can use."""
    epoch_us = _EPOCH_US.get(backend.name)
    if epoch_us is None:
        return within(later, earlier, limit)
    return epoch_us(later) - epoch_us(earlier) <= int(limit / timedelta(microseconds=1))


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
    written, objects as JSON; missing → NULL. Stores keep `properties` as JSON text, which every engine parses.

    The name reaches the engine only as data inside a quoted string literal; a name an engine cannot address
    exactly is refused with `BadOption` (never guessed at)."""
    return json_text(t.properties.cast("string"), name, t.get_backend().name)


def json_text(doc: ir.StringValue, name: str, engine: str) -> ir.StringValue:
    """The property `name` of the JSON text `doc` on `engine` (a backend's name), by the one addressing rule."""
    if engine == "duckdb":
        return _duckdb_json_text(doc, json_pointer(name))
    if engine == "pyspark":
        return _spark_json_text(doc, _spark_path(name))
    return doc.cast("json")[property_name(name)].str


# Whitespace Spark's JSON-path parser skips before a name (Java's \s): a name starting with it addresses another.
_JAVA_SPACE = " \t\n\x0b\f\r"


def _spark_path(name: str) -> ir.StringValue:
    """``$['name']`` for Spark's get_json_object, which has no escape: names it would misread are refused."""
    name = property_name(name)
    if "'" in name or name == "*" or name[0] in _JAVA_SPACE:
        raise BadOption(
            f"property name {name!r}: the pyspark engine cannot address a name that contains ', is *, "
            "or starts with whitespace"
        )
    # A CONCAT, not one literal: sqlglot parses a literal JSON path and re-renders it, dropping a backslash and
    # what follows; the parts stay plain string literals, which it quotes correctly. Spark folds the constant.
    return ibis.literal("$['").concat(ibis.literal(name), ibis.literal("']"))


def with_quantiles(
    t: ibis.Table,
    by: Sequence[str],
    value: str,
    quantiles: Mapping[str, float],
    ranked: bool,
    **metrics: Callable[[ibis.Table], Any],
) -> ibis.Table:
    """`t` grouped `by`, with `metrics` (name → aggregate of the table) and exact quantiles of `value` (name → q,
    interpolated as DuckDB's quantile_cont and Spark's percentile are).

    `ranked` computes them by ranking the values of each group, in bounded memory, instead of the engines'
    holistic aggregates: those keep every value of a group in memory, and on 100M events DuckDB's spilled
    40+ GiB under an 8 GB limit (docs/scale.md). Ranking costs one more sort, about twice the time when small.
    """
    if not ranked:
        column = t[value]
        exact = {name: column.quantile(q) for name, q in quantiles.items()}
        return t.group_by(by).aggregate(**{k: f(t) for k, f in metrics.items()}, **exact)
    group = [t[c] for c in by]
    r = t.mutate(
        # Nulls last on every engine (Spark sorts them first), so ranks 0..n-1 are the values.
        _rank=ibis.row_number().over(ibis.window(group_by=group, order_by=t[value].asc(nulls_first=False))),
        _size=t[value].count().over(ibis.window(group_by=group)),
    )
    around = {
        f"_{name}_{end}": r[value].min(where=r._rank == getattr((r._size - 1) * q, end)())
        for name, q in quantiles.items()
        for end in ("floor", "ceil")
    }
    # Each group's values count, for the position between the two ranked values around each quantile.
    out = r.group_by(by).aggregate(**{k: f(r) for k, f in metrics.items()}, _n=r[value].count(), **around)
    exact = {name: _between(out, name, q) for name, q in quantiles.items()}
    return out.select(*by, *metrics, **exact)


def _between(out: ibis.Table, name: str, q: float) -> ir.FloatingValue:
    position = (out._n - 1) * q
    low, high = out[f"_{name}_floor"], out[f"_{name}_ceil"]
    return low + (position - position.floor()) * (high - low)
