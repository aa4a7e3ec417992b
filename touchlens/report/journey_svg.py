"""The journey map canvas as one standalone SVG: stages across, channel swimlanes down, a card per touchpoint
coloured by its health, the stages' tasks, questions, weaknesses and opportunities, and the emotion curve as
designed (the stages' emotions) and as measured (comment sentiment) drawn together.

Every string from the map or the data is escaped; the same inputs always give the same bytes.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from touchlens.api import Workspace
from touchlens.insights.health import Health, measured_emotion
from touchlens.model.map import Stage, Touchpoint, TouchpointMap
from touchlens.model.views import JourneyView, journey_view
from touchlens.report.markup import attr, fit, text

# (fill, stroke) per health; grey where nothing is measured.
COLOURS: dict[Health, tuple[str, str]] = {
    "good": ("#e3f4e8", "#2e8b57"),
    "watch": ("#fff3d1", "#c98a00"),
    "poor": ("#fde2e0", "#c0392b"),
    None: ("#efefef", "#9a9a9a"),
}
# (colour, dash pattern) of the two emotion curves.
CURVES = {"designed": ("#2f6fb3", ""), "measured": ("#d9534f", "6 4")}
LABELS: dict[Health, str] = {"good": "on target", "watch": "watch", "poor": "below", None: "not measured"}
ROWS = (
    ("tasks", "Tasks"),
    ("questions", "Questions"),
    ("weaknesses", "Weaknesses"),
    ("opportunities", "Opportunities"),
)
FONT = "system-ui, -apple-system, 'Segoe UI', Roboto, Helvetica, Arial, sans-serif"
LEFT, COL, PAD = 150, 220, 8
CARD_H, LINE_H, ITEMS = 42, 15, 3
CURVE_H = 150


@dataclass(frozen=True)
class _Layout:
    """Where things go: one column per stage (plus one for touchpoints without a stage), rows top to bottom."""

    columns: list[tuple[str | None, str]]
    lanes: list[tuple[str | None, str]]
    lane_heights: list[int]
    row_heights: list[int]

    @property
    def width(self) -> int:
        return LEFT + COL * len(self.columns) + PAD * 2

    def x(self, column: int) -> int:
        return LEFT + COL * column


def _layout(m: TouchpointMap, sel: JourneyView) -> _Layout:
    columns: list[tuple[str | None, str]] = [(s.key, s.name or s.key) for s in sel.stages]
    if None in sel.touchpoints:
        columns.append((None, "No stage"))
    used = {sel.channel_of(t) for t in sel.shown()}
    lanes: list[tuple[str | None, str]] = [(c.key, c.name or c.key) for c in m.channels if c.key in used]
    if None in used:
        lanes.append((None, "No channel"))
    lane_heights = [
        PAD + (CARD_H + PAD) * max([1, *(len(_cell(sel, key, lane)) for key, _ in columns)]) for lane, _ in lanes
    ]
    stages = {s.key: s for s in sel.stages}
    row_heights = [
        PAD * 2 + LINE_H * max([1, *(min(len(_items(stages.get(k or ""), field)), ITEMS + 1) for k, _ in columns)])
        for field, _ in ROWS
    ]
    return _Layout(columns, lanes, lane_heights, row_heights)


def _cell(sel: JourneyView, stage: str | None, channel: str | None) -> list[Touchpoint]:
    return sel.cell(stage, channel)


def _items(stage: Stage | None, field: str) -> list[str]:
    items: list[str] = getattr(stage, field) if stage is not None else []
    return items


def render(
    m: TouchpointMap,
    health_of: Mapping[str, Health],
    measured: Mapping[str, float],
    journey: str | None = None,
) -> str:
    """The standalone SVG document for one journey (by key) or the whole map."""
    sel = journey_view(m, journey)
    lay = _layout(m, sel)
    parts: list[str] = []
    y = _header(parts, sel, lay)
    y = _lanes(parts, sel, lay, health_of, y)
    y = _stage_rows(parts, sel, lay, y)
    y = _curve(parts, sel, lay, measured, y)
    y = _legend(parts, y)
    head = (
        f'<svg xmlns="http://www.w3.org/2000/svg" width="{lay.width}" height="{y}" viewBox="0 0 {lay.width} {y}" '
        f'font-family="{FONT}" font-size="12" role="img" aria-label={attr(sel.title)}>'
    )
    return "\n".join([head, f"<title>{text(sel.title)}</title>", *parts, "</svg>"]) + "\n"


def _text(x: float, y: float, value: object, limit: int, extra: str = "") -> str:
    return f'<text x="{x:.0f}" y="{y:.0f}"{extra}>{text(fit(value, limit))}</text>'


def _header(parts: list[str], sel: JourneyView, lay: _Layout) -> int:
    parts.append(f'<rect width="{lay.width}" height="100%" fill="#ffffff"/>')
    parts.append(_text(PAD, 28, sel.title, 90, ' font-size="18" font-weight="600"'))
    for i, (_, name) in enumerate(lay.columns):
        x = lay.x(i)
        parts.append(f'<rect x="{x + 2}" y="44" width="{COL - 4}" height="30" rx="4" fill="#2f3e4e"/>')
        parts.append(_text(x + COL / 2, 64, name, 28, ' fill="#ffffff" font-weight="600" text-anchor="middle"'))
    return 82


def _lanes(parts: list[str], sel: JourneyView, lay: _Layout, health_of: Mapping[str, Health], y: int) -> int:
    for (lane, name), height in zip(lay.lanes, lay.lane_heights, strict=True):
        parts.append(f'<g class="lane" data-channel={attr(lane or "")}>')
        parts.append(f'<rect x="{PAD}" y="{y}" width="{lay.width - 2 * PAD}" height="{height}" fill="#f7f8fa"/>')
        parts.append(_text(PAD * 2, y + 20, name, 20, ' font-weight="600" fill="#2f3e4e"'))
        for i, (stage, _) in enumerate(lay.columns):
            for n, tp in enumerate(_cell(sel, stage, lane)):
                parts.append(_card(tp, health_of.get(tp.key), lay.x(i) + PAD, y + PAD + n * (CARD_H + PAD)))
        parts.append("</g>")
        y += height + 4
    return y


def _card(tp: Touchpoint, state: Health, x: int, y: int) -> str:
    fill, stroke = COLOURS[state]
    return (
        f'<g class="card" data-key={attr(tp.key)} data-health="{state or "unmeasured"}">'
        f"<title>{text(tp.label)} ({text(tp.key)}): {LABELS[state]}</title>"
        f'<rect x="{x}" y="{y}" width="{COL - 2 * PAD}" height="{CARD_H}" rx="6" fill="{fill}" stroke="{stroke}"/>'
        + _text(x + 8, y + 17, tp.label, 28, ' font-weight="600"')
        + _text(x + 8, y + 33, tp.key, 34, ' font-size="10" fill="#555555"')
        + "</g>"
    )


def _stage_rows(parts: list[str], sel: JourneyView, lay: _Layout, y: int) -> int:
    stages = {s.key: s for s in sel.stages}
    for (field, name), height in zip(ROWS, lay.row_heights, strict=True):
        parts.append(f'<g class="stage-row" data-row="{field}">')
        parts.append(_rule(lay, y))
        parts.append(_text(PAD * 2, y + PAD + 11, name, 20, ' font-weight="600" fill="#2f3e4e"'))
        for i, (key, _) in enumerate(lay.columns):
            items = _items(stages.get(key or ""), field)
            shown = items if len(items) <= ITEMS + 1 else items[:ITEMS]
            lines = [f"• {item}" for item in shown]
            if len(items) > len(shown):
                lines.append(f"+{len(items) - len(shown)} more")
            for n, line in enumerate(lines):
                parts.append(_text(lay.x(i) + PAD, y + PAD + 11 + n * LINE_H, line, 36, ' font-size="11"'))
        parts.append("</g>")
        y += height
    return y


def _curve(parts: list[str], sel: JourneyView, lay: _Layout, measured: Mapping[str, float], y: int) -> int:
    """The designed and the measured emotion per stage on one −2..2 axis, as two polylines."""
    top, span = y + 30, CURVE_H - 50

    def at(value: float) -> float:
        return top + (2.0 - max(-2.0, min(2.0, value))) / 4.0 * span

    parts.append('<g class="emotion">')
    parts.append(_rule(lay, y))
    parts.append(_text(PAD * 2, y + 20, "Emotion", 20, ' font-weight="600" fill="#2f3e4e"'))
    for level in (2, 0, -2):
        dash = "" if level == 0 else ' stroke-dasharray="3 3"'
        parts.append(_line(LEFT, at(level), lay.width - PAD, at(level), f'stroke="#e4e7eb"{dash}'))
        parts.append(_text(LEFT - 6, at(level) + 4, f"{level:+d}" if level else "0", 3, ' text-anchor="end"'))
    centre = {key: lay.x(i) + COL / 2 for i, (key, _) in enumerate(lay.columns) if key is not None}
    designed = [(centre[s.key], at(s.emotion)) for s in sel.stages if s.emotion is not None]
    actual = [(centre[s.key], at(measured[s.key])) for s in sel.stages if s.key in measured]
    for name, points in (("designed", designed), ("measured", actual)):
        colour, dash = CURVES[name]
        coords = " ".join(f"{x:.1f},{v:.1f}" for x, v in points)
        parts.append(f'<polyline class="{name}" points="{coords}" fill="none" {_stroke(colour, dash)}/>')
        parts += [f'<circle cx="{x:.1f}" cy="{v:.1f}" r="4" fill="{colour}"/>' for x, v in points]
    parts.append("</g>")
    return y + CURVE_H


def _line(x1: float, y1: float, x2: float, y2: float, style: str) -> str:
    return f'<line x1="{x1:.1f}" y1="{y1:.1f}" x2="{x2:.1f}" y2="{y2:.1f}" {style}/>'


def _rule(lay: _Layout, y: int) -> str:
    return _line(PAD, y, lay.width - PAD, y, 'stroke="#d0d4da"')


def _stroke(colour: str, dash: str) -> str:
    return f'stroke="{colour}" stroke-width="2.5"' + (f' stroke-dasharray="{dash}"' if dash else "")


def _legend(parts: list[str], y: int) -> int:
    x = PAD * 2
    parts.append('<g class="legend">')
    for state in ("good", "watch", "poor", None):
        fill, stroke = COLOURS[state]
        parts.append(f'<rect x="{x}" y="{y}" width="14" height="14" rx="3" fill="{fill}" stroke="{stroke}"/>')
        parts.append(_text(x + 20, y + 11, LABELS[state], 20))
        x += 120
    for name, label in (("designed", "designed emotion"), ("measured", "measured (comment sentiment)")):
        x += 20
        parts.append(_line(x, y + 7, x + 28, y + 7, _stroke(*CURVES[name])))
        parts.append(_text(x + 34, y + 11, label, 40))
        x += 150
    parts.append("</g>")
    return y + 30


def journey_svg(ws: Workspace, journey: str | None = None) -> str:
    """The workspace's journey map as SVG: health from its feedback and scorecard, the measured curve from
    comment sentiment per stage."""
    m = ws.map()
    journey_view(m, journey)  # an unknown journey fails before any analysis runs
    states = ws.touchpoint_health()
    return render(m, states, measured_emotion(ws.feedback(by="stage")), journey)
