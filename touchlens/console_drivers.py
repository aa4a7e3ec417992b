"""Drivers as terminal tables: touchpoint names, what the customer did in words, raises or lowers, rates as %,
the difference in rate points with its interval, the odds ratio with its own interval, p as people write it."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.console import Group, RenderableType
from rich.table import Table
from rich.text import Text

from touchlens.analytics.drivers_model import FEATURE_WORDS, SCOPE, difference_text
from touchlens.console import text

DIRECTION_WORDS = {"raises": "raises", "lowers": "lowers", None: "unclear"}
CAPTION = (
    "difference: rate with − rate without, in percentage points, 95% interval · odds ratio: the model's, per "
    "standard deviation of the factor, 95% interval · unclear: not significant after Holm's correction, or the "
    "model (which weighs every touchpoint at once) does not bear the plain comparison out"
)


def p_text(p: float | None) -> str:
    """A p-value as people write it: "0.003", "< 0.001" (never 1e-94)."""
    if p is None:
        return "–"
    return "< 0.001" if p < 0.001 else f"{p:.3f}"


def _rates(d: dict[str, Any]) -> str:
    w, wo = d["rate_with"], d["rate_without"]
    return "–" if w is None or wo is None else f"{w:.1%} → {wo:.1%}"


def _odds(d: dict[str, Any]) -> str:
    ratio, low, high = d["odds_ratio"], d["odds_ratio_low"], d["odds_ratio_high"]
    if ratio is None:
        return "–"
    return f"{ratio:,.2f}" if low is None or high is None else f"{ratio:,.2f} ({low:,.2f}–{high:,.2f})"


def title(d: dict[str, Any]) -> str:
    """ "Drivers of churn — 1,234 periods after a first conversion, base rate 15.2%"."""
    base = "" if d["base_rate"] is None else f", base rate {d['base_rate']:.1%}"
    return f"Drivers of {d['outcome']} — {d['periods']:,} {SCOPE.get(d['outcome'], 'periods')}{base}"


def drivers_table(d: dict[str, Any], names: dict[str, str], top: int = 20) -> RenderableType:
    """One outcome's drivers, or its message in words when the data cannot tell them apart."""
    if d["message"]:
        return Group(Text(title(d), style="italic"), Text(d["message"]), Text(""))
    table = Table(title=title(d), title_justify="left", caption=CAPTION, caption_justify="left")
    for name in ("touchpoint", "the customer", "effect", "rate with → without", "difference", "odds ratio", "p"):
        table.add_column(name, justify="left" if name in ("touchpoint", "the customer", "effect") else "right")
    for r in d["drivers"][:top]:
        who = names.get(r["touchpoint"], r["touchpoint"]) if r["touchpoint"] else "–"
        what = FEATURE_WORDS.get(r["kind"], r["kind"])
        effect = DIRECTION_WORDS[r["direction"]]
        table.add_row(text(who), what, effect, _rates(r), difference_text(r), _odds(r), p_text(r["p_value"]))
    return table


def report_view(report: dict[str, Any], names: dict[str, str], top: int = 20) -> RenderableType:
    """Every outcome the map defines (a table or its message each), then what the map lacks, in words."""
    parts: list[RenderableType] = [drivers_table(d, names, top) for d in report["outcomes"]]
    parts += [Text(m["message"]) for m in report["missing"]]
    return Group(*parts)


def report_rows(report: dict[str, Any]) -> list[dict[str, Any]]:
    """Every outcome's driver rows for CSV, each with its outcome first."""
    return [{"outcome": d["outcome"], **r} for d in report["outcomes"] for r in d["drivers"]]


def nps_view(nps: dict[str, Any], names: dict[str, str]) -> RenderableType:
    """The key drivers of NPS as shares of what touchpoint scores explain; the message instead when there is one."""
    heading = f"Key drivers of NPS — {nps['customers']:,} customers who answered both surveys"
    if nps.get("message"):
        return Group(Text(heading, style="italic"), Text(nps["message"]))
    explained = f", touchpoint scores explain {nps['r2']:.0%} of NPS" if nps["r2"] is not None else ""
    table = Table(title=heading + explained, title_justify="left")
    for name in ("touchpoint", "share of what is explained", "weight (R² points)"):
        table.add_column(name, justify="left" if name == "touchpoint" else "right")
    for w in _ranked(nps["weights"]):
        share = "–" if w["share"] is None else f"{w['share']:.0%}"
        table.add_row(text(names.get(w["touchpoint"], w["touchpoint"])), share, f"{w['weight']:.3f}")
    return table


def _ranked(weights: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    return sorted(weights, key=lambda w: -w["weight"])
