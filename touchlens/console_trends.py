"""Trends' anomalies and a change's impact as terminal tables: words and units, never scientific notation."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import Any

from rich.table import Table

from touchlens.console import text

METRIC_NAMES = {"events_per_day": "Events per day", "csat": "CSAT", "sentiment": "Comment sentiment"}


def p_text(p: float | None) -> str:
    """'0.003', '< 0.001', or '–' where there is no test."""
    if p is None:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _share(v: float | None) -> str:
    return "–" if v is None else f"{v:.0%}"


def _per_day(v: float | None) -> str:
    return "–" if v is None else f"{v:,.1f}"


def _sentiment(v: float | None) -> str:
    return "–" if v is None else f"{v:+.2f}"


def _points(v: float | None) -> str:
    return "–" if v is None else f"{v * 100:+.0f} points"


def _percent(v: float | None) -> str:
    return "–" if v is None else f"{v:+.0%}"


# How each metric's levels and its difference in differences read: CSAT as shares and points, events per day
# as counts and a relative change, sentiment on its −1..1 scale.
FORMATS: dict[str, tuple[Callable[[float | None], str], Callable[[float | None], str]]] = {
    "events_per_day": (_per_day, _percent),
    "csat": (_share, _points),
    "sentiment": (_sentiment, _sentiment),
}


def anomalies_table(result: dict[str, Any], fdr: float | None = None) -> Table:
    """One row per anomaly, most certain first: the summary in words, the change and its adjusted p-value."""
    rows = [a for s in result["series"] for a in s["anomalies"]]
    rows.sort(key=lambda a: (a["p_value"], a["period"]))
    rate = f", false discovery rate {fdr:.0%}" if fdr is not None else ""
    table = Table(title=f"Anomalies by {result['period']}{rate}", title_justify="left")
    table.add_column("anomaly", ratio=4)
    table.add_column("change", justify="right")
    table.add_column("p (adjusted)", justify="right")
    for a in rows:
        table.add_row(text(a["summary"]), _change(a), p_text(a["p_value"]))
    if not rows:
        table.add_row("No anomaly: no period departs from what was expected both surely and by enough.", "", "")
    return table


def _change(a: dict[str, Any]) -> str:
    if a["metric"] == "csat":
        return _points(a["value"] - a["expected"])
    if a["metric"] == "events":
        return _percent(a["value"] / a["expected"] - 1) if a["expected"] > 0 else "new"
    return _sentiment(a["value"] - a["expected"])


def impact_table(title: str, metrics: Sequence[dict[str, Any]]) -> Table:
    """Before and after at the touchpoint and in the comparison group, the difference in differences with its
    95% interval and p-value, and the verdict in words."""
    table = Table(title=title, title_justify="left", show_lines=True)
    for name in ("metric", "before", "after", "comparison before", "comparison after"):
        table.add_column(name, justify="left" if name == "metric" else "right")
    table.add_column("difference in differences (95%)", justify="right")
    table.add_column("p", justify="right")
    table.add_column("verdict", ratio=2)
    for m in metrics:
        level, change = FORMATS[m["metric"]]
        did = change(m["did"])
        if m["did_low"] is not None:
            did += f"\n({change(m['did_low'])} to {change(m['did_high'])})"
        table.add_row(METRIC_NAMES[m["metric"]], level(m["before"]), level(m["after"]), level(m["comparison_before"]),
                      level(m["comparison_after"]), did, p_text(m["did_p_value"]), text(m["verdict"]))  # fmt: skip
    return table


def holdout_table(holdout: dict[str, Any]) -> Table:
    """A proactive rule's randomised measurement: per outcome, contacted against held out, with the difference's
    95% interval and the verdict in words."""
    since = f" since {holdout['started_at'][:16].replace('T', ' ')} UTC" if holdout["started_at"] else ""
    title = (f"Proactive rule {text(holdout['name'])}{since}: {holdout['contacted']:,} contacted, "
             f"{holdout['held_out']:,} held out (randomised), {holdout['queued']:,} queued")  # fmt: skip
    table = Table("outcome", "contacted", "held out", "difference (95%)", "verdict", title=title, title_justify="left")
    for e in holdout["effects"]:
        table.add_row(*effect_cells(e))
    return table


def effect_cells(e: dict[str, Any]) -> tuple[str, ...]:
    """An effect's row: the outcome, its rate with and without the contact, the difference, the verdict."""
    with_contact = rate_text(e["rate_with"], e["with_contact"])
    without = rate_text(e["rate_without"], e["without_contact"])
    return text(e["outcome"]), with_contact, without, difference_text(e), text(e["verdict"])


def rate_text(rate: float | None, n: int) -> str:
    return "—" if rate is None else f"{rate:.0%} of {n:,}"


def difference_text(e: dict[str, Any]) -> str:
    if e["difference"] is None or e["low"] is None or e["high"] is None:
        return "—"
    return f"{e['difference'] * 100:+.1f} ({e['low'] * 100:+.1f} to {e['high'] * 100:+.1f}) points"
