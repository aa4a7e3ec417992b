"""The `Workspace` facade: the one door the edges (CLI, web, reports, demo) come through.

Example::

    ws = touchlens.init("acme")            # or touchlens.open("acme")
    ws.import_map("touchlens.yaml")
    ws.matrix().to_dict()
"""

from __future__ import annotations

import csv
import io
import os
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from touchlens import admin
from touchlens.admin import LIBRARY, Backups, Keys, Users
from touchlens.analyses import Analyses
from touchlens.errors import MapError, Problem, WorkspaceError
from touchlens.experience import Experience
from touchlens.ingest.formats import EVENT_FORMATS
from touchlens.locate import find_root
from touchlens.model.checks import Finding, design_checks, model_duplicates, reference_problems
from touchlens.model.durations import as_duration
from touchlens.model.inventory import dump_inventory, parse_inventory
from touchlens.model.map import Touchpoint, TouchpointMap
from touchlens.model.mapfile import dotted, dump_map, parse_map
from touchlens.model.merge import apply_inventory, merge_maps
from touchlens.model.views import Matrix, TouchpointFilter, filter_touchpoints, matrix
from touchlens.once import Latest
from touchlens.store import meta
from touchlens.store.workspace import Storage, init_storage, open_storage

if TYPE_CHECKING:
    import duckdb
    import ibis
    import pyarrow as pa
    import sqlalchemy as sa

    from touchlens.alerts import Alerts
    from touchlens.analytics.attribution import Path as Path_
    from touchlens.analytics.scorecard import Scorecard
    from touchlens.audits import Audits
    from touchlens.cases import Cases
    from touchlens.contacts import Contacts
    from touchlens.design import Design
    from touchlens.engines import Engine
    from touchlens.ingest import pipeline
    from touchlens.ingest.pseudonym import Pseudonymiser
    from touchlens.queries.base import Query
    from touchlens.store.settings import Settings
    from touchlens.surveys import Surveys

MapFormat = Literal["yaml", "json", "csv"]
SECTIONS = ("channels", "personas", "journeys", "touchpoints", "opportunities")
# Uploads wait here while they are ingested: inside the workspace, so erasure and a restart can reach them.
UPLOADS = ".uploads"


@dataclass
class ImportReport:
    """What an import did: item counts of the map now stored, and the rows it left out (CSV)."""

    file: str
    format: MapFormat
    merged: bool
    counts: dict[str, int]
    problems: list[Problem] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        return {
            "file": self.file,
            "format": self.format,
            "merged": self.merged,
            "counts": self.counts,
            "rejected": [str(p) for p in self.problems],
            "warnings": self.warnings,
        }


def map_format(path: str | os.PathLike[str], fmt: str = "auto") -> MapFormat:
    if fmt != "auto":
        if fmt not in ("yaml", "json", "csv"):
            raise MapError([Problem(f"unknown map format '{fmt}'; formats are: auto, yaml, json, csv")])
        return fmt  # type: ignore[return-value]
    suffix = Path(path).suffix.lower()
    return "csv" if suffix == ".csv" else "json" if suffix == ".json" else "yaml"


def read_text(path: str | os.PathLike[str], newline: str | None = None) -> str:
    """A UTF-8 text file (a byte-order mark is dropped), or a `MapError` naming the file.

    CSV is read with ``newline=""`` so line breaks inside quoted cells stay as they are.
    """
    try:
        with Path(path).open(encoding="utf-8-sig", newline=newline) as f:
            return f.read()
    except FileNotFoundError:
        raise MapError([Problem("file not found", file=str(path))]) from None
    except (UnicodeDecodeError, IsADirectoryError, PermissionError) as exc:
        raise MapError([Problem(f"cannot read as UTF-8 text: {exc}", file=str(path))]) from None


def read_map_file(path: str | os.PathLike[str], fmt: str = "auto") -> TouchpointMap:
    """Parse and validate a YAML or JSON map file (a CSV inventory becomes a map of its touchpoints)."""
    kind = map_format(path, fmt)
    if kind == "csv":
        inv = parse_inventory(read_text(path, newline=""), str(path))
        if inv.problems:
            raise MapError(inv.problems)
        base = TouchpointMap(name=Path(path).stem)
        merged, problems = apply_inventory(base, inv, merge=False, filename=str(path))
        if problems:
            raise MapError(problems)
        return merged
    return parse_map(read_text(path), str(path), kind)


class Workspace(Analyses, Experience):
    """One workspace folder: its settings, its map and (in later issues) its events and analyses."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage
        self._shared: duckdb.DuckDBPyConnection | None = None
        self._engine: ibis.BaseBackend | None = None
        self._lake: str | None = None
        self._staged: set[str] = set()  # names of the upload folders an ingest in this process is using
        self._staging = threading.Lock()
        self._period_reads: Latest[tuple[list[str], Any]] = Latest()  # drivers' and insights' one read
        self._scorecards: Latest[Scorecard] = Latest()  # a page's, its insights' and its health's one scorecard

    def share_connection(self) -> None:
        """Keep one read-write connection to the events store and give every caller a cursor of it.

        For a long-running server: DuckDB refuses a read-write and a read-only connection to one file in one
        process, so uploads and analyses must share one.
        """
        if self._shared is None:
            # The events store, the engine, ingest and the statistics load inside the methods that use them: the
            # CLI opens this facade for light commands too (tests/test_startup.py).
            from touchlens.store import events as events_store
            from touchlens.store.backends import backend_on

            limit = self.settings.store.memory_limit
            # Analyses share this connection, so it reaches no file and no network; ingest hands it Arrow.
            shared = events_store.connect(self._storage.events_path, memory_limit=limit, analysis_only=True)
            backend_on(shared)  # Ibis's own settings, made before the configuration is locked
            events_store.lock(shared)
            self._shared = shared

    def writer_cursor(self) -> duckdb.DuckDBPyConnection:
        """A cursor of the shared connection for the server's one writer thread."""
        self.share_connection()
        assert self._shared is not None
        return self._shared.cursor()

    @property
    def root(self) -> Path:
        return self._storage.root

    @property
    def settings(self) -> Settings:
        return self._storage.settings

    def _meta_engine(self) -> sa.Engine:
        return self._storage.meta_engine

    def meta_engine(self) -> sa.Engine:
        """The metadata store (map, roadmap, changes, users)."""
        return self._storage.meta_engine

    @property
    def users(self) -> Users:
        """Users of the web app, their sessions and API tokens; each change audited (`touchlens.admin`)."""
        return Users(self._storage.meta_engine)

    @property
    def alerts(self) -> Alerts:
        """Alert rules on CSAT drops, health, survey volume and case age, and the alerts they raised."""
        from touchlens.alerts import Alerts

        return Alerts(self)

    def check_alerts(self) -> None:
        """Check the alert rules after new data, when there are any (a check with none costs one small read)."""
        if self.alerts.list():
            self.alerts.check()

    @property
    def audits(self) -> Audits:
        """Walkthrough audits: a journey walked touchpoint by touchpoint, compared with the map and the data."""
        from touchlens.audits import Audits

        return Audits(self)

    @property
    def contacts(self) -> Contacts:
        """The map's proactive rules run on live data: contacts sent, held out, and measured against the holdout."""
        from touchlens.contacts import Contacts

        return Contacts(self)

    @property
    def design(self) -> Design:
        """Proactive touchpoints from the map replayed on the stored history (`design simulate`)."""
        from touchlens.design import Design

        return Design(self)

    @property
    def cases(self) -> Cases:
        """Follow-up cases opened by low scores and negative comments, for the touchpoints' owners."""
        from touchlens.cases import Cases

        return Cases(self)

    @property
    def surveys(self) -> Surveys:
        """Survey links for customers to answer at a touchpoint, their QR codes and answers."""
        from touchlens.surveys import Surveys

        return Surveys(self)

    @property
    def keys(self) -> Keys:
        """Write keys for live ingestion; each change audited."""
        return Keys(self._storage.meta_engine)

    @property
    def backup(self) -> Backups:
        """Backups of the whole workspace, and restores; each audited."""
        # A server's workspace copies its store through its own open connection (no second process may open it).
        return Backups(self.root, self._storage.meta_engine, self.events if self._shared is not None else None)

    def audit_entries(self, limit: int = 100, action: str | None = None) -> list[dict[str, Any]]:
        """The audit log, newest first: the newest `limit` entries (of one of `admin.ACTIONS`)."""
        return admin.entries(self._storage.meta_engine, limit, action)

    def _record(self, actor: str, action: str, target: str = "", **detail: Any) -> None:
        """The audit entry of a change this facade made: who (`actor`), what, to what; never a secret."""
        admin.record(self._storage.meta_engine, actor, action, target, **detail)

    def data_version(self) -> tuple[Any, ...]:
        """Changes whenever events, feedback or customers change (ingest runs, the latest one, customers)."""
        from touchlens.store import events as events_store

        with self.events() as con:
            return events_store.version(con)

    def _shared_version(self) -> tuple[Any, ...] | None:
        """The data version while this process shares one connection to the store (a server), else None."""
        return self.data_version() if self._shared is not None else None

    def map_version(self) -> str | None:
        """Changes each time the map is saved."""
        return meta.map_version(self._storage.meta_engine)

    def has_map(self) -> bool:
        return meta.load_map(self._storage.meta_engine) is not None

    def map(self) -> TouchpointMap:
        """The stored map; a `WorkspaceError` says how to import one when there is none."""
        stored = meta.load_map(self._storage.meta_engine)
        if stored is None:
            raise WorkspaceError(f"no map in workspace {self.root} yet; run: touchlens map import FILE")
        return stored

    def save_map(self, m: TouchpointMap, *, actor: str = LIBRARY, target: str = "map", **detail: Any) -> None:
        """Store `m`, replacing the map; refused with every problem when keys clash or references break.
        Audited as a change of `target` (the map, or the item an edit changed), with `detail`."""
        self._store_map(m)
        self._record(actor, "map-change", target, **detail)

    def _store_map(self, m: TouchpointMap) -> None:
        """`save_map` without its audit entry, for the changes that record one of their own."""
        problems = model_duplicates(m) + reference_problems(m)
        if problems:
            raise MapError([Problem(p.message, dotted(p.path)) for p in problems])
        meta.save_map(self._storage.meta_engine, m)

    def import_map(
        self, path: str | os.PathLike[str], merge: bool = False, fmt: str = "auto", *, actor: str = LIBRARY
    ) -> ImportReport:
        """Replace the map with a file's (or merge it in by key). A CSV inventory fills the touchpoints."""
        kind = map_format(path, fmt)
        existing = meta.load_map(self._storage.meta_engine)
        if kind == "csv":
            report = self._import_inventory(path, existing, merge)
        else:
            report = self._import_file(path, kind, existing, merge)
        self._record(actor, "map-change", "map", file=Path(path).name, merge=merge, counts=report.counts)
        return report

    def _import_file(
        self, path: str | os.PathLike[str], kind: Literal["yaml", "json"], existing: TouchpointMap | None, merge: bool
    ) -> ImportReport:
        incoming = parse_map(read_text(path), str(path), kind)
        new = merge_maps(existing, incoming) if merge and existing is not None else incoming
        try:
            self._store_map(new)
        except MapError as exc:  # a merge can break references neither map breaks alone: say which file did
            raise MapError([replace(p, file=p.file or f"{path} (merged)") for p in exc.problems]) from None
        return ImportReport(str(path), kind, merge, _counts(new))

    def _import_inventory(
        self, path: str | os.PathLike[str], existing: TouchpointMap | None, merge: bool
    ) -> ImportReport:
        inv = parse_inventory(read_text(path, newline=""), str(path))
        base = existing or TouchpointMap(name=Path(path).stem)
        new, problems = apply_inventory(base, inv, merge, str(path))
        self._store_map(new)
        warnings = [f"{path}:1: unknown column '{c}' (ignored)" for c in inv.unknown_columns]
        report = ImportReport(str(path), "csv", merge, _counts(new), problems, warnings)
        report.problems.sort(key=lambda p: p.line or 0)
        return report

    def export_map(self, fmt: MapFormat = "yaml") -> str:
        m = self.map()
        return dump_inventory(m.touchpoints) if fmt == "csv" else dump_map(m, fmt)

    def map_or_empty(self) -> TouchpointMap:
        """The stored map, or an empty one named after the folder (ingest works before any map exists)."""
        return meta.load_map(self._storage.meta_engine) or TouchpointMap(name=self.root.name)

    @contextmanager
    def events(self, read_only: bool = False) -> Iterator[duckdb.DuckDBPyConnection]:
        """The events store, open for the duration of the block."""
        from touchlens.limits import watch
        from touchlens.store import events as events_store

        limit = self.settings.store.memory_limit
        if self._shared is not None:
            con = self._shared.cursor()
        else:
            con = events_store.connect(self._storage.events_path, read_only=read_only, memory_limit=limit)
        try:
            yield watch(con)
        finally:
            con.close()

    def ingest_events(
        self,
        paths: Sequence[str | os.PathLike[str]],
        fmt: str = "auto",
        columns: str | dict[str, str] | None = None,
        source: str | None = None,
        progress: Callable[[int], None] | None = None,
        *,
        actor: str = LIBRARY,
    ) -> pipeline.IngestReport:
        """Read event files into the store: mapped to touchpoints, bad rows quarantined, nothing twice."""
        from touchlens.ingest import pipeline
        from touchlens.ingest.readers import detect_format, reader_for
        from touchlens.ingest.readers.base import ReaderError, ReadOptions, parse_columns
        from touchlens.ingest.readers.flat import DEFAULT_NAMES
        from touchlens.ingest.rules import rule_properties

        if fmt not in EVENT_FORMATS:
            raise ReaderError(f"unknown format '{fmt}'; formats are: {', '.join(EVENT_FORMATS)}")
        mapping = columns if isinstance(columns, dict) else parse_columns(columns, tuple(DEFAULT_NAMES))
        m = self.map_or_empty()
        opts = ReadOptions(mapping, self.settings.ingest.batch_rows, tuple(rule_properties(m.touchpoints)))
        started = time.perf_counter()
        with self.events() as con:
            try:
                total = _each_file(
                    paths,
                    lambda path: detect_format(path) if fmt == "auto" else fmt,
                    lambda path, kind: pipeline.EventIngest(con, m, source or kind).run(
                        path, self._pseudonymised(con, reader_for(kind)(path, opts)), progress
                    ),
                )
            finally:  # the files that landed before a bad one still bring their customers up to date
                pipeline.refresh_customers(con, m)
            pipeline.assign_personas(con, m)
        # The whole call: the customers and the journey layer brought up to date after the files count too.
        total.seconds = time.perf_counter() - started
        self._record(actor, "ingest", "events", **_ingested(total, fmt, source))
        self.check_alerts()
        return total

    def quarantine(self, examples: int = 3) -> list[dict[str, Any]]:
        """Quarantined rows grouped by kind and reason, largest group first, with a few examples each."""
        from touchlens.store import events as events_store

        with self.events(read_only=True) as con:
            return events_store.quarantine_groups(con, examples)

    def pseudonymiser(self) -> Pseudonymiser | None:
        """The settings' pseudonymiser, or None when ids are stored as sent."""
        from touchlens.ingest.pseudonym import Pseudonymiser

        privacy = self.settings.privacy
        return Pseudonymiser(privacy.salt) if privacy.pseudonymise else None

    def _pseudonymised(
        self, con: duckdb.DuckDBPyConnection, batches: Iterator[pa.RecordBatch]
    ) -> Iterator[pa.RecordBatch]:
        """The reader's batches with customer ids pseudonymised when the settings say so (on a cursor of its
        own: the batches may be read on another thread)."""
        pseudo = self.pseudonymiser()
        return pseudo.batches(con.cursor(), batches) if pseudo else batches

    def stored_id(self, customer_id: str) -> str:
        """The id as the store holds it: the pseudonym when pseudonymisation is on."""
        pseudo = self.pseudonymiser()
        return pseudo.one(customer_id) if pseudo else customer_id.strip()

    def forget(self, customer_ids: Sequence[str], actor: str = LIBRARY, suppress: bool = True) -> list[dict[str, int]]:
        """Erase customers from events, feedback, customers and quarantine, record each erasure (who, when,
        how many rows: never the id) and, unless `suppress` is False, drop their later events at ingest."""
        with self.events() as con:
            return self.forget_on(con, customer_ids, actor=actor, suppress=suppress)

    def forget_on(
        self,
        con: duckdb.DuckDBPyConnection,
        customer_ids: Sequence[str],
        *,
        actor: str = LIBRARY,
        suppress: bool = True,
    ) -> list[dict[str, int]]:
        """`forget` on a connection the caller holds (the server's live writer, so erasure never races live
        events); the ids are the customers' own, pseudonymised here when the settings say so."""
        from touchlens.store import erasure, journeys

        found = [erasure.erase(con, self.stored_id(c), actor, suppress) for c in customer_ids]
        self.cases.forget([self.stored_id(c) for c in customer_ids])  # a case quotes what the customer said
        self.contacts.forget([self.stored_id(c) for c in customer_ids])
        journeys.refresh(con)
        erasure.compact(con)
        for counts in found:
            self.record_erasure(actor, counts, suppress)
        return found

    @contextmanager
    def staged_upload(self, name: str) -> Iterator[Path]:
        """Where to write an upload called `name` (a safe file name) before ingesting it: a new private folder
        in the workspace's `.uploads`, removed with its file when the block ends, whatever happens."""
        uploads = self.root / UPLOADS
        uploads.mkdir(mode=0o700, exist_ok=True)
        uploads.chmod(0o700)  # mkdir's mode is cut by the umask, and an older folder may be wider
        with self._staging:  # so that a sweep never sees the folder before it is known to be in use
            folder = Path(tempfile.mkdtemp(prefix="upload-", dir=uploads))  # 0700, a name nobody can guess
            self._staged.add(folder.name)
        try:
            yield folder / name
        finally:
            shutil.rmtree(folder, ignore_errors=True)  # a file that cannot go is swept at the next start
            with self._staging:
                self._staged.discard(folder.name)

    def clear_uploads(self) -> int:
        """Remove staged uploads no ingest of this process is using (those a killed server or upload left);
        how many were removed. The server calls it when it starts, erasure whenever it runs."""
        uploads = self.root / UPLOADS
        with self._staging:
            left = [p for p in uploads.iterdir() if p.name not in self._staged] if uploads.is_dir() else []
        for path in left:  # another sweep may have taken one already: gone is what is wanted
            if path.is_dir() and not path.is_symlink():
                shutil.rmtree(path, ignore_errors=True)
            else:
                path.unlink(missing_ok=True)
        return len(left)

    def record_erasure(self, actor: str, counts: dict[str, int], suppressed: bool) -> None:
        """Finish an erasure (the CLI's and the API's): record it, and remove staged uploads, which may hold the
        customer's raw events."""
        self._record(actor, "erase", "customer", rows=counts, suppressed=suppressed)
        self.clear_uploads()

    def lift_suppression(self, customer_ids: Sequence[str], actor: str = LIBRARY) -> list[bool]:
        """Let events of these (erased) customers in again; True for each whose suppression was lifted."""
        from touchlens.store import erasure

        with self.events() as con:
            lifted = [erasure.lift(con, self.stored_id(c)) for c in customer_ids]
        self._record(actor, "suppression-lift", "customer", count=sum(lifted))
        return lifted

    def clear_quarantine(self, *, actor: str = LIBRARY) -> int:
        """Delete every quarantined row; how many there were."""
        from touchlens.store import events as events_store

        with self.events() as con:
            n = events_store.clear_quarantine(con)
        self._record(actor, "quarantine-clear", "quarantine", rows=n)
        return n

    def ingest_feedback(
        self,
        paths: Sequence[str | os.PathLike[str]],
        fmt: str = "auto",
        columns: str | dict[str, str] | None = None,
        source: str | None = None,
        attach_window: str | timedelta | None = None,
        progress: Callable[[int], None] | None = None,
        *,
        actor: str = LIBRARY,
    ) -> pipeline.IngestReport:
        """Read survey responses: scores checked, each tied to a touchpoint (named, or the latest within the window)."""
        from touchlens.ingest.feedback import FeedbackIngest
        from touchlens.ingest.readers.base import ReaderError, ReadOptions, parse_columns
        from touchlens.ingest.readers.feedback import FEEDBACK_READERS, detect_feedback_format

        if fmt != "auto" and fmt not in FEEDBACK_READERS:
            raise ReaderError(f"unknown format '{fmt}'; formats are: auto, {', '.join(FEEDBACK_READERS)}")
        window = as_duration(attach_window or self.settings.ingest.attach_window, "attach_window")
        mapping = columns if isinstance(columns, dict) else parse_columns(columns, _feedback_names())
        opts = ReadOptions(columns=mapping, batch_rows=self.settings.ingest.batch_rows)
        m = self.map_or_empty()
        started = time.perf_counter()
        with self.events() as con:
            total = _each_file(
                paths,
                lambda path: detect_feedback_format(path) if fmt == "auto" else fmt,
                lambda path, kind: FeedbackIngest(con, m, source or kind, window).run(
                    path, self._pseudonymised(con, FEEDBACK_READERS[kind](path, opts)), progress
                ),
            )
            self.cases.scan_on(con)
        total.seconds = time.perf_counter() - started
        self._record(actor, "ingest", "feedback", **_ingested(total, fmt, source))
        self.check_alerts()
        return total

    def ingest_customers(
        self, path: str | os.PathLike[str], id_column: str | None = None, *, actor: str = LIBRARY
    ) -> dict[str, int]:
        """Merge customer attributes from a CSV and reassign personas by the map's segment rules."""
        from touchlens.ingest import pipeline
        from touchlens.ingest.customers import ingest_customers
        from touchlens.store import events as events_store

        with self.events() as con:
            pseudo = self.pseudonymiser()
            rewrite = (lambda batch: pseudo.batch(con.cursor(), batch)) if pseudo else None
            counts = ingest_customers(con, _existing(path).resolve(), id_column, rewrite)
            pipeline.assign_personas(con, self.map_or_empty())
            personas = events_store.persona_counts(con)
        self._record(actor, "ingest", "customers", files=[Path(path).name], **counts)
        return {**counts, **{f"persona:{k or '(none)'}": n for k, n in personas.items()}}

    def use_engine(self, backend: ibis.BaseBackend) -> None:
        """Run every analysis on `backend`: any Ibis backend whose tables `events`, `feedback` and `customers`
        have the lake's columns (see docs/scale.md), such as BigQuery views over a GA4 export."""
        self._engine = backend

    def use_spark(self, session: Any, lake: str | os.PathLike[str] | None = None) -> None:
        """Run every analysis on an existing SparkSession (Databricks, EMR, spark-submit) over the Parquet lake
        `lake` (default: the `engine.lake` setting)."""
        from touchlens.store.lake import spark_on_lake

        self._engine = spark_on_lake(self._lake_root(lake), session)

    def use_lake(self, lake: str | os.PathLike[str]) -> None:
        """Run every analysis on DuckDB over the Parquet lake `lake` instead of the events store."""
        self._lake, self._engine = self._lake_root(lake), None

    def _lake_root(self, lake: str | os.PathLike[str] | None) -> str:
        from touchlens.store.lake import LakeError, resolve_root

        chosen = lake if lake is not None else self._lake or self.settings.engine.lake
        if not chosen:
            raise LakeError(
                "the pyspark engine reads a Parquet lake: set [engine] lake in touchlens.toml "
                "(write one with `touchlens export parquet --lake DIR`)"
            )
        return resolve_root(chosen, self.root)

    def _memory_bytes(self) -> int:
        from touchlens.store import events as events_store

        return events_store.size_bytes(self.settings.store.memory_limit)

    def _backend_per_call(self) -> bool:
        """Whether each `_backend()` call builds a backend of its own on one DuckDB database (a connection or
        cursor of the store's), so that two threads may run analyses side by side: not on an engine given to
        `use_*`, a Spark session, or a lake (each call there opens a DuckDB of its own, with the whole memory
        limit)."""
        lake = self._lake or self.settings.engine.lake
        return self._engine is None and self.settings.engine.backend == "duckdb" and not lake

    def _backend(self) -> ibis.BaseBackend:
        """The engine the analyses run on: the one given to `use_*`, else as the `[engine]` settings say."""
        if self._engine is not None:
            return self._engine
        from touchlens import engines

        engine = self.settings.engine
        chosen = self._lake or engine.lake
        choice = engines.EngineChoice(
            engine.backend,
            self._storage.events_path,
            self.settings.store.memory_limit,
            self._lake_root(chosen) if chosen else None,  # Arrow's datasets load only for a lake
            engine.spark_master,
            engine.spark_conf,
            self._shared,
        )
        backend = engines.build(choice)
        if engine.backend == "pyspark":
            self._engine = backend  # one Spark session for the workspace's life
        return backend

    def run(self, query: Query) -> Any:
        """Any analysis of the registry: its query checked against the map, then run on the engine.

        ``ws.run(FlowsQuery(session_gap="30m")).to_dict()``; `touchlens.registry.ANALYSES` lists them all.
        """
        from touchlens.registry import analysis_of

        return analysis_of(query).run(self.engine(), query.resolve(self.map_or_empty()))

    def engine(self) -> Engine:
        """The backend with what the analyses need to know about it (`registry` run functions take one)."""
        from touchlens.engines import Engine

        return Engine(self._backend(), self._memory_bytes())

    def remap(self, *, actor: str = LIBRARY) -> dict[str | None, int]:
        """Re-apply the map's touchpoint rules to every stored event."""
        from touchlens.ingest import pipeline

        m = self.map()
        with self.events() as con:
            counts = pipeline.remap(con, m)
            pipeline.assign_personas(con, m)
        unmapped = counts.get(None, 0)
        self._record(actor, "remap", "events", mapped=sum(counts.values()) - unmapped, unmapped=unmapped)
        return counts

    def _holdouts(self, touchpoint: str) -> list[dict[str, Any]]:
        return [h.to_dict() for h in self.contacts.holdouts_at(touchpoint)]

    def design_checks(self) -> list[Finding]:
        return design_checks(self.map())

    def touchpoints(self, flt: TouchpointFilter | None = None) -> list[Touchpoint]:
        return filter_touchpoints(self.map(), flt or TouchpointFilter())

    def matrix(self, persona: str | None = None) -> Matrix:
        m = self.map()
        return matrix(m, filter_touchpoints(m, TouchpointFilter(persona=persona)) if persona else None)


def read_paths(path: str | os.PathLike[str]) -> list[Path_]:
    """Aggregated paths in ChannelAttribution's layout: path (keys joined by " > "), total_conversions,
    total_conversion_value, total_null; comma or semicolon separated."""
    from touchlens.analytics.attribution import Path as Path_

    text = read_text(path, newline="")
    dialect = csv.Sniffer().sniff(text[:4096], delimiters=",;\t")
    rows = list(csv.DictReader(io.StringIO(text), dialect=dialect))
    needed = {"path", "total_conversions"}
    if not rows or not needed <= set(rows[0]):
        found = ", ".join(rows[0]) if rows else "none"
        raise MapError([Problem(f"need columns path and total_conversions; columns are: {found}", file=str(path))])
    out = []
    for number, row in enumerate(rows, start=2):
        try:
            out.append(
                Path_(
                    tuple(s.strip() for s in row["path"].split(">") if s.strip()),
                    float(row["total_conversions"] or 0),
                    float(row.get("total_null") or 0),
                    float(row.get("total_conversion_value") or 0),
                )
            )
        except ValueError as exc:
            raise MapError([Problem(f"not a number: {exc}", file=str(path), line=number)]) from None
    return out


def _each_file(
    paths: Sequence[str | os.PathLike[str]],
    kind_of: Callable[[Path], str],
    ingest: Callable[[Path, str], pipeline.IngestReport],
) -> pipeline.IngestReport:
    """Ingest each file with its format (checked to exist first) and add up the reports."""
    from touchlens.ingest import pipeline

    total = pipeline.IngestReport()
    for raw_path in paths:
        path = _existing(raw_path).resolve()
        total.add(ingest(path, kind_of(path)))
        total.files.append(str(path))
    return total


def _existing(path: str | os.PathLike[str]) -> Path:
    from touchlens.ingest.readers.base import ReaderError

    p = Path(path)
    if not p.is_file():
        raise ReaderError(f"{p}: file not found")
    return p


def _ingested(report: pipeline.IngestReport, fmt: str, source: str | None) -> dict[str, Any]:
    """An ingest's audit detail: the files' names (not where they were), the format, the source and the counts."""
    counts = {name: getattr(report, name) for name in ("read", "accepted", "duplicates", "quarantined")}
    return {"files": [Path(f).name for f in report.files], "format": fmt, "source": source, **counts}


def _feedback_names() -> tuple[str, ...]:
    """--columns names for feedback: the canonical columns, plus wide files' one column per metric."""
    from touchlens.ingest.readers.base import FEEDBACK_COLUMNS

    return (*FEEDBACK_COLUMNS, "nps", "csat", "ces", "rating")


def _counts(m: TouchpointMap) -> dict[str, int]:
    counts = {section: len(getattr(m, section)) for section in SECTIONS}
    counts["stages"] = len(m.stage_keys())
    return counts


def init(path: str | os.PathLike[str] = ".") -> Workspace:
    """Create (or re-open) a workspace folder with its settings file and metadata store."""
    storage, _ = init_storage(Path(path))
    return Workspace(storage)


def open(path: str | os.PathLike[str] | None = None) -> Workspace:
    """Open the workspace at `path`, `$TOUCHLENS_WORKSPACE`, or the nearest `touchlens.toml` upward."""
    return Workspace(open_storage(find_root(path)))


def __getattr__(name: str) -> Any:
    """`FEEDBACK_NAMES`, still importable from here, without loading the readers (and Arrow) until asked for."""
    if name == "FEEDBACK_NAMES":
        return _feedback_names()
    raise AttributeError(f"module 'touchlens.api' has no attribute '{name}'")
