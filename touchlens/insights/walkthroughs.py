"""Walkthrough audits held against what customers say: the annoyances the map lists for a touchpoint and the ones
auditors saw there, each matched to the theme of the touchpoint's comments that shares most words with it; and
the themes customers complain about that no annoyance names.

Pure: the annoyances and the themes (as `ws.feedback(themes=True)` finds them) come in. Words are compared after
a light stemming (lower case, a plural or -ed/-ing ending cut, then the first five letters), so "late
deliveries" meets a theme "delivery / late"; an annoyance with no word in common with any theme is "not heard in
comments", which is worth knowing too: either customers do not mind it, or they do not write about it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

WORD = re.compile(r"[^\W\d_]{3,}")
ITEMS = re.compile(r"[;\n•]|,\s+|\s+-\s+")  # annoyances are written as a list in one text
THEME_TERMS = 5  # the theme's label and its strongest terms: further down, the terms stop naming it
PREFIX = 5
# fmt: off
STOP = frozenset({
    "the", "and", "for", "was", "were", "are", "not", "but", "too", "very", "with", "that", "this", "they", "their",
    "there", "have", "has", "had", "you", "your", "our", "from", "when", "what", "which", "who", "can", "could",
    "would", "should", "will", "just", "been", "being", "into", "out", "any", "all", "get", "got", "its", "than",
    "then", "them", "some", "more", "less", "one", "also", "about", "after", "before", "again", "only", "much",
    "many", "did", "does", "doesn", "didn", "don", "isn", "wasn", "way", "still", "even", "how", "why", "where",
})
# fmt: on


@dataclass(frozen=True)
class Heard:
    """An annoyance, where it was written down, and the comment themes that say the same (if any)."""

    annoyance: str
    source: str  # "map", or the walkthrough that saw it ("walkthrough 3")
    theme: str | None  # the theme sharing most words with it
    themes: list[str]  # every theme sharing a word with it, best first
    comments: int  # their comments
    sentiment: float | None  # the best theme's mean comment sentiment

    def to_dict(self) -> dict[str, Any]:
        return dict(self.__dict__)


def items(text: str | None) -> list[str]:
    """The annoyances in a text that lists them (one per line, or separated by semicolons or commas)."""
    return [i.strip(" .-*") for i in ITEMS.split(text or "") if WORD.search(i)]


def hear(annoyances: Sequence[tuple[str, str]], themes: Sequence[dict[str, Any]]) -> list[Heard]:
    """Each (annoyance, source) with the themes that share words with it, most shared first."""
    found = []
    for annoyance, source in annoyances:
        scores = _shared(annoyance, themes)
        ranked = sorted((i for i, n in enumerate(scores) if n), key=lambda i: -scores[i])
        best = themes[ranked[0]] if ranked else None
        found.append(Heard(annoyance, source, str(best["label"]) if best else None,
                           [str(themes[i]["label"]) for i in ranked], sum(int(themes[i]["count"]) for i in ranked),
                           best.get("sentiment") if best else None))  # fmt: skip
    return found


def unlisted(heard: Sequence[Heard], themes: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
    """The themes customers complain about (mean sentiment below 0) that share no word with any annoyance."""
    matched = {label for h in heard for label in h.themes}
    return [
        {"theme": t["label"], "comments": t["count"], "sentiment": t.get("sentiment")}
        for t in themes
        if t["label"] not in matched and t.get("sentiment") is not None and t["sentiment"] < 0
    ]


def _shared(annoyance: str, themes: Sequence[dict[str, Any]]) -> list[int]:
    """Per theme, how many of the annoyance's words it has."""
    own = _stems(annoyance)
    return [sum(any(_same(a, b) for b in _theme_stems(t)) for a in own) for t in themes]


def _theme_stems(theme: dict[str, Any]) -> set[str]:
    words = " ".join([str(theme["label"]), *map(str, theme.get("terms", [])[:THEME_TERMS])])
    return _stems(words)


def _stems(text: str) -> set[str]:
    return {_stem(w) for w in WORD.findall(text.lower()) if w not in STOP}


def _stem(word: str) -> str:
    for ending in ("ies", "ing", "ed", "es", "s"):
        if word.endswith(ending) and len(word) - len(ending) >= 3:
            return word[: -len(ending)] + ("y" if ending == "ies" else "")
    return word


def _same(a: str, b: str) -> bool:
    return a == b or (len(a) >= PREFIX and len(b) >= PREFIX and a[:PREFIX] == b[:PREFIX])
