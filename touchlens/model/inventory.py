"""The touchpoint inventory as CSV: one touchpoint per row, the form people keep in spreadsheets.

Cells of a match rule use a small syntax: ``a`` equals a, ``a | b`` is one of them, ``abc*`` starts with
abc, ``*`` exists, ``!*`` is absent; `match_where` holds ``name=cell; name=cell``. A rule this syntax can't
say is written as JSON in the `match` column. Example row::

    key,name,stage,channel,phase,match_event,match_where
    refund_email,Refund email,returns,email,post-purchase,email_sent,template=refund_issued
"""

from __future__ import annotations

import csv
import io
import json
import re
from dataclasses import dataclass, field
from typing import Any

from pydantic import ValidationError

from touchlens.csvsafe import safe_cell, unescape_cell
from touchlens.errors import Problem
from touchlens.model.map import OPERATORS, Condition, MatchRule, Targets, Touchpoint
from touchlens.model.mapfile import error_message, unreadable

PLAIN = ("key", "name", "description", "stage", "channel", "phase", "initiative", "directness", "owner")
TEXTS = ("expectations", "annoyances", "script")
DESIRED = ("think", "do", "feel")
TARGETS = tuple(Targets.model_fields)
SURVEY = ("metric", "question", "comment")
COLUMNS = (
    *PLAIN,
    "personas",
    *TEXTS,
    *(f"desired_{d}" for d in DESIRED),
    "match_event",
    "match_channel",
    "match_where",
    "match",
    *(f"target_{t}" for t in TARGETS),
    *(f"survey_{s}" for s in SURVEY),
)
_SPECIAL = re.compile(r"[|;=*]|^!|^\s|\s$")


@dataclass
class InventoryRow:
    line: int
    touchpoint: Touchpoint


@dataclass
class Inventory:
    """What a CSV inventory held: the valid rows, the problems of the bad ones, unknown columns."""

    rows: list[InventoryRow] = field(default_factory=list)
    problems: list[Problem] = field(default_factory=list)
    unknown_columns: list[str] = field(default_factory=list)


def normalise_header(name: str) -> str:
    """Spreadsheet headers like ``Desired think`` or ``Match-Event`` name the same columns."""
    return re.sub(r"[\s\-]+", "_", name.strip().lower())


def parse_inventory(text: str, filename: str = "<inventory>") -> Inventory:
    """Read every row; a bad row is reported by its spreadsheet row (the header is row 1) and left out."""
    # newline="": a lone "\r" ends a line as the csv module expects, instead of being an error inside a cell.
    reader = csv.reader(io.StringIO(text.lstrip("\ufeff"), newline=""))
    try:
        header = [normalise_header(h) for h in next(reader, [])]
    except csv.Error as exc:
        return Inventory(problems=[Problem(f"not valid CSV: {exc}", "", filename, 1)])
    inv = Inventory(unknown_columns=[h for h in header if h and h not in COLUMNS])
    if "key" not in header:
        found = ", ".join(header) or "none"
        inv.problems.append(Problem(f"no 'key' column; columns are: {found}", "", filename, 1))
        return inv
    row = 1
    try:
        for row, cells in enumerate(reader, start=2):
            if any(c.strip() for c in cells):
                _add_row(inv, dict(zip(header, cells, strict=False)), filename, row)
    except csv.Error as exc:
        inv.problems.append(Problem(f"not valid CSV from here on: {exc}", "", filename, row + 1))
    return inv


def _add_row(inv: Inventory, cells: dict[str, str], filename: str, line: int) -> None:
    problems: list[Problem] = []
    data = row_to_data(cells, lambda column, msg: problems.append(Problem(msg, column, filename, line)))
    if not problems:
        try:
            inv.rows.append(InventoryRow(line, Touchpoint.model_validate(data)))
            return
        except ValidationError as exc:
            messages = [(error_message(Touchpoint, e), _column(e["loc"])) for e in exc.errors()]
            problems += [Problem(msg, column, filename, line) for msg, column in messages]
    inv.problems += problems


def _column(loc: tuple[Any, ...]) -> str:
    """The CSV column that holds a touchpoint field."""
    if loc[:1] == ("desired",) and len(loc) > 1:
        return f"desired_{loc[1]}"
    if loc[:1] == ("targets",) and len(loc) > 1:
        return f"target_{loc[1]}"
    if loc[:1] == ("survey",) and len(loc) > 1:
        return f"survey_{loc[1]}"
    if loc[:1] == ("match",) and len(loc) > 1 and loc[1] in ("event", "channel", "where"):
        return f"match_{loc[1]}"
    return str(loc[0]) if loc else ""


def row_to_data(cells: dict[str, str], report: Any) -> dict[str, Any]:
    """Turn one row's cells into touchpoint data; syntax errors go to `report(column, message)`. A cell that
    `dump_inventory` made formula-safe (a quote before ``= + - @``) reads as what was written."""
    plain = {k: unescape_cell(v).strip() for k, v in cells.items() if k in COLUMNS and v}
    get = {k: v for k, v in plain.items() if v}
    data: dict[str, Any] = {k: get[k] for k in (*PLAIN, *TEXTS) if k in get}
    if "personas" in get:
        data["personas"] = [p.strip() for p in re.split(r"[;,]", get["personas"]) if p.strip()]
    desired = {d: get[f"desired_{d}"] for d in DESIRED if f"desired_{d}" in get}
    if desired:
        data["desired"] = desired
    targets = {t: get[f"target_{t}"] for t in TARGETS if f"target_{t}" in get}
    if targets:
        data["targets"] = targets
    survey = {s: get[f"survey_{s}"] for s in SURVEY if f"survey_{s}" in get}
    if survey:
        data["survey"] = survey
    match = _match_from_cells(get, report)
    if match:
        data["match"] = match
    return data


def _match_from_cells(get: dict[str, str], report: Any) -> dict[str, Any] | None:
    if "match" in get:
        try:
            parsed = json.loads(get["match"])
        except json.JSONDecodeError as exc:
            report("match", f"not valid JSON: {exc.msg}")
            return None
        except (RecursionError, ValueError) as exc:  # nested too deeply, or a number of 4300+ digits
            report("match", f"not valid JSON: {unreadable(exc)}")
            return None
        return parsed if isinstance(parsed, dict) else {"event": parsed}
    rule: dict[str, Any] = {}
    for part in ("event", "channel"):
        if f"match_{part}" in get:
            rule[part] = parse_cell(get[f"match_{part}"])
    if "match_where" in get:
        where: dict[str, Any] = {}
        for clause in filter(None, (c.strip() for c in get["match_where"].split(";"))):
            name, eq, cell = clause.partition("=")
            if not eq or not name.strip():
                report("match_where", f"'{clause}' is not name=condition")
                continue
            where[name.strip()] = parse_cell(cell.strip())
        rule["where"] = where
    return rule or None


def parse_cell(cell: str) -> dict[str, Any]:
    """``a`` → equals, ``a | b`` → in, ``ab*`` → prefix, ``*`` → exists, ``!*`` → absent."""
    if cell == "*":
        return {"exists": True}
    if cell == "!*":
        return {"exists": False}
    if "|" in cell:
        return {"in": [v.strip() for v in cell.split("|")]}
    if cell.endswith("*"):
        return {"prefix": cell[:-1]}
    return {"equals": cell}


def format_cell(cond: Condition) -> str | None:
    """The cell syntax for a condition, or None when the syntax can't say it exactly."""
    op = cond.operator
    if op == "exists":
        return "*" if cond.exists else "!*"
    values = cond.in_ if op == "in" else [cond.operand(op)]
    if not values or not all(isinstance(v, str) and v and not _SPECIAL.search(v) for v in values):
        return None
    if op == "in":
        return " | ".join(str(v) for v in values) if len(values) > 1 else None
    return f"{values[0]}*" if op == "prefix" else str(values[0])


def _match_cells(rule: MatchRule) -> dict[str, str]:
    cells: dict[str, str] = {}
    for part in ("event", "channel"):
        cond: Condition | None = getattr(rule, part)
        if cond is not None:
            cells[f"match_{part}"] = format_cell(cond) or "\0"
    clauses = [f"{name}={format_cell(cond) or chr(0)}" for name, cond in rule.where.items()]
    if clauses:
        cells["match_where"] = "; ".join(clauses)
    if any("\0" in v for v in cells.values()) or any(_SPECIAL.search(n) for n in rule.where):
        return {"match": json.dumps(rule.model_dump(mode="json", exclude_defaults=True), ensure_ascii=False)}
    return cells


def touchpoint_to_row(tp: Touchpoint) -> dict[str, str]:
    """One CSV row; `parse_inventory` of it gives the same touchpoint back."""
    row = {k: str(getattr(tp, k) or "") for k in (*PLAIN, *TEXTS)}
    row["personas"] = "; ".join(tp.personas)
    for d in DESIRED:
        row[f"desired_{d}"] = (getattr(tp.desired, d) if tp.desired else None) or ""
    for t in TARGETS:
        value = getattr(tp.targets, t) if tp.targets else None
        row[f"target_{t}"] = "" if value is None else repr(value)
    for s in SURVEY:
        value = getattr(tp.survey, s) if tp.survey else None
        row[f"survey_{s}"] = "" if value is None else str(value).lower() if isinstance(value, bool) else str(value)
    if tp.match is not None:
        row.update(_match_cells(tp.match))
    return row


def dump_inventory(touchpoints: list[Touchpoint], raw: bool = False) -> str:
    """The inventory as CSV text. Cells a spreadsheet would run as formulas get a leading quote (`csvsafe`),
    which `parse_inventory` takes off again; `raw` writes them as they are."""
    out = io.StringIO()
    # CRLF, as RFC 4180 says; it also makes the writer quote a lone CR inside a cell.
    writer = csv.DictWriter(out, fieldnames=list(COLUMNS), restval="", lineterminator="\r\n")
    writer.writeheader()
    for tp in touchpoints:
        row = touchpoint_to_row(tp)
        writer.writerow(row if raw else {k: safe_cell(v) for k, v in row.items()})
    return out.getvalue()


__all__ = ["COLUMNS", "OPERATORS", "Inventory", "InventoryRow", "dump_inventory", "parse_inventory"]
