"""Rich rendering for the command line: tables for people, JSON and CSV for machines."""

from __future__ import annotations

import csv
import io
import json
import math
import os
import sys
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

from rich.console import Console
from rich.markup import escape
from rich.progress import Progress, SpinnerColumn, TextColumn
from rich.table import Table

from touchlens.csvsafe import safe_cell

if TYPE_CHECKING:  # the map's models build at first use, not when the command line starts
    from touchlens.model.checks import Finding
    from touchlens.model.map import Touchpoint, TouchpointMap
    from touchlens.model.views import Matrix


def _width() -> int | None:
    # Piped output keeps whole rows instead of wrapping at 80 columns; COLUMNS still wins.
    return None if sys.stdout.isatty() or os.environ.get("COLUMNS") else 200


out = Console(width=_width(), highlight=False)
err = Console(stderr=True, highlight=False)


# Control characters in user text would drive the reader's terminal (clear it, retitle it, fake a line or a
# colour); bidi overrides reorder what follows. They are shown as escapes; line breaks and tabs as a space.
_INERT = {
    **{c: f"\\x{c:02x}" for c in (*range(0x20), *range(0x7F, 0xA0))},
    **{ord(c): " " for c in "\n\r\t"},
    **{c: f"\\u{c:04x}" for c in (*range(0x202A, 0x202F), *range(0x2066, 0x206A))},
}


def text(value: Any) -> str:
    """User text is data, never Rich markup or terminal control."""
    return escape(("" if value is None else str(getattr(value, "value", value))).translate(_INERT))


def print_json(data: Any) -> None:
    sys.stdout.write(json.dumps(data, indent=2, ensure_ascii=False, default=str) + "\n")


def print_csv(header: Sequence[str], rows: Iterable[Sequence[Any]], raw: bool = False) -> None:
    """Rows as CSV on stdout; text a spreadsheet would run as a formula gets a leading quote unless `raw`."""
    sys.stdout.write(csv_text(header, rows, raw))


def csv_text(header: Sequence[str], rows: Iterable[Sequence[Any]], raw: bool = False) -> str:
    """Rows as CSV text, quoted where needed and formula-safe unless `raw` (see `print_csv`)."""
    cell: Callable[[Any], Any] = _as_is if raw else safe_cell
    buf = io.StringIO()
    writer = csv.writer(buf, lineterminator="\n")
    writer.writerow([cell(h) for h in header])  # a header can name touchpoints too
    writer.writerows(["" if v is None else cell(getattr(v, "value", v)) for v in row] for row in rows)
    return buf.getvalue()


def _as_is(value: Any) -> Any:
    return value


def print_records(records: Sequence[dict[str, Any]], empty_header: Sequence[str] = (), raw: bool = False) -> None:
    """Dicts as CSV, one column per key; lists (touchpoint sequences) become `a > b > c`."""
    header = list(records[0]) if records else list(empty_header)
    rows = ([" > ".join(v) if isinstance(v, list) else v for v in r.values()] for r in records)
    print_csv(header, rows, raw)


def records_table(title: str, records: Sequence[dict[str, Any]], columns: Sequence[str]) -> Table:
    """Any list of result rows as a table of the named columns; numbers rounded for reading."""
    table = Table(title=title, title_justify="left")
    for c in columns:
        table.add_column(c, justify="left" if records and isinstance(records[0].get(c), str) else "right")
    for r in records:
        table.add_row(*(_cell(r.get(c)) for c in columns))
    return table


def _cell(value: Any) -> str:
    if value is None:
        return "–"
    if isinstance(value, float):
        return _number(value)
    if isinstance(value, list):
        return " → ".join(text(v) for v in value)
    return text(value) if isinstance(value, str) else str(value)


def _number(value: float) -> str:
    """Three significant digits for reading, never scientific notation (a p-value of 1e-94 is "< 0.001")."""
    if value != 0 and abs(value) < 0.001:
        return "< 0.001" if value > 0 else "> −0.001"
    if abs(value) >= 1000:
        return f"{value:,.0f}"
    digits = max(0, 2 - math.floor(math.log10(abs(value)))) if value else 0
    text = f"{value:,.{digits}f}"
    return text.rstrip("0").rstrip(".") if "." in text else text


INVENTORY_COLUMNS = ("key", "name", "stage", "channel", "phase", "initiative", "directness", "owner")


def inventory_rows(touchpoints: Iterable[Touchpoint]) -> list[list[Any]]:
    return [[getattr(tp, col) for col in INVENTORY_COLUMNS] for tp in touchpoints]


def inventory_table(m: TouchpointMap, touchpoints: list[Touchpoint]) -> Table:
    table = Table(title=f"{text(m.name)} — {len(touchpoints)} touchpoints", title_justify="left")
    for col in INVENTORY_COLUMNS:
        table.add_column(col, overflow="fold")
    for row in inventory_rows(touchpoints):
        table.add_row(*(text(v) for v in row))
    return table


_CELL_STYLE = {"served": "green", "off_plan": "yellow", "gap": "red", "empty": "dim"}


def matrix_table(m: TouchpointMap, mx: Matrix) -> Table:
    """Stages down, channels across; planned-but-empty cells show as gaps."""
    table = Table(title="Touchpoints by stage × channel", title_justify="left", show_lines=True)
    table.add_column("stage", style="bold")
    for channel in mx.channels:
        ch = m.channel(channel)
        table.add_column(text(channel) + (f"\n({text(ch.kind)})" if ch and ch.kind else ""), overflow="fold")
    for stage in mx.stages:
        cells = []
        for channel in mx.channels:
            cell = mx.cell(stage, channel)
            body = "\n".join(text(k) for k in cell.touchpoints) or ("planned, none" if cell.planned else "·")
            if cell.status == "off_plan":
                body += "\n(off plan)"
            cells.append(f"[{_CELL_STYLE[cell.status]}]{body}[/]")
        table.add_row(text(stage), *cells)
    table.caption = (
        "green: served as planned · yellow (off plan): served where the channel strategy plans no presence · "
        "red (planned, none): the strategy plans this channel here but no touchpoint exists · ·: none"
    )
    return table


def findings_table(findings: list[Finding]) -> Table:
    table = Table(title=f"Design checks — {len(findings)} to look at", title_justify="left")
    for col in ("check", "subject", "message"):
        table.add_column(col, overflow="fold")
    for f in findings:
        table.add_row(text(f.check), text(f.subject), text(f.message))
    return table


@contextmanager
def row_progress(enabled: bool = True) -> Iterator[Callable[[int], None]]:
    """A progress bar of rows and rows/s on a terminal; nothing when piped or disabled."""
    if not (enabled and err.is_terminal):
        yield lambda n: None
        return
    columns = (SpinnerColumn(), TextColumn("{task.completed:,.0f} rows"), TextColumn("{task.fields[rate]}"))
    with Progress(*columns, console=err, transient=True) as bar:
        task = bar.add_task("ingest", total=None, rate="")
        started = time.perf_counter()

        def advance(n: int) -> None:
            bar.advance(task, n)
            done = bar.tasks[0].completed
            bar.update(task, rate=f"{done / max(time.perf_counter() - started, 1e-9):,.0f} rows/s")

        yield advance


def ingest_table(report: dict[str, Any]) -> Table:
    table = Table(title=f"Ingested in {report['seconds']:.2f} s", title_justify="left")
    table.add_column("count")
    table.add_column("rows", justify="right")
    for name in ("read", "accepted", "duplicates", "quarantined", "unmapped", "identified"):
        if name != "identified" or report.get(name):
            table.add_row(name, f"{report[name]:,}")
    for key, n in report["by_touchpoint"].items():
        table.add_row(f"  {text(key)}", f"{n:,}")
    unmapped = report.get("unmapped_events") or {}
    if unmapped:
        table.add_row("unmapped, by event", "")
        for event, n in unmapped.items():
            table.add_row(f"  {text(event)}", f"{n:,}")
    return table


def quarantine_table(groups: list[dict[str, Any]]) -> Table:
    table = Table(title="Quarantine by reason", title_justify="left", show_lines=True)
    for col in ("kind", "reason", "rows", "examples (file:row field: detail)"):
        table.add_column(col, overflow="fold")
    for g in groups:
        examples = "\n".join(
            f"{text(e['file'])}:{e['row']} {text(e['field'])}" + (f": {text(e['detail'])}" if e["detail"] else "")
            for e in g["examples"]
        )
        table.add_row(text(g["kind"]), text(g["reason"]), f"{g['count']:,}", examples)
    return table


def demo_summary(report: dict[str, Any]) -> Table:
    table = Table(title=f"Demo workspace: {text(report['workspace'])}", title_justify="left")
    table.add_column("data")
    for col in ("read", "accepted", "duplicates", "quarantined", "unmapped"):
        table.add_column(col, justify="right")
    for name in ("events", "feedback"):
        r = report[name]
        table.add_row(name, *(f"{r[c]:,}" for c in ("read", "accepted", "duplicates", "quarantined", "unmapped")))
    table.caption = f"planted truths: {text(report['truths'])} · use: touchlens -w {text(report['workspace'])} …"
    return table


def _duration(seconds: float | None) -> str:
    if seconds is None:
        return ""
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60)):
        if seconds >= size:
            return f"{seconds / size:.1f}{unit}"
    return f"{seconds:.0f}s"


def flows_table(flows: dict[str, Any], limit: int = 40) -> Table:
    edges = flows["edges"]
    table = Table(
        title=f"Directly-follows graph — {len(edges)} edges (top {min(limit, len(edges))})", title_justify="left"
    )
    for col in ("from", "to", "count", "median", "p90"):
        table.add_column(col, justify="right" if col in ("count", "median", "p90") else "left")
    for e in edges[:limit]:
        table.add_row(
            text(e["source"]),
            text(e["target"]),
            f"{e['count']:,}",
            _duration(e["median_seconds"]),
            _duration(e["p90_seconds"]),
        )
    return table


def variants_table(variants: dict[str, Any]) -> Table:
    table = Table(title=f"Variants of {variants['journeys']:,} journeys", title_justify="left")
    for col in ("count", "share", "cumulative", "steps"):
        table.add_column(col, justify="left" if col == "steps" else "right", overflow="fold")
    for v in variants["variants"]:
        steps = " → ".join(text(s) for s in v["steps"])
        table.add_row(f"{v['count']:,}", f"{v['share']:.1%}", f"{v['cumulative']:.1%}", steps)
    return table


def funnel_table(funnel: dict[str, Any]) -> Table:
    table = Table(title="Funnel", title_justify="left")
    for col in ("step", "customers", "from previous", "from first", "median time from previous"):
        table.add_column(col, justify="left" if col == "step" else "right")
    for s in funnel["steps"]:
        prev, first = s["conversion_from_previous"], s["conversion_from_first"]
        table.add_row(
            text(s["step"]),
            f"{s['count']:,}",
            "" if prev is None else f"{prev:.1%}",
            "" if first is None else f"{first:.1%}",
            _duration(s["median_seconds"]),
        )
    if funnel.get("breakdown"):
        b = funnel["breakdown"]
        table.caption = f"by {text(b['by'])}: " + "; ".join(
            f"{text(g['group'])} " + " → ".join(f"{n:,}" for n in g["counts"]) for g in b["groups"]
        )
    return table


def attribution_table(results: list[dict[str, Any]]) -> Table:
    """Keys down, models across: conversions credited (and share)."""
    total = results[0]["total_conversions"]
    table = Table(title=f"Attribution of {total:,.0f} conversions", title_justify="left")
    table.add_column("key")
    for r in results:
        table.add_column(text(r["model"]), justify="right")
    keys = [c["key"] for c in results[0]["results"]]
    credit = [{c["key"]: c for c in r["results"]} for r in results]
    for key in keys:
        cells = [f"{c[key]['conversions']:,.1f} ({c[key]['share']:.0%})" if key in c else "" for c in credit]
        table.add_row(text(key), *cells)
    return table


def _pct(value: float | None) -> str:
    return "" if value is None else f"{value:.1%}"


def scorecard_table(card: dict[str, Any]) -> Table:
    base, by = card["baseline_conversion"], card["by"]
    title = f"{by.title()} scorecard — {card['customers']:,} customers, baseline conversion {_pct(base) or 'n/a'}"
    table = Table(title=title, title_justify="left")
    for col in (by, "customers", "events/cust", "conversion", "lift (95%)", "drop-off", "repeat", "to next"):
        table.add_column(col, justify="left" if col == by else "right")
    for s in card[f"{by}s"]:
        lift = "" if s["lift"] is None else f"{s['lift']:.2f} ({s['lift_low']:.2f}–{s['lift_high']:.2f})"
        table.add_row(
            text(s[by]), f"{s['customers']:,}", f"{s['events_per_customer']:.1f}", _pct(s["conversion"]),
            lift, _pct(s["drop_off"]), _pct(s["repeat_rate"]), _duration(s["median_seconds_to_next"]),
        )  # fmt: skip
    return table


def paths_table(result: dict[str, Any]) -> Table:
    arrow = "after" if result["direction"] == "after" else "before"
    table = Table(title=f"Paths {arrow} {text(result['anchor'])}", title_justify="left")
    for col in ("count", "share", "steps"):
        table.add_column(col, justify="left" if col == "steps" else "right", overflow="fold")
    for p in result["paths"]:
        steps = " → ".join(text(s) for s in p["steps"]) or "(journey ends)"
        table.add_row(f"{p['count']:,}", f"{p['share']:.1%}", steps)
    return table


def counts_table(title: str, counts: dict[str, int], columns: tuple[str, str] = ("section", "items")) -> Table:
    table = Table(title=title, title_justify="left")
    table.add_column(columns[0])
    table.add_column(columns[1], justify="right")
    for name, n in counts.items():
        table.add_row(text(name), f"{n:,}")
    return table
