"""Parquet values made safe for the engine: times DuckDB cannot hold become null, types it cannot read are refused.

A Parquet file carries typed values that no text format can: a timestamp in seconds past the year 294247, or a
time of day past 24 hours. DuckDB fails on such values, and for some invalidates the whole database (an
internal error), so they must never reach it. CSV and JSON readers hand over text only and need none of this.
"""

from __future__ import annotations

import functools
from pathlib import Path

import duckdb
import pyarrow as pa
import pyarrow.compute as pc

from touchlens.ingest.readers.base import ReaderError

# Years 1 to 9999: what ISO text, Python and every engine agree on.
FIRST_SECOND, LAST_SECOND = -62_135_596_800, 253_402_300_799
INT64 = (-(2**63), 2**63 - 1)
PER_SECOND = {"s": 1, "ms": 1_000, "us": 1_000_000, "ns": 1_000_000_000}
DAY_SECONDS = 86_400


def sane_batch(path: Path, batch: pa.RecordBatch) -> pa.RecordBatch:
    """`batch` with every time value outside what DuckDB and Python can hold set to null (nested ones too)."""
    if not any(_risky(f.type) for f in batch.schema):
        return batch
    try:
        return pa.RecordBatch.from_arrays([sane(c) for c in batch.columns], names=batch.schema.names)
    except (pa.ArrowException, ValueError) as exc:
        raise ReaderError(f"{path}: not a readable Parquet file: {exc}") from None


def sane(array: pa.Array) -> pa.Array:
    """The array with out-of-range times null, through structs and lists (`check_engine_reads` refuses times
    nested in anything else)."""
    kind = array.type
    if not _risky(kind):
        return array
    if pa.types.is_struct(kind):
        children = [sane(array.field(i)) for i in range(kind.num_fields)]
        return pa.StructArray.from_arrays(children, fields=list(kind), mask=array.is_null())
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        maker = pa.ListArray if pa.types.is_list(kind) else pa.LargeListArray
        return maker.from_arrays(array.offsets, sane(array.values), type=kind, mask=array.is_null())
    bounds = _bounds(kind)
    if bounds is None:
        return array
    ints = array.view(pa.int32() if kind.bit_width == 32 else pa.int64())
    keep = pc.fill_null(pc.and_(pc.greater_equal(ints, bounds[0]), pc.less_equal(ints, bounds[1])), False)
    # DuckDB converts every slot, null or not, so no value may stay under a null: zero them first.
    zeroed = pc.if_else(keep, ints, 0).view(kind)
    return pc.if_else(keep, zeroed, pa.scalar(None, kind))


def _risky(kind: pa.DataType) -> bool:
    """True when `kind` holds a time type where `sane` finds it: itself, or inside structs and lists."""
    return _bounds(kind) is not None or any(_risky(child) for child in _walked_children(kind))


def _walked_children(kind: pa.DataType) -> list[pa.DataType]:
    if pa.types.is_struct(kind):
        return [kind.field(i).type for i in range(kind.num_fields)]
    if pa.types.is_list(kind) or pa.types.is_large_list(kind):
        return [kind.value_type]
    return []


def _hidden_times(kind: pa.DataType) -> bool:
    """True when `kind` holds a time type inside a nest `sane` does not walk (a map, a fixed-size list)."""
    if _bounds(kind) is not None:
        return False
    walked = _walked_children(kind)
    if walked or pa.types.is_struct(kind):
        return any(_hidden_times(child) for child in walked)
    return _holds_time(kind)


def _holds_time(kind: pa.DataType) -> bool:
    children = [kind.field(i).type for i in range(kind.num_fields)] if kind.num_fields else []
    if pa.types.is_dictionary(kind):
        children.append(kind.value_type)
    return _bounds(kind) is not None or any(_holds_time(child) for child in children)


def _bounds(kind: pa.DataType) -> tuple[int, int] | None:
    """The smallest and largest raw value of a time type that is safe, or None for other types."""
    if pa.types.is_timestamp(kind):
        unit = PER_SECOND[kind.unit]
        return max(FIRST_SECOND * unit, INT64[0]), min(LAST_SECOND * unit, INT64[1])
    if pa.types.is_time(kind):
        return 0, DAY_SECONDS * PER_SECOND[kind.unit] - 1
    if pa.types.is_duration(kind):
        # DuckDB holds intervals in microseconds.
        most = INT64[1] // max(1, PER_SECOND["us"] // PER_SECOND[kind.unit])
        return -most, most
    if pa.types.is_date32(kind):
        return FIRST_SECOND // DAY_SECONDS, LAST_SECOND // DAY_SECONDS
    if pa.types.is_date64(kind):
        return FIRST_SECOND * 1000, LAST_SECOND * 1000
    return None


def check_engine_reads(path: Path, schema: pa.Schema) -> None:
    """Refuse a file with a column DuckDB cannot turn into JSON (a half float, a union) or with times nested where
    `sane` cannot reach them, naming the column."""
    for field in schema:
        where = f"{path}: column '{field.name}' holds {field.type}"
        if _hidden_times(field.type):
            raise ReaderError(f"{where}: times nested so are not supported")
        if not _storable(field.type):
            raise ReaderError(f"{where}, which touchlens cannot store")


@functools.cache
def _storable(kind: pa.DataType) -> bool:
    """Whether DuckDB turns a column of this type into JSON; asked once a type (a lake of many files shares them)."""
    con = duckdb.connect()
    try:
        con.register("probe", pa.table({"x": pa.array([], type=kind)}))
        con.execute("SELECT CAST(to_json(x) AS VARCHAR) FROM probe").fetchall()
    except (duckdb.Error, pa.ArrowException):
        return False
    finally:
        con.close()
    return True
