"""The map's journeys as a Mermaid `journey` diagram, for Markdown pages, wikis and slides.

One `section` per stage, one task per touchpoint of that stage (`Name: score: actor`, the actor being the
channel). The score (1–5) is the stage's designed emotion (−2..2 → 1..5) or, when measured CSAT is given, the
touchpoint's CSAT (a share 0..1 → 1..5).

Text is data, never markup: Mermaid draws labels as HTML, so characters HTML or Mermaid's other grammars read
(``< > " ' ` [ ] { }``, and ``&`` before a letter or digit) are written as Mermaid's entity codes (``#lt;``,
``#91;`` …), which it draws as the characters themselves. `clean` has already removed ``#`` and ``;``, so no
entity code comes from user text.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

from touchlens.model.map import Touchpoint, TouchpointMap
from touchlens.model.views import journey_view

NEUTRAL = 3
# Characters the journey grammar reads as syntax: ':' separates name, score and actors, ';' and '#' end or
# open statements and entities, ',' separates actors, '%' opens a comment; line breaks end the task.
_SYNTAX = re.compile(r"[:;#%\r\n\t]+")


# Mermaid's entity codes: `#name;` or `#decimal;` (https://mermaid.js.org/syntax/flowchart.html#entity-codes-to-escape-characters).
# An '&' is only markup where a character reference could follow (`&lt`, `&#60`): "Acme & Sons" stays as it is.
_ENTITIES = {"&": "#amp;", "<": "#lt;", ">": "#gt;", '"': "#quot;", "'": "#39;", "`": "#96;"}
_ENTITIES |= {c: f"#{ord(c)};" for c in "[]{}"}
_MARKUP = re.compile(r"&(?=[A-Za-z0-9#])|[<>\"'`\[\]{}]")


def clean(text: str, actor: bool = False) -> str:
    """One line of text safe as a Mermaid task name (or actor, which also loses commas)."""
    cleaned = _SYNTAX.sub(" ", text)
    if actor:
        cleaned = cleaned.replace(",", " ")
    return " ".join(cleaned.split()) or "?"


def label(text: str, actor: bool = False) -> str:
    """`clean` text with the characters HTML reads as markup written as Mermaid entity codes: drawn as text."""
    return _MARKUP.sub(lambda m: _ENTITIES[m.group()], clean(text, actor))


def emotion_score(emotion: int | None) -> int:
    """A designed emotion (−2..2) as a journey score (1..5); neutral when the stage has none."""
    return NEUTRAL if emotion is None else max(1, min(5, emotion + 3))


def csat_score(csat: float) -> int:
    """A CSAT share (0..1) as a journey score (1..5)."""
    return max(1, min(5, 1 + round(4 * csat)))


def mermaid(m: TouchpointMap, journey: str | None = None, csat: Mapping[str, float | None] | None = None) -> str:
    """The diagram for one journey (by key), or for all the map's stages when `journey` is None."""
    chosen = journey_view(m, journey)
    lines = ["journey", f"    title {label(chosen.title)}"]
    sections: list[tuple[str | None, str, int | None]] = [(s.key, s.name or s.key, s.emotion) for s in chosen.stages]
    if None in chosen.touchpoints:
        sections.append((None, "No stage", None))
    for key, name, emotion in sections:
        lines.append(f"    section {label(name)}")
        for tp in chosen.touchpoints.get(key, []):
            measured = (csat or {}).get(tp.key)
            score = csat_score(measured) if measured is not None else emotion_score(emotion)
            lines.append(f"      {label(tp.label)}: {score}: {label(_actor(m, tp), actor=True)}")
    return "\n".join(lines) + "\n"


def _actor(m: TouchpointMap, tp: Touchpoint) -> str:
    channel = m.channel(tp.channel) if tp.channel else None
    return (channel.name or channel.key) if channel else (tp.channel or "Customer")
