"""The Parquet lake: the events store's tables as hive-partitioned Parquet (``events/date=YYYY-MM-DD/*.parquet``)
that Spark, DuckDB and warehouses all read, and the Ibis backends that run touchlens's analyses on it.

The lake holds ``events/`` and ``feedback/`` partitioned by the UTC date of ``ts``, and ``customers/``; JSON
columns (``properties``, ``themes``, ``attributes``) are JSON text. Only ``events/`` must exist.

``touches/`` is the journey layer (`store/journeys.py`) as of the export, whole, so engines read journeys in order
without sorting them. Readers use it only while it holds one row per mapped event of ``events/`` (a lake that
daily exports added days to since holds more events than the layer knows), else they compute journeys as ever.
"""

from __future__ import annotations

import os
import re
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import duckdb
import ibis
import pyarrow as pa
import pyarrow.dataset as ds

from touchlens.errors import TouchlensError
from touchlens.store.backends import backend_on
from touchlens.store.events import connect as connect_store
from touchlens.store.events import lock as lock_store
from touchlens.store.journeys import current_sql

if TYPE_CHECKING:
    from pyspark.sql import SparkSession

# Each table's columns in the lake, with their Arrow types; the events store's internal `id_hash` stays behind.
_TS = pa.timestamp("us", tz="UTC")
COLUMNS: dict[str, dict[str, pa.DataType]] = {
    "events": {
        "event_id": pa.string(),
        "source": pa.string(),
        "customer_id": pa.string(),
        "anonymous_id": pa.string(),
        "session_id": pa.string(),
        "ts": _TS,
        "event": pa.string(),
        "touchpoint": pa.string(),
        "channel": pa.string(),
        "properties": pa.string(),
        "received_at": _TS,
    },
    "feedback": {
        "response_id": pa.string(),
        "source": pa.string(),
        "customer_id": pa.string(),
        "ts": _TS,
        "touchpoint": pa.string(),
        "channel": pa.string(),
        "metric": pa.string(),
        "score": pa.float64(),
        "scale_min": pa.float64(),
        "scale_max": pa.float64(),
        "comment": pa.string(),
        "sentiment": pa.float64(),
        "themes": pa.string(),
        "received_at": _TS,
    },
    "customers": {
        "customer_id": pa.string(),
        "persona": pa.string(),
        "attributes": pa.string(),
        "first_seen": _TS,
        "last_seen": _TS,
    },
}
LAYER = "touches"
PARTITIONED = ("events", "feedback")
REQUIRED = "events"
BACKENDS = ("duckdb", "pyspark")
_ROWS_PER_FILE = 4_000_000
_ROWS_PER_GROUP = 256_000


class LakeError(TouchlensError):
    """A Parquet lake that cannot be read or written as touchlens lays it out."""


def write_lake(
    con: duckdb.DuckDBPyConnection, root: Path, progress: Callable[[str, int], None] | None = None
) -> dict[str, int]:
    """Write the store's events, feedback and customers under `root`; returns the rows written per table.

    Partitions (days) in the store replace the same days in the lake; other days already there stay, so a
    daily export can add to one lake."""
    written = {}
    for table, columns in COLUMNS.items():
        reader = con.sql(_select_sql(table, columns)).to_arrow_reader(_ROWS_PER_GROUP)
        counted = _Counted(reader, table, progress)
        ds.write_dataset(
            counted.reader(),
            root / table,
            format="parquet",
            partitioning=["date"] if table in PARTITIONED else None,
            partitioning_flavor="hive" if table in PARTITIONED else None,
            basename_template="part-{i}.parquet",
            existing_data_behavior="delete_matching",
            max_rows_per_file=_ROWS_PER_FILE,
            max_rows_per_group=_ROWS_PER_GROUP,
            file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
        )
        written[table] = counted.rows
    written[LAYER] = _write_layer(con, root, progress)
    return written


def _write_layer(con: duckdb.DuckDBPyConnection, root: Path, progress: Callable[[str, int], None] | None) -> int:
    """The journey layer as a rebuild would give it now, replacing any earlier export's whole."""
    sql, params = current_sql(con)
    counted = _Counted(con.sql(sql, params=params).to_arrow_reader(_ROWS_PER_GROUP), LAYER, progress)
    ds.write_dataset(
        counted.reader(),
        root / LAYER,
        format="parquet",
        basename_template="part-{i}.parquet",
        existing_data_behavior="delete_matching",
        max_rows_per_file=_ROWS_PER_FILE,
        max_rows_per_group=_ROWS_PER_GROUP,
        file_options=ds.ParquetFileFormat().make_write_options(compression="zstd"),
    )
    return counted.rows


def _select_sql(table: str, columns: Mapping[str, pa.DataType]) -> str:
    # Table and column names come from COLUMNS above, never from input.
    cols = ", ".join(f'CAST("{c}" AS VARCHAR) AS "{c}"' if t == pa.string() else f'"{c}"' for c, t in columns.items())
    day = ', CAST(ts AS DATE) AS "date"' if table in PARTITIONED else ""
    return f"SELECT {cols}{day} FROM {table}"  # noqa: S608 - our own names only


class _Counted:
    """An Arrow batch stream that counts its rows (and reports them) as the writer consumes it."""

    def __init__(self, reader: pa.RecordBatchReader, table: str, progress: Callable[[str, int], None] | None):
        self._reader, self._table, self._progress, self.rows = reader, table, progress, 0

    def reader(self) -> pa.RecordBatchReader:
        def batches() -> Any:
            for batch in self._reader:
                self.rows += batch.num_rows
                if self._progress is not None:
                    self._progress(self._table, batch.num_rows)
                yield batch

        return pa.RecordBatchReader.from_batches(self._reader.schema, batches())


def _is_url(root: str) -> bool:
    return re.match(r"^[a-zA-Z][a-zA-Z0-9+.-]*://", root) is not None


def _table_root(root: str, table: str) -> str:
    return f"{root.rstrip('/')}/{table}" if _is_url(root) else str(Path(root) / table)


def _has_files(root: str, table: str) -> bool | None:
    """Whether a local table folder holds Parquet files (None for a URL, where only the engine can tell)."""
    if _is_url(root):
        return None
    folder = Path(root) / table
    return folder.is_dir() and any(p.suffix == ".parquet" for p in folder.rglob("*.parquet"))


def _check_columns(root: str, table: str, found: list[str]) -> None:
    missing = [c for c in COLUMNS[table] if c not in found]
    if missing:
        raise LakeError(
            f"{_table_root(root, table)}: no column '{missing[0]}'; a lake's {table} need the columns "
            f"{', '.join(COLUMNS[table])} (as `touchlens export parquet --lake` writes them)"
        )


def _check_root(root: str) -> None:
    if _has_files(root, REQUIRED) is False:
        raise LakeError(
            f"{_table_root(root, REQUIRED)}: no Parquet files; a lake holds events/date=YYYY-MM-DD/*.parquet "
            "(write one with `touchlens export parquet --lake DIR`)"
        )


# -- DuckDB -------------------------------------------------------------------------------------------------


def duckdb_on_lake(root: str, memory_limit: str | None = None) -> ibis.BaseBackend:
    """An Ibis backend over a new in-memory DuckDB whose views `events`, `feedback` and `customers` read the
    lake at `root` (cheap: DuckDB reads Parquet footers only, so take one per analysis, as for the store)."""
    _check_root(root)
    # A local lake is the one folder this connection may read; a URL needs httpfs, so it cannot be confined.
    confined = not _is_url(root)
    con = connect_store(
        Path(":memory:"), read_only=True, memory_limit=memory_limit, analysis_only=confined, readable=[root]
    )
    backend = backend_on(con)
    for name in (LAYER, f"{LAYER}_stale", f"{LAYER}_state"):  # the store's own, never the lake's
        backend.drop_table(name, force=True)
    for table, columns in COLUMNS.items():
        backend.drop_table(table, force=True)
        if _has_files(root, table) is False:
            backend.create_table(table, schema=ibis.schema({c: _ibis_type(t) for c, t in columns.items()}))
            continue
        pattern = f"{_table_root(root, table)}/**/*.parquet"
        try:
            raw = backend.read_parquet(pattern, table_name=f"lake_{table}", hive_partitioning=table in PARTITIONED)
        except (duckdb.Error, OSError) as exc:
            raise LakeError(f"{_table_root(root, table)}: {exc}") from None
        _check_columns(root, table, list(raw.columns))
        backend.create_view(table, raw.select(*columns), overwrite=True)
    if _has_files(root, LAYER) is not False:
        _layer_view(backend, root)
    lock_store(con)
    return backend


def _layer_view(backend: ibis.BaseBackend, root: str) -> None:
    """The lake's journey layer as the view `touches`, when it is there and matches the lake's events."""
    try:
        raw = backend.read_parquet(f"{_table_root(root, LAYER)}/**/*.parquet", table_name=f"lake_{LAYER}")
    except (duckdb.Error, OSError) as exc:
        if _is_url(root):
            return  # a URL lake without a layer: journeys are computed from the events
        raise LakeError(f"{_table_root(root, LAYER)}: {exc}") from None
    if _layer_matches(backend, raw):
        backend.create_view(LAYER, raw, overwrite=True)


def _layer_matches(backend: ibis.BaseBackend, layer: ibis.Table) -> bool:
    """Whether the layer holds one row per mapped event: what a lake's later added days would break."""
    events = backend.table("events")
    mapped = events.filter(events.touchpoint.notnull()).count()
    return bool(backend.execute(layer.count()) == backend.execute(mapped))


def _ibis_type(arrow_type: pa.DataType) -> Any:
    return ibis.dtype(arrow_type)


# -- Spark --------------------------------------------------------------------------------------------------

# The lake's columns as Spark DDL, for the empty tables of a lake without feedback or customers.
# What touchlens asks of a session it starts itself: UTC days, and no progress bars over the CLI's output.
SPARK_DEFAULTS = {"spark.sql.session.timeZone": "UTC", "spark.ui.showConsoleProgress": "false"}
_SPARK_TYPES = {pa.string(): "STRING", _TS: "TIMESTAMP", pa.float64(): "DOUBLE"}


def spark_session(master: str = "", conf: Mapping[str, str] | None = None) -> SparkSession:
    """The active SparkSession (under spark-submit, Databricks, EMR) or a new one with `master` and `conf`."""
    try:
        from pyspark.sql import SparkSession
    except ImportError:
        raise LakeError("the pyspark engine needs PySpark and Java 17+: pip install 'touchlens[spark]'") from None
    builder = SparkSession.builder.appName("touchlens")
    if master:
        builder = builder.master(master)
    for key, value in {**SPARK_DEFAULTS, **(conf or {})}.items():
        builder = builder.config(key, value)
    return builder.getOrCreate()


def spark_on_lake(root: str, session: SparkSession) -> ibis.BaseBackend:
    """An Ibis backend over `session` whose temporary views `events`, `feedback` and `customers` read the lake.

    The session's time zone is set to UTC: days, weeks and hours are UTC in every touchlens result."""
    from pyspark.errors import AnalysisException

    _check_root(root)
    session.conf.set("spark.sql.session.timeZone", "UTC")
    for table, columns in COLUMNS.items():
        if _has_files(root, table) is False:
            _spark_empty(session, table)
            continue
        try:
            frame = session.read.parquet(_table_root(root, table))
        except AnalysisException as exc:
            if table != REQUIRED and "PATH_NOT_FOUND" in str(exc):
                _spark_empty(session, table)
                continue
            raise LakeError(f"{_table_root(root, table)}: {exc}") from None
        _check_columns(root, table, frame.columns)
        frame.select(*columns).createOrReplaceTempView(table)
    backend = ibis.pyspark.connect(session)
    session.catalog.dropTempView(LAYER)  # an earlier lake's, in a session shared with it
    if _has_files(root, LAYER) is not False:
        _spark_layer_view(backend, session, root)
    return backend


def _spark_layer_view(backend: ibis.BaseBackend, session: SparkSession, root: str) -> None:
    from pyspark.errors import AnalysisException

    try:
        frame = session.read.parquet(_table_root(root, LAYER))
    except AnalysisException as exc:
        if "PATH_NOT_FOUND" in str(exc):
            return  # no layer: journeys are computed from the events
        raise LakeError(f"{_table_root(root, LAYER)}: {exc}") from None
    frame.createOrReplaceTempView(f"lake_{LAYER}")
    if _layer_matches(backend, backend.table(f"lake_{LAYER}")):
        frame.createOrReplaceTempView(LAYER)


def _spark_empty(session: SparkSession, table: str) -> None:
    ddl = ", ".join(f"`{c}` {_SPARK_TYPES[t]}" for c, t in COLUMNS[table].items())
    session.createDataFrame([], ddl).createOrReplaceTempView(table)


def resolve_root(root: str | os.PathLike[str], base: Path) -> str:
    """A lake path from the settings: a URL as given, a relative folder relative to the workspace."""
    text = os.fspath(root)
    if _is_url(text):
        return text
    path = Path(text).expanduser()
    return str(path if path.is_absolute() else (base / path).resolve())
