"""Findings, health and roadmap cards as terminal tables: summaries in words, at stake in outcome units."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from rich.table import Table

from touchlens.console import text
from touchlens.insights.items import stake_text

SECTION_TITLES = {
    "problems": "Problems",
    "strengths": "Strengths",
    "gaps": "Gaps",
    "friction": "Friction",
    "personalisation": "Personalisation",
}
HEALTH_WORDS = {"good": "[green]good[/]", "watch": "[yellow]watch[/]", "poor": "[red]poor[/]", None: "–"}


def insights_table(title: str, sections: dict[str, list[dict[str, Any]]]) -> Table:
    """One row per finding, grouped by section; the summary says it in words."""
    table = Table(title=title, title_justify="left", show_lines=True)
    table.add_column("section")
    table.add_column("finding", ratio=3)
    table.add_column("at stake", ratio=1)
    table.add_column("customers", justify="right")
    for name, items in sections.items():
        for i in items:
            table.add_row(SECTION_TITLES.get(name, name), text(i["summary"]), text(stake_text(i["at_stake"])),
                          f"{i['reach']:,}" if i["reach"] else "–")  # fmt: skip
    if not any(sections.values()):
        table.add_row("", "Nothing found: no finding is both sure and large enough to report.", "", "")
    return table


def health_table(rows: Sequence[dict[str, Any]], names: dict[str, str]) -> Table:
    table = Table(title="Touchpoint health", title_justify="left")
    table.add_column("touchpoint")
    table.add_column("health")
    table.add_column("why", ratio=3)
    for r in rows:
        table.add_row(text(names.get(r["touchpoint"], r["touchpoint"])), HEALTH_WORDS[r["health"]], text(r["reason"]))
    return table


def roadmap_table(title: str, cards: Sequence[dict[str, Any]]) -> Table:
    table = Table(title=title, title_justify="left", show_lines=True)
    for name in ("horizon", "card", "at stake", "score", "effort", "status"):
        table.add_column(name, justify="right" if name in ("score", "effort") else "left")
    for c in cards:
        why = [f["summary"] for f in c["findings"][:1] if c["source"] == "person"]  # the data behind a person's card
        lines = [f"[bold]{text(c['title'])}[/]", text(c["description"] or ""), *(f"Why: {text(w)}" for w in why)]
        what = "\n".join([*(line for line in lines if line), f"[dim]{text(c['key'])} · {c['source']}[/]"])
        score = "–" if c["score"] is None else f"{c['score']:.0f}"
        effort = "–" if c["effort"] is None else f"{c['effort']:.0f}"
        table.add_row(c["horizon"] or "–", what, text(stake_text(c["at_stake"])), score, effort, c["status"])
    return table
