"""Readers by format name, and detection of a file's format from its name and first record."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow as pa
import pyarrow.parquet as pq

from touchlens.ingest.formats import EVENT_FORMATS
from touchlens.ingest.readers.base import Reader, ReaderError, eager
from touchlens.ingest.readers.feedback import FEEDBACK_FORMATS, FEEDBACK_READERS, detect_feedback_format
from touchlens.ingest.readers.flat import read_csv, read_jsonl, read_parquet
from touchlens.ingest.readers.ga4 import read_ga4
from touchlens.ingest.readers.product import first_record, read_amplitude, read_mixpanel
from touchlens.ingest.readers.segment import read_segment
from touchlens.ingest.readers.zendesk import read_zendesk

# Eager: a file a reader refuses is refused before ingest writes anything.
EVENT_READERS: dict[str, Reader] = {
    name: eager(reader)
    for name, reader in {
        "csv": read_csv,
        "jsonl": read_jsonl,
        "parquet": read_parquet,
        "segment": read_segment,
        "ga4": read_ga4,
        "mixpanel": read_mixpanel,
        "amplitude": read_amplitude,
        "zendesk": read_zendesk,
    }.items()
}
if ("auto", *EVENT_READERS) != EVENT_FORMATS:  # a reader added here is named in formats.py too
    raise RuntimeError(f"ingest/formats.py names {EVENT_FORMATS[1:]}, the readers are {tuple(EVENT_READERS)}")
GA4_COLUMNS = ("event_name", "event_timestamp")


def reader_for(name: str) -> Reader:
    if name not in EVENT_READERS:
        raise ReaderError(f"unknown format '{name}'; formats are: {', '.join(EVENT_FORMATS)}")
    return EVENT_READERS[name]


def detect_format(path: Path) -> str:
    """The format of an events file: from its extension, and for JSON from the keys of its first record."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return _parquet_flavour(path)
    if suffix in (".csv", ".txt"):
        return "csv"
    return _json_flavour(first_record(path))


def _parquet_flavour(path: Path) -> str:
    try:
        names = pq.read_schema(str(path)).names
    except (pa.ArrowException, OSError, ValueError):
        return "parquet"  # the Parquet reader says what is wrong with it
    return "ga4" if all(c in names for c in GA4_COLUMNS) else "parquet"


# A flavour matches when every group has one of its keys; "a.b" is key b of the object at key a. First wins.
FLAVOURS: list[tuple[str, tuple[tuple[str, ...], ...]]] = [
    ("segment", (("messageId",),)),
    ("segment", (("batch",),)),
    ("ga4", (GA4_COLUMNS[:1], GA4_COLUMNS[1:])),
    ("mixpanel", (("event",), ("properties.distinct_id", "properties.$insert_id"))),
    ("amplitude", (("event_type",), ("insert_id", "$insert_id", "event_time"))),
    ("zendesk", (("tickets",),)),
    ("zendesk", (("via",), ("requester_id",))),
]


def _has(record: dict[str, Any], key: str) -> bool:
    outer, dot, inner = key.partition(".")
    if not dot:
        return key in record
    nested = record.get(outer)
    return isinstance(nested, dict) and inner in nested


def _json_flavour(record: Any) -> str:
    if isinstance(record, list) and record:
        record = record[0]
    if not isinstance(record, dict):
        return "jsonl"
    for name, groups in FLAVOURS:
        if all(any(_has(record, k) for k in group) for group in groups) and name in EVENT_READERS:
            return name
    if record.get("type") in ("track", "page", "screen", "identify") and (
        "userId" in record or "anonymousId" in record
    ):
        return "segment"
    return "jsonl"


__all__ = [
    "EVENT_FORMATS",
    "EVENT_READERS",
    "FEEDBACK_FORMATS",
    "FEEDBACK_READERS",
    "detect_feedback_format",
    "detect_format",
    "reader_for",
]
