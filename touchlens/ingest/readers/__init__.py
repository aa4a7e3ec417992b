"""Readers by format name, and detection of a file's format from its name and first record."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from touchlens.ingest.readers.base import Reader, ReaderError
from touchlens.ingest.readers.flat import read_csv, read_jsonl, read_parquet
from touchlens.ingest.readers.segment import read_segment

EVENT_READERS: dict[str, Reader] = {
    "csv": read_csv,
    "jsonl": read_jsonl,
    "parquet": read_parquet,
    "segment": read_segment,
}
EVENT_FORMATS = ("auto", *EVENT_READERS)


def reader_for(name: str) -> Reader:
    if name not in EVENT_READERS:
        raise ReaderError(f"unknown format '{name}'; formats are: {', '.join(EVENT_FORMATS)}")
    return EVENT_READERS[name]


def detect_format(path: Path) -> str:
    """The format of an events file: from its extension, and for JSON from the keys of its first record."""
    suffix = path.suffix.lower()
    if suffix in (".parquet", ".pq"):
        return "parquet"
    if suffix in (".csv", ".txt"):
        return "csv"
    return _json_flavour(_first_record(path))


def _first_record(path: Path) -> Any:
    try:
        with path.open(encoding="utf-8", errors="replace") as f:
            head = f.read(1 << 16)
    except OSError as exc:
        raise ReaderError(f"{path}: cannot read: {exc.strerror}") from None
    for line in head.splitlines():
        if line.strip():
            try:
                return json.loads(line)
            except json.JSONDecodeError:
                continue
    return None


FLAVOURS: list[tuple[str, tuple[str, ...]]] = [
    ("segment", ("messageId",)),
    ("segment", ("batch",)),
]


def _json_flavour(record: Any) -> str:
    if isinstance(record, list) and record:
        record = record[0]
    if not isinstance(record, dict):
        return "jsonl"
    for name, keys in FLAVOURS:
        if all(k in record for k in keys) and name in EVENT_READERS:
            return name
    if record.get("type") in ("track", "page", "screen", "identify") and (
        "userId" in record or "anonymousId" in record
    ):
        return "segment"
    return "jsonl"
