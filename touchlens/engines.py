"""The one place an engine is chosen and built, and the policy its quantiles follow.

`BACKENDS` maps the `[engine] backend` setting to the function that builds an Ibis backend; every analysis then
runs on `Engine.backend` and asks `Engine.ranked` how to take quantiles there. A test checks the keys are the
setting's choices.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import Any

import duckdb
import ibis

from touchlens.analytics.engine import arrow, mapped_events
from touchlens.limits import watch
from touchlens.store.backends import backend_on, duckdb_backend, for_one_analysis

# DuckDB's holistic quantiles kept 10M transition times within an 800 MB limit, but spilled 40+ GiB with 98M
# in 8 GB; past this much memory limit a mapped event, quantiles rank the values instead (engine.with_quantiles).
HOLISTIC_BYTES = 96


@dataclass(frozen=True)
class EngineChoice:
    """What the settings (and `Workspace.use_lake`) ask for: the inputs of a `BACKENDS` builder."""

    backend: str
    events_path: Path
    memory_limit: str | None = None
    lake: str | None = None  # a resolved lake root, or None for the events store
    spark_master: str = ""
    spark_conf: Mapping[str, str] = field(default_factory=dict)
    shared: duckdb.DuckDBPyConnection | None = None  # a server's one connection, when it keeps one


def _duckdb(choice: EngineChoice) -> ibis.BaseBackend:
    # Built for one analysis (a workspace builds one per call): it may remember the store's state as it runs.
    return for_one_analysis(_duckdb_backend(choice))


def _duckdb_backend(choice: EngineChoice) -> ibis.BaseBackend:
    if choice.lake:
        from touchlens.store.lake import duckdb_on_lake  # Arrow's datasets load only for a lake

        lake = duckdb_on_lake(choice.lake, choice.memory_limit)
        watch(lake.con)  # under a web request's time limit, its queries are interrupted too
        return lake
    if choice.shared is not None:
        return backend_on(watch(choice.shared.cursor()))
    return duckdb_backend(choice.events_path, choice.memory_limit)


def _pyspark(choice: EngineChoice) -> ibis.BaseBackend:
    from touchlens.store.lake import LakeError, spark_on_lake, spark_session

    if not choice.lake:
        raise LakeError(
            "the pyspark engine reads a Parquet lake: set [engine] lake in touchlens.toml "
            "(write one with `touchlens export parquet --lake DIR`)"
        )
    return spark_on_lake(choice.lake, spark_session(choice.spark_master, choice.spark_conf))


BACKENDS: dict[str, Callable[[EngineChoice], ibis.BaseBackend]] = {"duckdb": _duckdb, "pyspark": _pyspark}


def build(choice: EngineChoice) -> ibis.BaseBackend:
    """The Ibis backend `choice` names."""
    try:
        return BACKENDS[choice.backend](choice)
    except KeyError:
        from touchlens.store.lake import LakeError

        raise LakeError(f"unknown engine '{choice.backend}'; engines are: {', '.join(BACKENDS)}") from None


@dataclass
class Engine:
    """An Ibis backend with what the analyses need to know about it (run functions take one of these)."""

    backend: ibis.BaseBackend
    memory_bytes: int = 1 << 62

    @cached_property
    def ranked(self) -> bool:
        """Whether quantiles must rank values (bounded memory) instead of the engine's holistic aggregates."""
        if self.backend.name != "duckdb":
            return True  # Spark's exact percentile holds a group's values in one task's memory, too
        # Arrow, not `execute`: Ibis's `execute` loads pandas (a quarter of a second of every command) for one number.
        mapped = int(arrow(self.backend, mapped_events(self.backend).count()).as_py())
        return mapped * HOLISTIC_BYTES > self.memory_bytes

    def batches(self, expr: ibis.Table, rows: int) -> Any:
        """The rows of `expr` as a stream of Arrow batches (`pyarrow.RecordBatchReader`), in its order. DuckDB's
        own reader, since the DB-API one Ibis uses for DuckDB streams sorted results out of order (DuckDB 2.0)."""
        if self.backend.name == "duckdb":
            return self.backend.con.sql(self.backend.compile(expr)).to_arrow_reader(rows)
        return self.backend.to_pyarrow_batches(expr, chunk_size=rows)

    def execute(self, expr: Any) -> Any:
        return self.backend.execute(expr)
