"""Journeys (touchpoint-mapped events in journey order) out of the events store, as CSV or Parquet.

Rows stream from the engine as Arrow record batches straight into the writer, so an export of any size holds
one batch in memory at a time; the engine does the sort (DuckDB spills to disk when it must).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, BinaryIO

import pyarrow as pa
import pyarrow.csv as pa_csv
import pyarrow.parquet as pq

from touchlens.analytics.journeys import export_rows
from touchlens.api import Workspace
from touchlens.csvsafe import safe_batch
from touchlens.store import lake

COLUMNS = ("customer_id", "ts", "touchpoint", "stage", "channel", "event", "event_id")
BATCH_ROWS = 64_000


@contextmanager
def journey_batches(ws: Workspace, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatchReader]:
    """Every mapped event (`COLUMNS`) ordered by customer, time and event id, as a stream of Arrow batches from
    the workspace's engine (DuckDB or Spark); see `analytics.journeys.export_rows`."""
    engine = ws.engine()
    reader: pa.RecordBatchReader = engine.batches(
        export_rows(ws.map_or_empty().touchpoints, engine.backend), batch_rows
    )
    try:
        yield reader
    finally:
        reader.close()


def write_csv(ws: Workspace, sink: str | os.PathLike[str] | BinaryIO, raw: bool = False) -> int:
    """Write the journeys as CSV (header row, UTF-8) to a path or a binary stream; returns the rows written.
    Text cells a spreadsheet would run as formulas get a leading quote (`csvsafe`) unless `raw`."""
    with journey_batches(ws) as reader, pa_csv.CSVWriter(sink, reader.schema) as writer:
        return _copy(reader, writer.write_batch if raw else lambda batch: writer.write_batch(safe_batch(batch)))


def write_parquet(ws: Workspace, path: str | os.PathLike[str]) -> int:
    """Write the journeys as one Parquet file (zstd), row groups in journey order; returns the rows written."""
    with journey_batches(ws) as reader, pq.ParquetWriter(path, reader.schema, compression="zstd") as writer:
        return _copy(reader, writer.write_batch)


def write_lake(
    ws: Workspace, root: str | os.PathLike[str], progress: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Write the store's events, feedback and customers as a Parquet lake under `root` (see `store.lake`)."""
    with ws.events(read_only=True) as con:
        return lake.write_lake(con, Path(root), progress)


def _copy(reader: pa.RecordBatchReader, write: Callable[[Any], object]) -> int:
    rows = 0
    for batch in reader:
        write(batch)
        rows += batch.num_rows
    return rows
