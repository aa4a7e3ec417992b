"""What every reader yields: Arrow batches in one canonical shape, with each row's place in its file.

Columns: `_row` (record number in the file; for CSV the spreadsheet row, header = 1), `_raw` (the record as
read, JSON, or null), `_error` / `_field` (why and where the reader could not read the record), then the
canonical text columns of `EVENT_COLUMNS`, and `properties` (JSON text, or a struct of the file's other
columns). Checking values (missing customer, bad timestamp, …) is the pipeline's job, done in the engine.
"""

from __future__ import annotations

import csv
import itertools
import json
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pyarrow as pa

from touchlens.errors import TouchlensError

EVENT_COLUMNS = ("event_id", "customer_id", "anonymous_id", "session_id", "ts", "event", "channel")
# Feedback batches: one response to one question. `metric` is nps | csat | ces | rating; `score` text as read;
# `scale_min`/`scale_max` only for ratings on another scale; `touchpoint` when the file names one.
FEEDBACK_COLUMNS = (
    "response_id",
    "customer_id",
    "ts",
    "metric",
    "score",
    "scale_min",
    "scale_max",
    "touchpoint",
    "channel",
    "comment",
)
META_COLUMNS = ("_row", "_raw", "_error", "_field")
BATCH_ROWS = 200_000
# Python's csv module refuses a cell over 128 KiB; a long comment or property is data, not a broken file.
csv.field_size_limit(2**31 - 1)


class ReaderError(TouchlensError):
    """A file a reader cannot read at all (wrong format, missing column); names the file."""


@dataclass(frozen=True)
class ReadOptions:
    """`columns` maps canonical names to the file's names (``--columns customer_id=user,ts=time``)."""

    columns: dict[str, str] = field(default_factory=dict)
    batch_rows: int = BATCH_ROWS
    # Property names the map's rules test: columnar readers hand them over as ``__pN_in`` text columns too,
    # so mapping needs no JSON parsing.
    rule_properties: tuple[str, ...] = ()


Reader = Callable[[Path, ReadOptions], Iterator[pa.RecordBatch]]


def eager(reader: Reader) -> Reader:
    """`reader`, reading its first batch when called: a file it refuses outright fails before ingest has
    written anything (the ingest log included), so a refused file leaves no trace."""

    def read(path: Path, opts: ReadOptions) -> Iterator[pa.RecordBatch]:
        batches = iter(reader(path, opts))
        first = next(batches, None)
        return batches if first is None else itertools.chain([first], batches)

    read.__name__ = read.__qualname__ = getattr(reader, "__name__", "read")
    read.__doc__ = reader.__doc__
    return read


def parse_columns(spec: str | None, allowed: tuple[str, ...]) -> dict[str, str]:
    """``"customer_id=user,ts=time"`` → ``{"customer_id": "user", "ts": "time"}``, names checked."""
    out: dict[str, str] = {}
    for part in filter(None, (p.strip() for p in (spec or "").split(","))):
        name, eq, column = part.partition("=")
        if not eq or not column.strip():
            raise TouchlensError(f"'{part}' is not NAME=COLUMN", field="columns")
        if name.strip() not in allowed:
            raise TouchlensError(f"unknown name '{name.strip()}'; names are: {', '.join(allowed)}", field="columns")
        out[name.strip()] = column.strip()
    return out


class RowBatcher:
    """Collects records read one by one (JSON formats) into canonical batches of `size` rows."""

    def __init__(self, columns: tuple[str, ...] = (*EVENT_COLUMNS, "properties"), size: int = BATCH_ROWS) -> None:
        self.columns = (*META_COLUMNS, *columns)
        self.size = size
        self._rows: dict[str, list[Any]] = {c: [] for c in self.columns}

    def add(self, row: int, raw: str | None, values: dict[str, Any], error: tuple[str, str] | None = None) -> None:
        """One record; `values` holds canonical names (missing ones are null), `error` is (reason, field)."""
        self._rows["_row"].append(row)
        self._rows["_raw"].append(raw)
        self._rows["_error"].append(error[0] if error else None)
        self._rows["_field"].append(error[1] if error else None)
        for name in self.columns[len(META_COLUMNS) :]:
            self._rows[name].append(_text(values.get(name), name == "properties"))

    def full(self) -> bool:
        return len(self._rows["_row"]) >= self.size

    def flush(self) -> Iterator[pa.RecordBatch]:
        """The rows collected so far as one batch (nothing when empty)."""
        if not self._rows["_row"]:
            return
        arrays = [pa.array(self._rows[c], type=pa.int64() if c == "_row" else pa.string()) for c in self.columns]
        self._rows = {c: [] for c in self.columns}
        yield pa.RecordBatch.from_arrays(arrays, names=list(self.columns))


def _text(value: Any, as_json: bool) -> str | None:
    if value is None:
        return None
    if as_json or isinstance(value, dict | list):
        text = json.dumps(value, ensure_ascii=False, default=str)
    elif isinstance(value, bool):
        text = "true" if value else "false"
    else:
        text = str(value)
    return _valid_utf8(text)


def _valid_utf8(text: str) -> str:
    """JSON may carry lone surrogates (``"\\ud800"``), which no UTF-8 column can hold: replace them."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return text.encode("utf-8", "replace").decode("utf-8")
    return text


def json_lines(path: Path) -> Iterator[tuple[int, str, Any, str | None]]:
    """(line number, line, parsed value or None, error) for each non-blank line of a JSON Lines file.

    A file holding one JSON document (an array, or an object such as ``{"batch": [...]}``) is read whole.
    """
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        first = f.read(1)
        f.seek(0)
        if first == "[" or _single_document(path):
            yield from _whole_document(path)
            return
        for number, line in enumerate(f, start=1):
            if line.strip():
                yield number, line.rstrip("\n"), *parse_json(line)


def _single_document(path: Path) -> bool:
    """True when the file is one pretty-printed JSON document rather than one object a line."""
    with path.open(encoding="utf-8-sig", errors="replace") as f:
        head = f.readline().strip()
    return head in ("{", "[")


def _whole_document(path: Path) -> Iterator[tuple[int, str, Any, str | None]]:
    text = path.read_text(encoding="utf-8-sig", errors="replace")
    try:
        doc = json.loads(text)
    except json.JSONDecodeError as exc:
        yield exc.lineno, text[:2000], None, f"not valid JSON: {exc.msg} (line {exc.lineno})"
    except (RecursionError, ValueError) as exc:
        yield 1, text[:2000], None, _unreadable(exc)
    else:
        yield 1, "", doc, None


def parse_json(line: str) -> tuple[Any, str | None]:
    """(value, None) for one line of JSON, or (None, why it cannot be read)."""
    try:
        return json.loads(line), None
    except json.JSONDecodeError as exc:
        return None, f"not valid JSON: {exc.msg} (column {exc.colno})"
    except (RecursionError, ValueError) as exc:
        return None, _unreadable(exc)


def _unreadable(exc: RecursionError | ValueError) -> str:
    """JSON that parses in principle but not in Python: nested past its recursion limit, or an integer of over
    4300 digits (its guard against slow conversions)."""
    why = "nested too deeply" if isinstance(exc, RecursionError) else "a number with too many digits"
    return f"not valid JSON: {why}"
