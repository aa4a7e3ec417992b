"""Flat files: CSV, JSON Lines and Parquet with one event a row; unmapped columns become properties.

CSV and Parquet stay columnar end to end (Arrow's C++ readers, no per-row Python), so they keep up with a
plain DuckDB load; JSON Lines is read line by line so one broken line costs one row, not the file.
"""

from __future__ import annotations

import codecs
import csv
import io
import json
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pyarrow as pa
import pyarrow.compute as pc
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from touchlens.ingest.readers.arrowtypes import check_engine_reads, sane_batch
from touchlens.ingest.readers.base import (
    EVENT_COLUMNS,
    META_COLUMNS,
    ReaderError,
    ReadOptions,
    RowBatcher,
    json_lines,
)

# Names a column may have when --columns does not say; the first present wins.
DEFAULT_NAMES: dict[str, tuple[str, ...]] = {
    "event_id": ("event_id", "message_id", "messageId", "id"),
    "customer_id": ("customer_id", "user_id", "userId", "customer"),
    "anonymous_id": ("anonymous_id", "anonymousId"),
    "session_id": ("session_id", "sessionId"),
    "ts": ("ts", "timestamp", "time", "event_time"),
    "event": ("event", "event_name", "event_type"),
    "channel": ("channel",),
}
REQUIRED = ("customer_id", "ts", "event")
BLOCK_SIZE = 16 << 20  # Arrow's CSV reader cannot read a row longer than its block


def resolve_columns(
    path: Path, names: list[str], opts: ReadOptions, required: tuple[str, ...] = REQUIRED
) -> dict[str, str]:
    """Canonical name → file column, from --columns first and the default names second."""
    found: dict[str, str] = {}
    for canonical, column in opts.columns.items():
        if column not in names:
            raise ReaderError(f"{path}: column '{column}' (for {canonical}) not found; columns are: {', '.join(names)}")
        found[canonical] = column
    for canonical, candidates in DEFAULT_NAMES.items():
        if canonical not in found:
            match = next((c for c in candidates if c in names and c not in found.values()), None)
            if match is not None:
                found[canonical] = match
    missing = [c for c in required if c not in found]
    if missing:
        hint = ", ".join(f"{m}=COLUMN" for m in missing)
        raise ReaderError(
            f"{path}: no column for {', '.join(missing)}; columns are: {', '.join(names)} (use --columns {hint})"
        )
    return found


def canonical_batch(
    batch: pa.RecordBatch, mapping: dict[str, str], rows: np.ndarray[Any, Any], rule_properties: tuple[str, ...] = ()
) -> pa.RecordBatch:
    """The file's batch in canonical shape: mapped columns as text (ts may stay a timestamp), the rest as properties."""
    n = batch.num_rows
    arrays: dict[str, pa.Array] = {
        "_row": pa.array(rows, type=pa.int64()),
        "_raw": pa.nulls(n, pa.string()),
        "_error": pa.nulls(n, pa.string()),
        "_field": pa.nulls(n, pa.string()),
    }
    for name in EVENT_COLUMNS:
        column = batch.column(mapping[name]) if name in mapping else pa.nulls(n, pa.string())
        keep_time = name == "ts" and pa.types.is_timestamp(column.type)
        arrays[name] = column if keep_time else _as_string(column)
    rest = [c for c in batch.schema.names if c not in mapping.values()]
    if rest:
        arrays["properties"] = pa.StructArray.from_arrays([batch.column(c) for c in rest], names=rest)
    else:
        arrays["properties"] = pa.nulls(n, pa.string())
    for i, name in enumerate(rule_properties):
        text = _as_text(batch.column(name)) if name in rest else None
        if text is not None:
            arrays[f"__p{i}_in"] = text
    return pa.RecordBatch.from_arrays(list(arrays.values()), names=list(arrays))


def _as_string(column: pa.Array) -> pa.Array:
    """A mapped column as text; binary (how some writers store strings) that is not UTF-8 gets U+FFFD, as in CSV."""
    try:
        return pc.cast(column, pa.string())
    except pa.ArrowInvalid:
        values = [v if v is None else v.decode("utf-8", "replace") for v in column.to_pylist()]
        return pa.array(values, type=pa.string())


def check_types(path: Path, schema: pa.Schema, mapping: dict[str, str]) -> None:
    """Refuse a file whose mapped column has a type that has no text form (a list, a struct, a map)."""
    for canonical, column in mapping.items():
        kind = schema.field(column).type
        if not (canonical == "ts" and pa.types.is_timestamp(kind)) and not _castable(kind):
            raise ReaderError(f"{path}: column '{column}' (for {canonical}) holds {kind}, not text, numbers or times")


def _castable(kind: pa.DataType) -> bool:
    try:
        pc.cast(pa.array([], type=kind), pa.string())
    except (pa.ArrowNotImplementedError, pa.ArrowInvalid, pa.ArrowTypeError):
        return False
    return True


def _as_text(column: pa.Array) -> pa.Array | None:
    """A property as JSON extraction would give it as text, for the types where both agree; else None."""
    if pa.types.is_boolean(column.type):
        return pc.if_else(column, "true", "false")
    if pa.types.is_string(column.type) or pa.types.is_large_string(column.type) or pa.types.is_integer(column.type):
        return pc.cast(column, pa.string())
    return None  # floats, times, nested: left to JSON extraction so every path renders them alike


class CsvHeader(NamedTuple):
    names: list[str]
    lines: int  # a quoted name may hold a line break, and Arrow's reader skips lines, not records
    rows_follow: bool  # False for a file that is its header only (Arrow refuses to skip it without a newline)


def header_names(path: Path) -> list[str]:
    """The header row, made usable: a blank name becomes ``column_N``, a repeated one ``name_2``."""
    return csv_header(path).names


def csv_header(path: Path) -> CsvHeader:
    """The usable header names, the lines they take, and whether anything follows them."""
    with path.open(newline="", encoding="utf-8-sig", errors="replace") as f:
        reader = csv.reader(f)
        raw = next(reader, [])
        lines = reader.line_num
        rows_follow = bool(f.read(1))
    if not raw:
        raise ReaderError(f"{path}: empty file, no header row")
    return CsvHeader(usable_names(raw), lines, rows_follow)


def usable_names(raw: list[str]) -> list[str]:
    """Column names made usable: a blank one becomes ``column_N``, a repeated one ``name_2``."""
    names: list[str] = []
    for i, name in enumerate(raw, start=1):
        name = name.strip() or f"column_{i}"
        base, n = name, 1
        while name in names:
            n += 1
            name = f"{base}_{n}"
        names.append(name)
    return names


def csv_source(path: Path) -> Any:
    """What Arrow's CSV reader should read: the file itself, or its bytes re-encoded when it is not all UTF-8."""
    return str(path) if is_utf8(path) else io.BufferedReader(_Utf8Stream(path))


def is_utf8(path: Path) -> bool:
    """True when every byte of the file decodes as UTF-8 (checked in chunks, at C speed)."""
    decoder = codecs.getincrementaldecoder("utf-8")()
    try:
        with path.open("rb") as f:
            while chunk := f.read(1 << 22):
                decoder.decode(chunk)
        decoder.decode(b"", final=True)
    except UnicodeDecodeError:
        return False
    return True


class _Utf8Stream(io.RawIOBase):
    """A file's bytes re-encoded as UTF-8, undecodable bytes replaced, so one bad byte costs one character."""

    def __init__(self, path: Path) -> None:
        self._file = path.open("rb")
        self._decoder = codecs.getincrementaldecoder("utf-8")(errors="replace")
        self._pending = b""

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        while not self._pending:
            chunk = self._file.read(1 << 20)
            self._pending = self._decoder.decode(chunk, final=not chunk).encode("utf-8")
            if not chunk:
                break
        n = min(len(buffer), len(self._pending))
        buffer[:n] = self._pending[:n]
        self._pending = self._pending[n:]
        return n

    def close(self) -> None:
        self._file.close()
        super().close()


def read_csv(path: Path, opts: ReadOptions) -> Iterator[pa.RecordBatch]:
    """CSV with a header row; every cell read as text; rows with the wrong number of cells are reported."""
    header = csv_header(path)
    mapping = resolve_columns(path, header.names, opts)
    if not header.rows_follow:
        return
    invalid: list[tuple[int, str]] = []

    def on_invalid(row: Any) -> str:
        invalid.append((row.number or 0, row.text))
        return "skip"

    seen = 0
    reported = 0
    for batch in arrow_csv(path, header, on_invalid):
        rows = _physical_rows(seen + header.lines, batch.num_rows, sorted(n for n, _ in invalid))
        seen += batch.num_rows
        yield canonical_batch(batch, mapping, rows, opts.rule_properties)
        yield from _invalid_rows(invalid[reported:])
        reported = len(invalid)
    yield from _invalid_rows(invalid[reported:])


def arrow_csv(path: Path, header: CsvHeader, on_invalid: Callable[[Any], str]) -> Iterator[pa.RecordBatch]:
    """The rows after the header, every cell text (an empty one null); rows with the wrong number of cells go to
    `on_invalid`. What Arrow cannot read at all (a row over 16 MiB) is a `ReaderError` naming the file."""
    names = header.names
    try:
        reader = pa_csv.open_csv(
            csv_source(path),
            read_options=pa_csv.ReadOptions(
                use_threads=False, block_size=BLOCK_SIZE, column_names=names, skip_rows=header.lines
            ),
            parse_options=pa_csv.ParseOptions(invalid_row_handler=on_invalid),
            # An empty cell is a missing value, so `exists: false` rules see it as absent.
            convert_options=pa_csv.ConvertOptions(
                column_types=dict.fromkeys(names, pa.string()),
                strings_can_be_null=True,
                quoted_strings_can_be_null=True,
            ),
        )
        yield from reader
    except pa.ArrowInvalid as exc:
        raise ReaderError(f"{path}: not a readable CSV file: {exc}") from None


def _physical_rows(seen: int, n: int, skipped: list[int]) -> np.ndarray[Any, Any]:
    """Row numbers as Arrow's reader counts them (the header's lines first, so 2 follows a one-line header) of
    the valid rows after `seen`, stepping over rows the parser skipped."""
    rows = np.arange(seen, seen + n, dtype=np.int64) + 1
    for line in skipped:
        rows[rows >= line] += 1
    return rows


def _invalid_rows(rows: list[tuple[int, str]]) -> Iterator[pa.RecordBatch]:
    if not rows:
        return
    batcher = RowBatcher()
    for number, text in rows:
        batcher.add(number, text, {}, ("wrong number of cells", "row"))
    yield from batcher.flush()


def read_parquet(path: Path, opts: ReadOptions) -> Iterator[pa.RecordBatch]:
    pf = open_parquet(path)
    names = usable_names(pf.schema_arrow.names)
    schema = pa.schema([field.with_name(name) for field, name in zip(pf.schema_arrow, names, strict=True)])
    mapping = resolve_columns(path, names, opts)
    check_types(path, schema, mapping)
    check_engine_reads(path, pa.schema([f for f in schema if f.name not in mapping.values()]))
    seen = 0
    for batch in parquet_batches(path, pf, opts.batch_rows):
        rows = np.arange(seen + 1, seen + 1 + batch.num_rows, dtype=np.int64)
        yield canonical_batch(batch.rename_columns(names), mapping, rows, opts.rule_properties)
        seen += batch.num_rows


def open_parquet(path: Path) -> pq.ParquetFile:
    try:
        return pq.ParquetFile(str(path))
    except (pa.ArrowException, OSError, ValueError) as exc:  # ValueError: column names that are not UTF-8
        raise ReaderError(f"{path}: not a Parquet file: {exc}") from None


def parquet_batches(path: Path, pf: pq.ParquetFile, size: int) -> Iterator[pa.RecordBatch]:
    """The file's batches, checked (text must be UTF-8) and made safe for the engine (`sane_batch`); damage
    found on the way is a `ReaderError` naming the file."""
    try:
        for batch in pf.iter_batches(batch_size=size):
            batch.validate(full=True)
            yield sane_batch(path, batch)
    except (pa.ArrowException, OSError) as exc:
        raise ReaderError(f"{path}: not a readable Parquet file: {exc}") from None


def read_jsonl(path: Path, opts: ReadOptions) -> Iterator[pa.RecordBatch]:
    """One flat JSON object a line; keys named by the mapping are the event, the rest its properties."""
    batcher = RowBatcher(size=opts.batch_rows)
    for number, line, value, error in json_lines(path):
        if isinstance(value, list):  # a whole-file JSON array of events: number them 1, 2, …
            for index, item in enumerate(value, start=1):
                _add_record(batcher, index, json.dumps(item, default=str), item, None, opts)
        else:
            _add_record(batcher, number, line, value, error, opts)
        if batcher.full():
            yield from batcher.flush()
    yield from batcher.flush()


def _add_record(batcher: RowBatcher, number: int, raw: str, value: Any, error: str | None, opts: ReadOptions) -> None:
    if error or not isinstance(value, dict):
        batcher.add(number, raw, {}, (error or "not a JSON object", "line"))
    else:
        batcher.add(number, raw, _record_values(value, opts))


def _record_values(record: dict[str, Any], opts: ReadOptions) -> dict[str, Any]:
    """Canonical values of one JSON record: --columns names first, then the default names."""
    values: dict[str, Any] = {}
    used: set[str] = set()
    for name, candidates in DEFAULT_NAMES.items():
        keys = (opts.columns[name],) if name in opts.columns else candidates
        key = next((k for k in keys if k in record and k not in used), None)
        if key is not None:
            values[name] = record[key]
            used.add(key)
    values["properties"] = {k: v for k, v in record.items() if k not in used} or None
    return values


__all__ = ["META_COLUMNS", "read_csv", "read_jsonl", "read_parquet"]
