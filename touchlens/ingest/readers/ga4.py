"""Google Analytics 4 BigQuery export: one event a row, as JSON Lines (or a JSON array) or Parquet.

GA4 gives events no id, so a row's id is a hash of the whole row: an exact duplicate row (an export re-run,
overlapping days) gets the same id and is stored once. `event_params` become properties; `ga_session_id`
becomes the session.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pyarrow as pa

from touchlens.ingest.readers.base import ReaderError, ReadOptions, RowBatcher
from touchlens.ingest.readers.flat import open_parquet, parquet_batches
from touchlens.ingest.readers.product import lower_text, read_json_records

VALUE_KINDS = ("string_value", "int_value", "float_value", "double_value")
# Nested records kept whole as properties (besides the flattened params and user properties).
KEPT = ("traffic_source", "device", "geo", "ecommerce", "items")
REQUIRED = ("event_name", "event_timestamp")
EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def read_ga4(path: Path, opts: ReadOptions) -> Iterator[pa.RecordBatch]:
    """GA4 rows as events; Parquet is told from JSON by its magic bytes, not the file name."""
    if is_parquet(path):
        return _read_parquet(path, opts)
    return read_json_records(path, opts, lambda row: [ga4_values(row)])


def is_parquet(path: Path) -> bool:
    try:
        with path.open("rb") as f:
            return f.read(4) == b"PAR1"
    except OSError as exc:
        raise ReaderError(f"{path}: cannot read: {exc.strerror}") from None


def _read_parquet(path: Path, opts: ReadOptions) -> Iterator[pa.RecordBatch]:
    pf = open_parquet(path)
    names = pf.schema_arrow.names
    missing = [c for c in REQUIRED if c not in names]
    if missing:
        raise ReaderError(f"{path}: not a GA4 export: no column {', '.join(missing)}; columns are: {', '.join(names)}")
    batcher = RowBatcher(size=opts.batch_rows)
    number = 0
    for batch in parquet_batches(path, pf, opts.batch_rows):
        for row in batch.to_pylist():
            number += 1
            batcher.add(number, None, ga4_values(row))
            if batcher.full():
                yield from batcher.flush()
    yield from batcher.flush()


def ga4_values(row: dict[str, Any]) -> dict[str, Any]:
    """Canonical values of one GA4 export row."""
    props = params(row.get("event_params"))
    session = props.pop("ga_session_id", None)
    user_props = params(row.get("user_properties"))
    if user_props:
        props["user_properties"] = user_props
    for key in KEPT:
        value = _prune(row.get(key))
        if value:
            props[key] = value
    return {
        "event_id": fingerprint(row),
        "customer_id": row.get("user_id") or row.get("user_pseudo_id"),
        "anonymous_id": row.get("user_pseudo_id"),
        "session_id": session,
        "ts": micros_to_iso(row.get("event_timestamp")),
        "event": row.get("event_name"),
        "channel": lower_text(row.get("platform")),
        "properties": props or None,
    }


def fingerprint(row: dict[str, Any]) -> str:
    """The id of a GA4 row: equal for exact duplicates, stable across runs."""
    text = json.dumps(row, sort_keys=True, default=str)
    return "ga4:" + hashlib.sha1(text.encode(), usedforsecurity=False).hexdigest()


def params(value: Any) -> dict[str, Any]:
    """``[{key, value: {string_value | int_value | ...}}]`` → ``{key: value}``; malformed entries skipped."""
    out: dict[str, Any] = {}
    for param in value if isinstance(value, list) else []:
        if isinstance(param, dict) and isinstance(param.get("key"), str):
            out[param["key"]] = _param_value(param.get("value"))
    return out


def _param_value(value: Any) -> Any:
    if not isinstance(value, dict):
        return None
    kind = next((k for k in VALUE_KINDS if value.get(k) is not None), None)
    if kind is None:
        return None
    found = value[kind]
    # BigQuery's JSON export writes INT64 as a string.
    if kind == "int_value" and isinstance(found, str) and found.lstrip("-").isdigit():
        return int(found)
    return found


def micros_to_iso(value: Any) -> Any:
    """Epoch microseconds (int or digits) → ISO time in UTC; anything else as given, for the pipeline."""
    if value is None or isinstance(value, bool):
        return value
    try:
        return (EPOCH + timedelta(microseconds=int(value))).isoformat()
    except (TypeError, ValueError, OverflowError):
        return value


def _prune(value: Any) -> Any:
    """The value without null fields (Parquet structs carry every field, mostly null)."""
    if isinstance(value, dict):
        pruned = {k: _prune(v) for k, v in value.items()}
        return {k: v for k, v in pruned.items() if v is not None} or None
    if isinstance(value, list):
        return [_prune(v) for v in value] or None
    return value
