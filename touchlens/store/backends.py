"""Ibis backends over the events store's DuckDB connections, guarded so that a text holding a second
statement never runs. Which backend an analysis gets is chosen in `touchlens.engines`."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

import duckdb
import ibis.expr.schema as sch
from ibis.backends.duckdb import Backend as DuckDBBackend

from touchlens.errors import TouchlensError
from touchlens.store.events import connect as connect_store
from touchlens.store.events import lock as lock_store
from touchlens.store.events import locked as store_locked


def duckdb_backend(events_path: Path, memory_limit: str | None = None) -> DuckDBBackend:
    """An Ibis DuckDB backend reading the workspace's events store, on a connection that reaches no other file
    and no network, whose configuration is locked once Ibis has made its settings."""
    con = connect_store(events_path, read_only=events_path.exists(), memory_limit=memory_limit, analysis_only=True)
    backend = backend_on(con)
    lock_store(con)
    return backend


def backend_on(con: duckdb.DuckDBPyConnection) -> DuckDBBackend:
    """An Ibis DuckDB backend over an open connection (or a cursor of one) that runs one statement per call."""
    guarded = cast(duckdb.DuckDBPyConnection, OneStatement(con))
    if store_locked(con):
        return _adopt(guarded)
    # Ibis 12 still writes list lambdas with the single arrow that DuckDB 2 deprecates. GLOBAL: cursors of this
    # connection made after a lock inherit it.
    con.execute("SET GLOBAL lambda_syntax = 'ENABLE_SINGLE_ARROW'")
    return AnalysisBackend.from_connection(guarded)


def _adopt(con: duckdb.DuckDBPyConnection) -> DuckDBBackend:
    """`ibis.duckdb.from_connection` without the settings it makes (time zone UTC, no replacement scans), which a
    locked configuration refuses: whoever locked it made them globally first (`store.events.connect`, above)."""
    backend = AnalysisBackend()
    backend._can_reconnect = False
    backend.con = con
    backend._record_batch_readers_consumed = {}
    return backend


class AnalysisBackend(DuckDBBackend):  # type: ignore[misc]  # Ibis ships no types for it
    """A DuckDB backend that asks each table's schema once, where Ibis asks the engine again at every `table()`
    (insights named tables 93 times, 0.3 s at 10M events): the store's tables change shape only while it is
    opened for writing, never under a reader. `memo`, when set (`touchlens.engines` sets it on the backend it
    builds for one analysis), keeps what that analysis may take as fixed while it runs
    (`analytics.journeys.layer_state`); a backend kept across changes of the data leaves it None."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.memo: dict[str, Any] | None = None
        self._schemas: dict[tuple[str, str | None, str | None], sch.Schema] = {}

    def get_schema(self, table_name: str, *, catalog: str | None = None, database: str | None = None) -> sch.Schema:
        key = (table_name, catalog, database)
        if key not in self._schemas:  # a missing table raises, and is asked again next time
            self._schemas[key] = super().get_schema(table_name, catalog=catalog, database=database)
        return self._schemas[key]


def for_one_analysis(backend: DuckDBBackend) -> DuckDBBackend:
    """`backend`, remembering what one analysis asks of the store's state (see `AnalysisBackend.memo`)."""
    if isinstance(backend, AnalysisBackend):
        backend.memo = {}
    return backend


class MultipleStatements(TouchlensError):
    """SQL bound for the engine held more than one statement: refused unrun (it can only come from an attack)."""


class OneStatement:
    """A DuckDB connection that runs one statement per `execute` or `sql` call, as Ibis always sends.

    DuckDB runs every statement of a text it is given, so a second one smuggled into an expression (``…; COPY
    … TO 'file'``) would run too; this refuses the whole text first. Cheap: only a text holding ``;`` is parsed.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection) -> None:
        self._con = con

    def execute(self, query: object, *args: Any, **kwargs: Any) -> Any:
        result = self._con.execute(_one(query), *args, **kwargs)
        # DuckDB returns the connection itself, on which Ibis may run its next statement: keep it guarded.
        return self if result is self._con else result

    def sql(self, query: object, *args: Any, **kwargs: Any) -> Any:
        return self._con.sql(_one(query), *args, **kwargs)

    def cursor(self) -> OneStatement:
        return OneStatement(self._con.cursor())

    def __getattr__(self, name: str) -> Any:
        return getattr(self._con, name)


def _one(query: object) -> Any:
    if isinstance(query, str) and ";" in query and len(duckdb.extract_statements(query)) > 1:
        raise MultipleStatements("refused SQL with more than one statement; analyses run a single SELECT")
    return query
