"""Product analytics exports (Mixpanel, Amplitude), and the JSON record helpers every export reader shares.

Exports come as one record a line, a JSON array, or an object wrapping an array (``{"tickets": [...]}``);
`json_records` hides which, and `read_json_records` turns records into canonical batches.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pyarrow as pa

from touchlens.ingest.readers.base import EVENT_COLUMNS, ReaderError, ReadOptions, RowBatcher, json_lines

Record = tuple[int, str, Any, str | None]
# A converter returns the canonical rows of one record (none, one or several); a row may carry
# "_error": (reason, field) when the record is readable JSON but not a usable record of its kind.
Convert = Callable[[dict[str, Any]], Iterable[dict[str, Any]]]
DEVICE_PREFIX = "$device:"
MIXPANEL_USED = ("time", "distinct_id", "$insert_id", "channel")


def json_records(path: Path, wrappers: tuple[str, ...] = ()) -> Iterator[Record]:
    """(row, raw, record, error) for each record, whether the file has one a line or wraps them in an array.

    A record a line is numbered by its line; records inside arrays are numbered 1, 2, … through the file,
    since an API page saved as a file often sits on a single line.
    """
    counted = 0
    for number, line, value, error in json_lines(path):
        items = value if isinstance(value, list) else None
        if isinstance(value, dict):
            key = next((k for k in wrappers if isinstance(value.get(k), list)), None)
            items = value[key] if key else None
        if items is None:
            yield number, line, value, error
            continue
        for item in items:
            counted += 1
            yield counted, dump(item), item, None


def read_json_records(
    path: Path,
    opts: ReadOptions,
    convert: Convert,
    wrappers: tuple[str, ...] = (),
    columns: tuple[str, ...] = (*EVENT_COLUMNS, "properties"),
) -> Iterator[pa.RecordBatch]:
    """Canonical batches of a JSON export: each record through `convert`, broken records as error rows."""
    batcher = RowBatcher(columns=columns, size=opts.batch_rows)
    for number, raw, record, error in json_records(path, wrappers):
        if error or not isinstance(record, dict):
            batcher.add(number, raw, {}, (error or "not a JSON object", "line"))
        else:
            for values in convert(record):
                batcher.add(number, raw, values, values.get("_error"))
        if batcher.full():
            yield from batcher.flush()
    yield from batcher.flush()


def first_record(path: Path, tries: int = 100) -> Any:
    """The first value that parses in a JSON or JSON Lines file (a whole document counts as one), or None."""
    try:
        for index, (_, _, value, _) in enumerate(json_lines(path)):
            if value is not None or index >= tries:
                return value
    except OSError as exc:
        raise ReaderError(f"{path}: cannot read: {exc.strerror}") from None
    return None


def dump(value: Any) -> str:
    return json.dumps(value, ensure_ascii=False, default=str)


def utc_text(value: Any) -> Any:
    """An ISO time with its offset; a naive one is taken as UTC (as exports write). Other values as given."""
    if not isinstance(value, str):
        return value
    try:
        parsed = datetime.fromisoformat(value.strip())
    except ValueError:
        return value  # left for the pipeline to report as an unparseable timestamp
    return (parsed if parsed.tzinfo else parsed.replace(tzinfo=UTC)).isoformat()


def lower_text(value: Any) -> str | None:
    return (value.strip().lower() or None) if isinstance(value, str) else None


def read_mixpanel(path: Path, opts: ReadOptions) -> Iterator[pa.RecordBatch]:
    """Mixpanel raw export: ``{"event", "properties": {"time", "distinct_id", "$insert_id", ...}}`` a line."""
    return read_json_records(path, opts, lambda record: [mixpanel_values(record)])


def mixpanel_values(record: dict[str, Any]) -> dict[str, Any]:
    """Canonical values of one Mixpanel event; a ``$device:`` distinct id is an anonymous device."""
    props = record.get("properties")
    props = props if isinstance(props, dict) else {}
    distinct = props.get("distinct_id")
    device = None
    if isinstance(distinct, str) and distinct.startswith(DEVICE_PREFIX):
        device = distinct[len(DEVICE_PREFIX) :]
    channel = props.get("channel")
    return {
        "event_id": props.get("$insert_id"),
        "customer_id": props.get("$user_id") if device else distinct,
        "anonymous_id": device or props.get("$device_id"),
        "ts": props.get("time"),
        "event": record.get("event"),
        "channel": channel if isinstance(channel, str) else None,
        "properties": {k: v for k, v in props.items() if k not in MIXPANEL_USED} or None,
    }


def read_amplitude(path: Path, opts: ReadOptions) -> Iterator[pa.RecordBatch]:
    """Amplitude export (or HTTP API events): one event a line with event_type, event_time and ids."""
    return read_json_records(path, opts, lambda record: [amplitude_values(record)], wrappers=("events",))


def amplitude_values(record: dict[str, Any]) -> dict[str, Any]:
    """Canonical values of one Amplitude event; session -1 means "no session" in Amplitude."""
    props = record.get("event_properties")
    props = dict(props) if isinstance(props, dict) else {}
    if isinstance(record.get("user_properties"), dict) and record["user_properties"]:
        props["user_properties"] = record["user_properties"]
    session = record.get("session_id")
    ts = utc_text(record["event_time"]) if record.get("event_time") is not None else record.get("time")
    return {
        "event_id": record.get("insert_id") or record.get("$insert_id") or record.get("uuid"),
        "customer_id": record.get("user_id") or record.get("device_id"),
        "anonymous_id": record.get("device_id"),
        "session_id": None if session in (-1, "-1") else session,
        "ts": ts,
        "event": record.get("event_type"),
        "channel": lower_text(record.get("platform")),
        "properties": props or None,
    }
