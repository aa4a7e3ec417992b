"""The `Workspace` facade: the one door the edges (CLI, web, reports, demo) come through.

Example::

    ws = touchlens.init("acme")            # or touchlens.open("acme")
    ws.import_map("touchlens.yaml")
    ws.matrix().to_dict()
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from touchlens.errors import MapError, Problem, WorkspaceError
from touchlens.model.checks import Finding, design_checks, model_duplicates, reference_problems
from touchlens.model.inventory import dump_inventory, parse_inventory
from touchlens.model.map import Touchpoint, TouchpointMap
from touchlens.model.mapfile import dotted, dump_map, parse_map
from touchlens.model.merge import apply_inventory, merge_maps
from touchlens.model.views import Matrix, TouchpointFilter, filter_touchpoints, matrix
from touchlens.store import meta
from touchlens.store.settings import Settings
from touchlens.store.workspace import Storage, find_root, init_storage, open_storage

MapFormat = Literal["yaml", "json", "csv"]
SECTIONS = ("channels", "personas", "journeys", "touchpoints", "opportunities")


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


class Workspace:
    """One workspace folder: its settings, its map and (in later issues) its events and analyses."""

    def __init__(self, storage: Storage) -> None:
        self._storage = storage

    @property
    def root(self) -> Path:
        return self._storage.root

    @property
    def settings(self) -> Settings:
        return self._storage.settings

    def has_map(self) -> bool:
        return meta.load_map(self._storage.meta_engine) is not None

    def map(self) -> TouchpointMap:
        """The stored map; a `WorkspaceError` says how to import one when there is none."""
        stored = meta.load_map(self._storage.meta_engine)
        if stored is None:
            raise WorkspaceError(f"no map in workspace {self.root} yet; run: touchlens map import FILE")
        return stored

    def save_map(self, m: TouchpointMap) -> None:
        """Store `m`, replacing the map; refused with every problem when keys clash or references break."""
        problems = model_duplicates(m) + reference_problems(m)
        if problems:
            raise MapError([Problem(p.message, dotted(p.path)) for p in problems])
        meta.save_map(self._storage.meta_engine, m)

    def import_map(
        self, path: str | os.PathLike[str], merge: bool = False, fmt: str = "auto"
    ) -> ImportReport:
        """Replace the map with a file's (or merge it in by key). A CSV inventory fills the touchpoints."""
        kind = map_format(path, fmt)
        existing = meta.load_map(self._storage.meta_engine)
        if kind == "csv":
            return self._import_inventory(path, existing, merge)
        incoming = parse_map(read_text(path), str(path), kind)
        new = merge_maps(existing, incoming) if merge and existing is not None else incoming
        self.save_map(new)
        return ImportReport(str(path), kind, merge, _counts(new))

    def _import_inventory(
        self, path: str | os.PathLike[str], existing: TouchpointMap | None, merge: bool
    ) -> ImportReport:
        inv = parse_inventory(read_text(path, newline=""), str(path))
        base = existing or TouchpointMap(name=Path(path).stem)
        new, problems = apply_inventory(base, inv, merge, str(path))
        self.save_map(new)
        warnings = [f"{path}:1: unknown column '{c}' (ignored)" for c in inv.unknown_columns]
        report = ImportReport(str(path), "csv", merge, _counts(new), problems, warnings)
        report.problems.sort(key=lambda p: p.line or 0)
        return report

    def export_map(self, fmt: MapFormat = "yaml") -> str:
        m = self.map()
        return dump_inventory(m.touchpoints) if fmt == "csv" else dump_map(m, fmt)

    def design_checks(self) -> list[Finding]:
        return design_checks(self.map())

    def touchpoints(self, flt: TouchpointFilter | None = None) -> list[Touchpoint]:
        return filter_touchpoints(self.map(), flt or TouchpointFilter())

    def matrix(self, persona: str | None = None) -> Matrix:
        m = self.map()
        return matrix(m, filter_touchpoints(m, TouchpointFilter(persona=persona)) if persona else None)


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
