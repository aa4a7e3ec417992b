"""Journeys (touchpoint-mapped events in journey order) out of the events store, as CSV or Parquet.

Rows stream from DuckDB as Arrow record batches straight into the writer, so an export of any size holds one
batch in memory at a time; DuckDB does the sort (and spills to disk when it must).
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

from touchlens.api import Workspace
from touchlens.csvsafe import safe_batch
from touchlens.store import lake

COLUMNS = ("customer_id", "ts", "touchpoint", "stage", "channel", "event", "event_id")
BATCH_ROWS = 64_000
# The map's touchpoint → stage and channel, registered as an Arrow table under the name the query below joins.
# An event without a channel of its own takes its touchpoint's (process-mining tools want a resource).
TOUCHPOINTS_VIEW = "touchlens_export_touchpoints"
JOURNEYS_SQL = """
SELECT e.customer_id, e.ts, e.touchpoint, t.stage, coalesce(e.channel, t.channel) AS channel, e.event, e.event_id
FROM events AS e LEFT JOIN touchlens_export_touchpoints AS t ON t.touchpoint = e.touchpoint
WHERE e.touchpoint IS NOT NULL
ORDER BY e.customer_id, e.ts, e.event_id
"""


@contextmanager
def journey_batches(ws: Workspace, batch_rows: int = BATCH_ROWS) -> Iterator[pa.RecordBatchReader]:
    """Every mapped event (`COLUMNS`) ordered by customer, time and event id, as a stream of Arrow batches; the
    stage is its touchpoint's, the channel its own or else its touchpoint's."""
    m = ws.map_or_empty()
    touchpoints = pa.table(
        {
            "touchpoint": pa.array([t.key for t in m.touchpoints], pa.string()),
            "stage": pa.array([t.stage for t in m.touchpoints], pa.string()),
            "channel": pa.array([t.channel for t in m.touchpoints], pa.string()),
        }
    )
    with ws.events(read_only=True) as con:
        con.register(TOUCHPOINTS_VIEW, touchpoints)
        reader: pa.RecordBatchReader = con.sql(JOURNEYS_SQL).to_arrow_reader(batch_rows)
        yield reader


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
